"""Campaign policy with an injectable clock: windows, calendar, retries, pacing, limits."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from ivr.app import Hotline
from ivr.clock import FixedClock
from ivr.config import Settings
from ivr.services import Actor
from ivr.services.campaigns import create_campaign
from ivr.services.dnc import add_do_not_call
from ivr.store import Campaign, SurveyAttempt, Ticket
from ivr.surveys.campaigns import Filters, policy_for
from ivr.surveys.policy import Pacer
from ivr.surveys.run import run_campaign
from ivr.workdays import WorkCalendar

from .conftest import ROOT
from .scaleout import most_at_once, most_in_any_window, read_calls
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


def test_campaign_run_paces_calls_and_caps_concurrency(hotline: Hotline, clock: FixedClock) -> None:
    clock.set(local(2026, 11, 23, 10, 0))
    fast(hotline, calls_per_second=10.0, max_concurrent=3)
    phones = [f"1390000{i:04d}" for i in range(24)]
    completed_tickets(hotline, phones, local(2026, 11, 23, 9, 0))
    cid, n = create_campaign(hotline, Actor.system("test"), "pace")
    assert n == 24
    dialer = ScriptedDialer(hotline, dict.fromkeys(phones, "satisfied"), hold_s=0.4)
    summary = run_campaign(hotline, dialer, cid)
    assert summary.state == "done" and summary.dialed == 24
    assert dialer.max_active == 3
    assert most_in_any_window(dialer.starts) <= 10


def test_retries_are_spaced_one_per_day_and_stop_at_three(
    hotline: Hotline, clock: FixedClock
) -> None:
    clock.set(local(2026, 11, 23, 10, 0))  # Monday
    fast(hotline, deadline_workdays=5)
    completed_tickets(hotline, ["13900000001"], local(2026, 11, 23, 9, 0))
    cid, _ = create_campaign(hotline, Actor.system("test"), "retry")
    dialer = ScriptedDialer(hotline, {"13900000001": "busy"})
    first = run_campaign(hotline, dialer, cid)
    assert first.state == "waiting" and first.outcomes == {"busy": 1}
    _, a2 = attempts(hotline)
    # 2 hours later is 12:00, when the morning window closes: the afternoon window.
    assert a2.attempt_no == 2 and a2.not_before == local(2026, 11, 23, 14, 0).astimezone(UTC)
    clock.set(local(2026, 11, 23, 14, 0))  # due, but the number was called today
    again = run_campaign(hotline, dialer, cid)
    assert again.dialed == 0 and again.postponed == 1
    assert attempts(hotline)[1].not_before == local(2026, 11, 24, 9, 0).astimezone(UTC)
    clock.set(local(2026, 11, 24, 9, 0))
    run_campaign(hotline, dialer, cid)
    clock.set(local(2026, 11, 25, 9, 0))
    last = run_campaign(hotline, dialer, cid)
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
    summary = run_campaign(hotline, dialer, cid)
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
    summary = run_campaign(hotline, dialer, cid)
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
    summary = run_campaign(hotline, ScriptedDialer(hotline, {}), cid)
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


def test_calls_a_crashed_run_left_dialing_are_never_dialed_again(
    hotline: Hotline, clock: FixedClock
) -> None:
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
    summary = run_campaign(hotline, dialer, cid)
    assert summary.recovered == 2 and dialer.calls == []
    rows = attempts(hotline)
    assert (rows[0].outcome, rows[1].outcome) == ("interrupted", "answered")
    assert rows[1].score == "satisfied"  # nothing recorded is lost
    assert [(a.ticket_id, a.attempt_no) for a in rows[2:]] == [(rows[0].ticket_id, 2)]


def test_campaign_run_respects_a_live_runner_lease(hotline: Hotline, clock: FixedClock) -> None:
    from ivr.surveys.campaigns import CampaignError

    clock.set(local(2026, 11, 23, 10, 0))
    completed_tickets(hotline, ["13900000012"], local(2026, 11, 23, 9, 0))
    cid, _ = create_campaign(hotline, Actor.system("test"), "lease")
    with hotline.db.session() as s:
        c = s.get(Campaign, cid)
        assert c is not None
        c.runner, c.heartbeat_at = "elsewhere:1:x", clock.now()
    with pytest.raises(CampaignError, match="being run by elsewhere"):
        run_campaign(hotline, ScriptedDialer(hotline, {}), cid)


def test_workcalendar_statutory_holidays() -> None:
    from datetime import date

    cal = WorkCalendar()
    assert cal.is_statutory_holiday(date(2024, 10, 5))
    assert not cal.is_statutory_holiday(date(2026, 11, 28))


def test_embedded_scheduler_runs_running_campaigns_only(
    hotline: Hotline, clock: FixedClock, tmp_path: Path
) -> None:
    from ivr.jobs import DramatiqJobs
    from ivr.jobs.registry import register_jobs
    from ivr.runtime.lease import Lease
    from ivr.services.campaigns import resume_campaign
    from ivr.surveys.scheduler import DispatchScheduler

    clock.set(local(2026, 11, 23, 10, 0))
    fast(hotline)
    completed_tickets(hotline, ["13900000020"], local(2026, 11, 23, 9, 0))
    cid, _ = create_campaign(hotline, Actor.system("test"), "sched")
    dialer = ScriptedDialer(hotline, {"13900000020": "satisfied"})
    jobs = DramatiqJobs(hotline.settings.jobs)
    register_jobs(hotline, jobs, dialer)
    scheduler = DispatchScheduler(hotline, jobs, Lease(hotline.db, "scheduler", tmp_path), 1.0)
    try:
        assert scheduler.tick() == 0  # created, not started
        resume_campaign(hotline, Actor.system("test"), cid)
        assert scheduler.tick() == 1
        assert jobs.wait_idle(20)
        assert scheduler.tick() == 0
    finally:
        jobs.close(wait=False)
        scheduler.lease.release()
    assert [n for n, _ in dialer.calls] == ["13900000020"]
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


def _campaign_run_cli(settings: Settings, tmp: Path, calls_log: Path, *args: str) -> str:
    """`ivr campaign run ARGS` in a child process with the recording dialer; its output."""
    cfg = tmp / "settings.json"
    cfg.write_text(settings.model_dump_json())
    at = local(2026, 11, 23, 10, 0).isoformat()
    cmd = [sys.executable, "-m", "tests.campaign_cli_child", str(cfg), at, str(calls_log), "0.3"]
    done = subprocess.run(
        [*cmd, "campaign", "run", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    return f"exit {done.returncode}\n{done.stdout}{done.stderr}"


def test_campaign_run_command_without_redis_dials_in_its_own_process(
    hotline: Hotline, clock: FixedClock, tmp_path: Path
) -> None:
    from ivr.services.campaigns import pause_campaign

    fast(hotline, calls_per_second=4.0, max_concurrent=2)
    phones = [f"1390000{i:04d}" for i in range(8)]
    completed_tickets(hotline, phones, local(2026, 11, 23, 9, 0))
    cid, _ = create_campaign(hotline, Actor.system("test"), "cli")
    calls_log = tmp_path / "calls.jsonl"
    out = _campaign_run_cli(hotline.settings, tmp_path, calls_log, str(cid))
    assert out.startswith("exit 0") and "done: dialed 8; answered 8" in out, out
    assert "8/8" in out  # the progress bar
    calls = read_calls(calls_log)
    starts = [c for c in calls if c["event"] == "start"]
    ends = {c["attempt_id"]: c["t"] for c in calls if c["event"] == "end"}
    assert sorted(c["phone"] for c in starts) == phones
    assert most_in_any_window([c["t"] for c in starts]) <= 4
    assert most_at_once([(c["t"], ends[c["attempt_id"]]) for c in starts]) == 2
    # A campaign that cannot run says why, without a traceback.
    out = _campaign_run_cli(hotline.settings, tmp_path, calls_log, "999")
    assert out.startswith("exit 1") and "error: no campaign 999" in out, out
    cid2, _ = create_campaign(hotline, Actor.system("test"), "empty")
    pause_campaign(hotline, Actor.system("test"), cid2)
    out = _campaign_run_cli(hotline.settings, tmp_path, calls_log, str(cid2))
    assert out.startswith("exit 1") and f"campaign {cid2} is paused: resume it first" in out
    assert "Traceback" not in out
