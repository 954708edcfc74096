"""Campaign policy with an injectable clock: windows, calendar, retries, pacing, limits."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from ivr.app import Hotline
from ivr.clock import FixedClock
from ivr.services import Actor
from ivr.services.campaigns import create_campaign
from ivr.services.dnc import add_do_not_call
from ivr.store import Campaign, SurveyAttempt, Ticket
from ivr.surveys.campaigns import Filters, policy_for
from ivr.surveys.policy import Pacer
from ivr.surveys.runner import CampaignRunner
from ivr.workdays import WorkCalendar

from .surveykit import ScriptedDialer, completed_tickets

SH = ZoneInfo("Asia/Shanghai")


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


def fast(hotline: Hotline, **surveys: object) -> None:
    cfg = hotline.settings.surveys.model_copy(update={"calls_per_second": 50.0, **surveys})
    hotline.settings = hotline.settings.model_copy(update={"surveys": cfg})


def attempts(hotline: Hotline) -> list[SurveyAttempt]:
    with hotline.db.session() as s:
        return list(s.scalars(select(SurveyAttempt).order_by(SurveyAttempt.id)))


def test_calling_windows_and_calendar(hotline: Hotline) -> None:
    p = policy_for(hotline)
    assert p.may_call(local(2026, 11, 23, 10, 0))  # Monday
    assert not p.may_call(local(2026, 11, 23, 12, 30))  # lunch
    assert p.may_call(local(2026, 11, 23, 14, 0)) and not p.may_call(local(2026, 11, 23, 20, 0))
    assert not p.may_call(local(2026, 11, 28, 10, 0))  # Saturday
    assert not p.may_call(local(2024, 10, 1, 10, 0))  # National Day
    assert p.may_call(local(2024, 10, 12, 10, 0))  # 调休 Saturday is a working day
    assert p.next_allowed(local(2026, 11, 23, 12, 10)) == local(2026, 11, 23, 14, 0)
    assert p.next_allowed(local(2026, 11, 27, 20, 30)) == local(2026, 11, 30, 9, 0)
    assert p.next_allowed(local(2024, 9, 30, 20, 30)) == local(2024, 10, 8, 9, 0)
    # Completed 2024-09-30: surveyed within 2 working days, i.e. by 2024-10-09 20:00.
    assert p.deadline(local(2024, 9, 30, 16, 0)) == local(2024, 10, 9, 20, 0)


def test_weekends_when_configured_but_never_holidays(hotline: Hotline) -> None:
    fast(hotline, call_on_weekends=True)
    p = policy_for(hotline)
    assert p.may_call(local(2026, 11, 28, 10, 0))  # an ordinary Saturday
    assert not p.may_call(local(2024, 10, 5, 10, 0))  # Saturday inside National Day


def test_pacing_never_exceeds_the_rate_in_any_second() -> None:
    now = [100.0]

    def sleep(s: float) -> None:
        now[0] += s

    pacer = Pacer(3.0, monotonic=lambda: now[0], sleep=sleep)
    starts = [pacer.acquire() for _ in range(30)]
    per_second = Counter(int(t) for t in starts)
    assert max(per_second.values()) <= 3 and len(starts) == 30
    assert all(b - a >= 1 / 3 - 1e-9 for a, b in pairwise(starts))


def test_runner_paces_calls_and_caps_concurrency(hotline: Hotline, clock: FixedClock) -> None:
    clock.set(local(2026, 11, 23, 10, 0))
    fast(hotline, calls_per_second=10.0, max_concurrent=3)
    phones = [f"1390000{i:04d}" for i in range(24)]
    completed_tickets(hotline, phones, local(2026, 11, 23, 9, 0))
    cid, n = create_campaign(hotline, Actor.system("test"), "pace")
    assert n == 24
    dialer = ScriptedDialer(hotline, dict.fromkeys(phones, "satisfied"), hold_s=0.4)
    summary = CampaignRunner(hotline, dialer).run(cid)
    assert summary.state == "done" and summary.dialed == 24
    assert dialer.max_active == 3
    per_second = Counter(int(t) for t in summary.starts)
    assert max(per_second.values()) <= 10


def test_retries_are_spaced_one_per_day_and_stop_at_three(
    hotline: Hotline, clock: FixedClock
) -> None:
    clock.set(local(2026, 11, 23, 10, 0))  # Monday
    fast(hotline, deadline_workdays=5)
    completed_tickets(hotline, ["13900000001"], local(2026, 11, 23, 9, 0))
    cid, _ = create_campaign(hotline, Actor.system("test"), "retry")
    dialer = ScriptedDialer(hotline, {"13900000001": "busy"})
    runner = CampaignRunner(hotline, dialer)
    first = runner.run(cid)
    assert first.state == "waiting" and first.outcomes == {"busy": 1}
    _, a2 = attempts(hotline)
    # 2 hours later is 12:00, when the morning window closes: the afternoon window.
    assert a2.attempt_no == 2 and a2.not_before == local(2026, 11, 23, 14, 0).astimezone(UTC)
    clock.set(local(2026, 11, 23, 14, 0))  # due, but the number was called today
    again = runner.run(cid)
    assert again.dialed == 0 and again.postponed == 1
    assert attempts(hotline)[1].not_before == local(2026, 11, 24, 9, 0).astimezone(UTC)
    clock.set(local(2026, 11, 24, 9, 0))
    runner.run(cid)
    clock.set(local(2026, 11, 25, 9, 0))
    last = runner.run(cid)
    assert last.state == "done"
    assert [a.attempt_no for a in attempts(hotline)] == [1, 2, 3]
    assert [c[0] for c in dialer.calls] == ["13900000001"] * 3
    days = {a.claimed_at.astimezone(SH).date() for a in attempts(hotline) if a.claimed_at}
    assert len(days) == 3  # never more than one survey call per number per day


def test_no_calls_outside_windows(hotline: Hotline, clock: FixedClock) -> None:
    clock.set(local(2026, 11, 23, 12, 30))
    fast(hotline)
    completed_tickets(hotline, ["13900000002"], local(2026, 11, 23, 9, 0))
    cid, _ = create_campaign(hotline, Actor.system("test"), "lunch")
    dialer = ScriptedDialer(hotline, {"13900000002": "satisfied"})
    summary = CampaignRunner(hotline, dialer).run(cid)
    assert summary.dialed == 0 and summary.state == "waiting"
    assert summary.next_due == local(2026, 11, 23, 14, 0).astimezone(UTC)


def test_do_not_call_and_opted_out_callers_are_skipped(hotline: Hotline, clock: FixedClock) -> None:
    clock.set(local(2026, 11, 23, 10, 0))
    fast(hotline, do_not_call=["+86 139 0000 0005"])
    ids = completed_tickets(
        hotline,
        ["13900000003", "13900000004", "13900000005", "13900000006"],
        local(2026, 11, 23, 9, 0),
    )
    add_do_not_call(hotline, Actor.system("test"), "13900000003", "asked on the phone")
    with hotline.db.session() as s:
        t = s.get(Ticket, ids[1])
        assert t is not None
        t.no_callback = True
    cid, _ = create_campaign(hotline, Actor.system("test"), "dnc")
    dialer = ScriptedDialer(hotline, {"13900000006": "satisfied"})
    summary = CampaignRunner(hotline, dialer).run(cid)
    assert [c[0] for c in dialer.calls] == ["13900000006"]
    assert summary.skipped == 3
    outcomes = {a.phone: a.outcome for a in attempts(hotline)}
    assert outcomes["13900000003"] == outcomes["13900000004"] == "do_not_call"
    assert outcomes["13900000005"] == "do_not_call"


def test_statement_asking_for_no_callback_marks_the_ticket(hotline: Hotline) -> None:
    from ivr.calls.simulate import simulate_inbound

    sim = simulate_inbound(
        hotline,
        line="12345",
        caller="13800138000",
        digits="1",
        text="请问社保卡怎么办理，办完不需要回访",
    )
    with hotline.db.session() as s:
        t = s.scalars(select(Ticket).where(Ticket.number == sim.ticket["number"])).one()
        assert t.no_callback


def test_past_deadline_expires(hotline: Hotline, clock: FixedClock) -> None:
    clock.set(local(2026, 11, 27, 10, 0))  # Friday
    fast(hotline)
    completed_tickets(hotline, ["13900000007"], local(2026, 11, 20, 10, 0))
    cid, _ = create_campaign(hotline, Actor.system("test"), "late")
    summary = CampaignRunner(hotline, ScriptedDialer(hotline, {})).run(cid)
    assert summary.expired == 1 and summary.dialed == 0
    assert attempts(hotline)[0].status == "expired"


def test_selection_filters_and_already_planned(hotline: Hotline, clock: FixedClock) -> None:
    clock.set(local(2026, 11, 23, 10, 0))
    completed_tickets(
        hotline, ["13900000008"], local(2026, 11, 23, 9, 0), line="12369", department="生态环境局"
    )
    completed_tickets(hotline, ["13900000009"], local(2026, 11, 20, 9, 0))
    assert create_campaign(hotline, Actor.system("test"), "env", Filters(line="12369"))[1] == 1
    # The ticket already has an open attempt: a second campaign does not take it again.
    assert create_campaign(hotline, Actor.system("test"), "all")[1] == 1
    assert (
        create_campaign(hotline, Actor.system("test"), "dept", Filters(department="无此部门"))[1]
        == 0
    )


def test_crashed_runner_claims_are_never_dialed_again(hotline: Hotline, clock: FixedClock) -> None:
    clock.set(local(2026, 11, 23, 10, 0))
    fast(hotline, deadline_workdays=5)
    completed_tickets(hotline, ["13900000010", "13900000011"], local(2026, 11, 23, 9, 0))
    cid, _ = create_campaign(hotline, Actor.system("test"), "crash")
    with hotline.db.session() as s:
        a1, a2 = s.scalars(select(SurveyAttempt).order_by(SurveyAttempt.id)).all()
        now = clock.now()
        # A runner on another host claimed a1 and died mid-call; a2 was answered (1)
        # and scored before the crash.
        a1.status, a1.claimed_by, a1.claimed_at = "dialing", "elsewhere:1:x", now
        a2.status, a2.claimed_by, a2.claimed_at, a2.score = (
            "dialing",
            "elsewhere:1:x",
            now,
            "satisfied",
        )
        c = s.get(Campaign, cid)
        assert c is not None
        c.runner, c.heartbeat_at = "elsewhere:1:x", now - timedelta(minutes=5)
    dialer = ScriptedDialer(hotline, {})
    summary = CampaignRunner(hotline, dialer).run(cid)
    assert summary.recovered == 2 and dialer.calls == []
    rows = attempts(hotline)
    assert (rows[0].outcome, rows[1].outcome) == ("interrupted", "answered")
    assert rows[1].score == "satisfied"  # nothing recorded is lost
    assert [(a.ticket_id, a.attempt_no) for a in rows[2:]] == [(rows[0].ticket_id, 2)]


def test_live_runner_lease_is_respected(hotline: Hotline, clock: FixedClock) -> None:
    from ivr.surveys.campaigns import CampaignError

    clock.set(local(2026, 11, 23, 10, 0))
    completed_tickets(hotline, ["13900000012"], local(2026, 11, 23, 9, 0))
    cid, _ = create_campaign(hotline, Actor.system("test"), "lease")
    with hotline.db.session() as s:
        c = s.get(Campaign, cid)
        assert c is not None
        c.runner, c.heartbeat_at = "elsewhere:1:x", clock.now()
    with pytest.raises(CampaignError, match="being run by elsewhere"):
        CampaignRunner(hotline, ScriptedDialer(hotline, {})).run(cid)


def test_workcalendar_statutory_holidays() -> None:
    from datetime import date

    cal = WorkCalendar()
    assert cal.is_statutory_holiday(date(2024, 10, 5))
    assert not cal.is_statutory_holiday(date(2026, 11, 28))


def test_embedded_scheduler_runs_running_campaigns_only(
    hotline: Hotline, clock: FixedClock
) -> None:
    from ivr.services.campaigns import resume_campaign
    from ivr.surveys.scheduler import CampaignScheduler

    clock.set(local(2026, 11, 23, 10, 0))
    fast(hotline)
    completed_tickets(hotline, ["13900000020"], local(2026, 11, 23, 9, 0))
    cid, _ = create_campaign(hotline, Actor.system("test"), "sched")
    dialer = ScriptedDialer(hotline, {"13900000020": "satisfied"})
    scheduler = CampaignScheduler(hotline, dialer)
    assert scheduler.tick() == 0  # created, not started
    resume_campaign(hotline, Actor.system("test"), cid)
    assert scheduler.tick() == 1
    with hotline.db.session() as s:
        c = s.get(Campaign, cid)
        assert c is not None and c.status == "done"


# 2027 is beyond chinesecalendar 1.11.0: its holidays are estimated (ivr.holiday_rules).
HOLIDAYS_2027 = {
    local(2027, 1, 1).date(),
    *(local(2027, 2, d).date() for d in (5, 6, 7, 8)),
}


@pytest.mark.parametrize("weekends", [False, True])
def test_no_survey_call_on_the_estimated_2027_holidays(hotline: Hotline, weekends: bool) -> None:
    fast(hotline, call_on_weekends=weekends)
    p = policy_for(hotline)
    for start in (local(2026, 12, 30, 0, 0), local(2027, 2, 3, 0, 0)):
        hours = [start + timedelta(minutes=30 * i) for i in range(8 * 48)]
        allowed = {t.date() for t in hours if p.may_call(t)}
        assert allowed and not allowed & HOLIDAYS_2027
        # Each later retry or next-day call stays off the holidays too.
        t = p.next_allowed(start)
        for _ in range(12):
            assert t.astimezone(SH).date() not in HOLIDAYS_2027
            t = p.next_day(p.retry_at(t))
    assert p.next_allowed(local(2026, 12, 31, 20, 30)) == local(2027, 1, 2 if weekends else 4, 9, 0)
    assert p.next_allowed(local(2027, 2, 4, 20, 30)) == local(2027, 2, 9, 9, 0)
    assert p.may_call(local(2027, 1, 9, 10, 0)) is weekends  # an ordinary Saturday
    # Completed Thursday 2026-12-31: 2 working days are 2027-01-04 and 01-05.
    assert p.deadline(local(2026, 12, 31, 16, 0)) == local(2027, 1, 5, 20, 0)


def test_campaign_plans_its_first_calls_after_the_holidays(
    hotline: Hotline, clock: FixedClock
) -> None:
    for evening, first_call in (
        (local(2026, 12, 31, 20, 30), local(2027, 1, 4, 9, 0)),
        (local(2027, 2, 4, 20, 30), local(2027, 2, 9, 9, 0)),
    ):
        clock.set(evening)
        completed_tickets(hotline, ["13900000021", "13900000022"], evening - timedelta(hours=8))
        cid, n = create_campaign(hotline, Actor.system("test"), f"after {evening:%m-%d}")
        assert n == 2
        with hotline.db.session() as s:
            planned = s.scalars(select(SurveyAttempt).where(SurveyAttempt.campaign_id == cid))
            assert {a.not_before for a in planned} == {first_call.astimezone(UTC)}
