"""The loop after registration through each door (JSON API, console, CLI): 延期 on the
working-day calendar, 退回 within its window and 属地兜底 after two returns, 复核 of a
不满意 and the re-survey after re-handling, 督办 (manual and by the scan), and manual
callbacks counted by the survey report; each step leaves its audit row."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import select

from ivr.app import Hotline
from ivr.calls.simulate import simulate_inbound
from ivr.cli import main
from ivr.clock import FixedClock
from ivr.reports.surveys import report, total
from ivr.services import Actor, IllegalTransition, Invalid, lifecycle, supervision
from ivr.services import tickets as service
from ivr.services.campaigns import create_campaign
from ivr.store import AuditEntry, SurveyAttempt, Ticket
from ivr.surveys.campaigns import Filters
from ivr.surveys.outcomes import record_score

from .apikit import ApiRig, api_rig
from .conftest import ROOT
from .consolekit import browser, console_app

NOISE = "我要投诉五华区人民路的烧烤店每天晚上噪音扰民到凌晨两点"
SEEDER = Actor.system("test")
# Monday 2026-11-23 11:00 in Shanghai: an hour after the fixture clock.
LATER = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
DOORS = ("api", "console", "cli")


def registered(app: Hotline, text: str = NOISE, caller: str = "13800138000") -> str:
    sim = simulate_inbound(app, line="12345", caller=caller, digits="2", text=text)
    assert sim.ticket is not None
    number = str(sim.ticket["number"])
    service.accept(app, SEEDER, number)
    return number


def ticket(app: Hotline, number: str) -> Ticket:
    with app.db.read() as s:
        return s.scalars(select(Ticket).where(Ticket.number == number)).one()


def door_audit(app: Hotline, number: str) -> list[tuple[str, str, dict[str, Any]]]:
    with app.db.read() as s:
        rows = s.scalars(
            select(AuditEntry)
            .join(Ticket, AuditEntry.ticket_id == Ticket.id)
            .where(Ticket.number == number, AuditEntry.actor.not_like("system:%"))
            .where(AuditEntry.action != "ticket.view")
            .order_by(AuditEntry.id)
        )
        return [(e.actor, e.action, e.detail) for e in rows]


def set_time(app: Hotline, at: datetime) -> None:
    assert isinstance(app.clock, FixedClock)
    app.clock.set(at)


class Doors:
    """The API, the console and the CLI over one hotline; the API rig and the console app
    (and their users) are made once, when first used."""

    def __init__(self, app: Hotline, stack: ExitStack) -> None:
        self.app, self.stack = app, stack
        self._api: ApiRig | None = None
        self._console: Flask | None = None

    @property
    def api(self) -> ApiRig:
        if self._api is None:
            self._api = self.stack.enter_context(api_rig(self.app))
        return self._api

    @property
    def console(self) -> Flask:
        if self._console is None:
            self._console = self.stack.enter_context(console_app(self.app))
        return self._console

    def cli(self, *args: str) -> tuple[int, str]:
        env = {"DATABASE_URL": self.app.settings.resolved_database_url}
        r = CliRunner().invoke(main, ["--config", str(ROOT / "config.yaml"), *args], env=env)
        return r.exit_code, r.output

    def take(
        self,
        door: str,
        number: str,
        action: str,
        body: dict[str, Any],
        *,
        role: str = "operator",
        cli: list[str],
    ) -> tuple[str, str]:
        """One step through `door`: (the actor the audit log names, the answer's text)."""
        app = self.app
        if door == "api":
            r = self.api.call("POST", f"/api/tickets/{number}/{action}", role, json=body)
            return f"api:platform-{role}", f"{r.status_code} {r.get_data(as_text=True)}"
        if door == "console":
            b = browser(self.console, role)
            tid = ticket(app, number).id
            page = b.get(f"/console/tickets/{tid}").get_data(as_text=True)
            version = page.split('name="version" value="', 1)[1].split('"', 1)[0]
            form = {k: ("on" if v is True else v) for k, v in body.items() if v is not False}
            r = b.post(f"/console/tickets/{tid}/{action}", {**form, "version": version})
            assert r.status_code == 303
            return f"user:{role}", b.get(f"/console/tickets/{tid}").get_data(as_text=True)
        args = ["tickets", *cli]
        if cli[0] in ("extend", "return"):
            local = app.clock.now().astimezone(app.settings.tz)
            args += ["--at", local.strftime("%Y-%m-%dT%H:%M")]
        code, output = self.cli(*args)
        return str(Actor.cli()), f"{code} {output}"


@pytest.fixture
def doors(hotline: Hotline) -> Iterator[Doors]:
    with ExitStack() as stack:
        yield Doors(hotline, stack)


# -- 延期 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("door", DOORS)
def test_extension_moves_the_due_date_on_the_working_day_calendar(
    hotline: Hotline, doors: Doors, door: str
) -> None:
    number = registered(hotline)
    assert ticket(hotline, number).due_date == date(2026, 12, 14)
    set_time(hotline, LATER)
    body = {"workdays": 10, "reason": "需协调多部门联合执法", "consent": True}
    cli = ["extend", number, "--workdays", "10", "--reason", body["reason"], "--consent"]
    actor, _ = doors.take(door, number, "extend", body, cli=cli)
    # 10 working days after Monday 14 December: Monday 28 December.
    assert ticket(hotline, number).due_date == date(2026, 12, 28)
    assert door_audit(hotline, number)[-1] == (
        actor,
        "ticket.extend",
        {
            "changes": {"due_date": {"old": "2026-12-14", "new": "2026-12-28"}},
            "reason": "需协调多部门联合执法",
            "workdays": 10,
            "consent": True,
        },
    )
    # One extension only (lifecycle.max_extensions): the second is refused, nothing changes.
    _, answer = doors.take(door, number, "extend", {**body, "workdays": 2}, cli=cli)
    assert ("已延期 1 次" if door == "console" else "already extended") in answer
    assert ticket(hotline, number).due_date == date(2026, 12, 28)
    assert len(door_audit(hotline, number)) == 1


def test_extension_needs_consent_a_limit_and_the_deadline_not_passed(hotline: Hotline) -> None:
    number = registered(hotline)
    who = Actor.user("wang")
    with pytest.raises(Invalid, match="agree"):
        lifecycle.extend(hotline, who, number, 5, "材料不全", consent=False)
    with pytest.raises(Invalid, match="1 to 10 working days"):
        lifecycle.extend(hotline, who, number, 11, "材料不全", consent=True)
    with pytest.raises(Invalid, match="reason"):
        lifecycle.extend(hotline, who, number, 5, "  ", consent=True)
    set_time(hotline, datetime(2026, 12, 15, 2, 0, tzinfo=UTC))  # the day after the deadline
    with pytest.raises(IllegalTransition, match="before the deadline"):
        lifecycle.extend(hotline, who, number, 5, "材料不全", consent=True)
    assert ticket(hotline, number).due_date == date(2026, 12, 14)
    assert door_audit(hotline, number) == []


# -- 退回 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("door", DOORS)
def test_a_return_sends_the_ticket_back_to_the_operators(
    hotline: Hotline, doors: Doors, door: str
) -> None:
    number = registered(hotline)
    first = ticket(hotline, number).department
    # Tuesday: within the one working day after the department received it on Monday.
    set_time(hotline, datetime(2026, 11, 24, 8, 0, tzinfo=UTC))
    body = {"reason": "不属于本部门职责", "onsite": False}
    actor, _ = doors.take(
        door, number, "return", body, cli=["return", number, "--reason", body["reason"]]
    )
    assert ticket(hotline, number).status == "returned"
    assert door_audit(hotline, number)[-1] == (
        actor,
        "ticket.return",
        {
            "changes": {
                "returns": {"old": 0, "new": 1},
                "status": {"old": "registered", "new": "returned"},
            },
            "reason": "不属于本部门职责",
            "onsite": False,
        },
    )
    # Re-dispatched by an operator, to another department than the one that returned it.
    with pytest.raises(Invalid, match="already returned"):
        lifecycle.redispatch(hotline, Actor.user("li"), number, first)
    body = {"department": "生态环境局"}
    actor, _ = doors.take(
        door,
        number,
        "redispatch",
        body,
        cli=["redispatch", number, "--department", "生态环境局"],
    )
    t = ticket(hotline, number)
    assert (t.status, t.department) == ("registered", "生态环境局")
    assert door_audit(hotline, number)[-1][:2] == (actor, "ticket.redispatch")


def test_late_returns_are_refused_and_an_onsite_check_has_three_working_days(
    hotline: Hotline,
) -> None:
    number = registered(hotline)  # received Monday 23 November
    who = Actor.user("zhao")
    set_time(hotline, datetime(2026, 11, 25, 2, 0, tzinfo=UTC))  # Wednesday
    with pytest.raises(IllegalTransition, match="until 2026-11-24"):
        lifecycle.return_ticket(hotline, who, number, "不属于本部门职责")
    changed = lifecycle.return_ticket(hotline, who, number, "现场核实非本部门辖区", onsite=True)
    assert changed.shown["status"] == "returned"
    set_time(hotline, datetime(2026, 11, 27, 2, 0, tzinfo=UTC))  # Friday: day 4 of the second
    lifecycle.redispatch(hotline, who, number, "生态环境局")
    # Received again on Friday; the next working day is Monday 30 November.
    set_time(hotline, datetime(2026, 12, 1, 2, 0, tzinfo=UTC))
    with pytest.raises(IllegalTransition, match="until 2026-11-30"):
        lifecycle.return_ticket(hotline, who, number, "不属于本部门职责")


def test_after_two_returns_the_district_government_takes_the_ticket(
    hotline: Hotline, doors: Doors
) -> None:
    number = registered(hotline)
    who = Actor.user("zhao")
    lifecycle.return_ticket(hotline, who, number, "不属于本部门职责")
    lifecycle.redispatch(hotline, who, number, "生态环境局")
    changed = lifecycle.return_ticket(hotline, who, number, "也不属于本部门职责")
    t = ticket(hotline, number)
    # The address is in 五华区: its government takes it (属地兜底), still registered.
    assert (t.status, t.department, t.department_source) == (
        "registered",
        "五华区人民政府",
        "territorial",
    )
    assert changed.changes["returns"] == {"old": 1, "new": 2}
    from ivr.queries.lifecycle import returns_by_department

    with hotline.db.read() as s:
        counted = returns_by_department(s)
    assert counted == {first_department(hotline, number): 1, "生态环境局": 1}
    code, output = doors.cli("tickets", "returns")
    assert code == 0 and "生态环境局" in output


def first_department(app: Hotline, number: str) -> str:
    with app.db.read() as s:
        entry = s.scalars(
            select(AuditEntry)
            .join(Ticket, AuditEntry.ticket_id == Ticket.id)
            .where(Ticket.number == number, AuditEntry.action == "ticket.redispatch")
        ).one()
        return str(entry.detail["changes"]["department"]["old"])


# -- 复核 and the re-survey -------------------------------------------------------------


def surveyed(
    app: Hotline,
    number: str,
    score: str,
    resolved: str | None = None,
    filters: Filters | None = None,
) -> int:
    """A campaign plans the completed ticket and the callee answers; the campaign's id."""
    campaign_id, planned = create_campaign(app, SEEDER, "回访", filters)
    assert planned == 1
    with app.db.session() as s:
        attempt = s.scalars(
            select(SurveyAttempt).where(SurveyAttempt.campaign_id == campaign_id)
        ).one()
        attempt.status = "done"
        record_score(
            s, {"attempt_id": attempt.id, "score": score, "resolved": resolved}, app.clock.now()
        )
    return campaign_id


@pytest.mark.parametrize("door", DOORS)
def test_an_unsatisfied_ticket_reviewed_rehandled_and_completed_is_surveyed_again(
    hotline: Hotline, doors: Doors, door: str
) -> None:
    number = registered(hotline)
    service.complete(hotline, SEEDER, number, "已责令整改")
    surveyed(hotline, number, "unsatisfied", "unresolved")
    t = ticket(hotline, number)
    assert (t.status, t.survey_outcome, t.survey_resolved) == (
        "review",
        "unsatisfied",
        "unresolved",
    )
    # Not surveyed again while under review, nor while re-handled.
    assert create_campaign(hotline, SEEDER, "复核中")[1] == 0

    body = {"decision": "confirm", "reason": "经核实诉求属实"}
    cli = ["review", number, "confirm", "--reason", body["reason"]]
    actor, _ = doors.take(door, number, "review", body, role="supervisor", cli=cli)
    t = ticket(hotline, number)
    assert (t.status, t.rehandle_count) == ("rehandle", 1)
    assert door_audit(hotline, number)[-1] == (
        actor,
        "ticket.review.confirm",
        {
            "changes": {
                "status": {"old": "review", "new": "rehandle"},
                "rehandle_count": {"old": 0, "new": 1},
            },
            "reason": "经核实诉求属实",
        },
    )
    assert create_campaign(hotline, SEEDER, "重办中")[1] == 0

    set_time(hotline, datetime(2026, 11, 26, 2, 0, tzinfo=UTC))
    changed = service.complete(hotline, SEEDER, number, "烧烤店已取缔")
    assert changed.changes["survey_outcome"] == {"old": "unsatisfied", "new": None}
    assert changed.changes["survey_round"] == {"old": 1, "new": 2}
    # The next date-range campaign plans it again, in round 2; round 1's answer is kept.
    day = date(2026, 11, 26)
    second = surveyed(hotline, number, "satisfied", "resolved", Filters(day, day))
    with hotline.db.read() as s:
        rounds = [
            (a.round, a.campaign_id == second, a.score, a.resolved)
            for a in s.scalars(
                select(SurveyAttempt)
                .join(Ticket, Ticket.id == SurveyAttempt.ticket_id)
                .where(Ticket.number == number, SurveyAttempt.score.is_not(None))
                .order_by(SurveyAttempt.id)
            )
        ]
    assert rounds == [(1, False, "unsatisfied", "unresolved"), (2, True, "satisfied", "resolved")]
    t = ticket(hotline, number)
    assert (t.status, t.survey_outcome, t.survey_resolved) == ("surveyed", "satisfied", "resolved")


def test_an_overruled_unsatisfied_is_not_rehandled(hotline: Hotline) -> None:
    number = registered(hotline)
    service.complete(hotline, SEEDER, number, "已责令整改")
    surveyed(hotline, number, "unsatisfied")
    with pytest.raises(Invalid, match="reason"):
        lifecycle.review(hotline, Actor.user("chen"), number, "overrule", "")
    lifecycle.review(hotline, Actor.user("chen"), number, "overrule", "诉求超出政策规定")
    t = ticket(hotline, number)
    assert (t.status, t.survey_outcome, t.rehandle_count) == ("surveyed", "unsatisfied", 0)
    with pytest.raises(IllegalTransition, match="nothing to review"):
        lifecycle.review(hotline, Actor.user("chen"), number, "confirm", "再议")


def test_operators_may_not_review(hotline: Hotline, doors: Doors) -> None:
    number = registered(hotline)
    service.complete(hotline, SEEDER, number, "已责令整改")
    surveyed(hotline, number, "unsatisfied")
    r = doors.api.call(
        "POST",
        f"/api/tickets/{number}/review",
        "operator",
        json={"decision": "confirm", "reason": "属实"},
    )
    assert r.status_code == 403
    assert ticket(hotline, number).status == "review"


# -- 督办 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("door", DOORS)
def test_a_supervisor_supervises_a_ticket_and_it_is_on_the_list(
    hotline: Hotline, doors: Doors, door: str
) -> None:
    number = registered(hotline)
    body = {"reason": "市领导批示，限期办结"}
    cli = ["supervise", number, "--reason", body["reason"]]
    actor, _ = doors.take(door, number, "supervise", body, role="supervisor", cli=cli)
    assert door_audit(hotline, number)[-1] == (
        actor,
        "ticket.supervise",
        {"source": "manual", "reason": "市领导批示，限期办结"},
    )
    items = doors.api.call("GET", "/api/supervision", "operator").get_json()["items"]
    assert [(i["number"], i["source"], i["reason"], i["caller"]) for i in items] == [
        (number, "manual", "市领导批示，限期办结", "138****8000")
    ]
    # Twice is refused; completing the ticket ends the supervision.
    with pytest.raises(IllegalTransition, match="already under supervision"):
        lifecycle.supervise(hotline, Actor.user("chen"), number, "再督办")
    service.complete(hotline, SEEDER, number, "已办结")
    with hotline.db.read() as s:
        from ivr.queries.lifecycle import supervision_list

        assert supervision_list(s) == []


def test_the_scan_supervises_overdue_and_repeated_complaints_once(
    hotline: Hotline, doors: Doors
) -> None:
    overdue = registered(hotline, "我要投诉官渡区关上街道的商家乱收费")
    same_place = [
        registered(hotline, "盘龙区北京路的工地晚上施工噪音扰民", caller=f"1390000000{i}")
        for i in range(3)
    ]
    set_time(hotline, datetime(2026, 12, 15, 2, 0, tzinfo=UTC))  # after the 15 working days
    counts = supervision.scan(hotline, Actor.system("supervision"))
    assert counts["overdue"] == 4 and counts["repeat_address"] == 3
    assert supervision.scan(hotline, Actor.system("supervision"))["overdue"] == 0  # once
    code, output = doors.cli("tickets", "supervision")
    assert code == 0, output
    assert overdue in output and "超期未办结" in output
    assert all(n in output for n in same_place) and "同一地址重复投诉" in output


def test_the_scheduler_runs_the_scan_every_so_often(
    hotline: Hotline, clock: FixedClock, tmp_path: Path
) -> None:
    from ivr.jobs import DramatiqJobs
    from ivr.queries.lifecycle import supervision_list
    from ivr.runtime.lease import Lease
    from ivr.surveys.scheduler import DispatchScheduler

    number = registered(hotline)
    jobs = DramatiqJobs(hotline.settings.jobs)
    scheduler = DispatchScheduler(hotline, jobs, Lease(hotline.db, "scheduler", tmp_path), 1.0)
    try:
        set_time(hotline, datetime(2026, 12, 15, 2, 0, tzinfo=UTC))
        assert scheduler.tick() == 0  # no campaign to dial; the scan ran
        with hotline.db.read() as s:
            assert [(r.ticket.number, r.source, r.actor) for r in supervision_list(s)] == [
                (number, "overdue", "system:supervision")
            ]
        clock.advance(minutes=30)
        assert scheduler.scan_supervision() is None  # every 60 minutes
        clock.advance(minutes=31)
        assert scheduler.scan_supervision() == {
            "overdue": 0,
            "repeat_address": 0,
            "repeat_subject": 0,
        }
    finally:
        jobs.close(wait=False)
        scheduler.lease.release()


# -- 人工回访 -----------------------------------------------------------------------------


@pytest.mark.parametrize("door", DOORS)
def test_a_manual_callback_is_counted_by_the_survey_report(
    hotline: Hotline, doors: Doors, door: str
) -> None:
    number = registered(hotline)
    service.complete(hotline, SEEDER, number, "已责令整改")
    surveyed(hotline, number, "unsatisfied")
    before = total(report(hotline))
    listed = doors.api.call("GET", "/api/callbacks", "operator").get_json()["items"]
    assert [(i["number"], i["reasons"]) for i in listed] == [(number, ["unsatisfied"])]

    body = {"score": "basically_satisfied", "resolved": "resolved", "note": "市民表示已改善"}
    if door == "api":
        r = doors.api.call("POST", f"/api/tickets/{number}/callbacks", "operator", json=body)
        assert r.status_code == 201, r.get_json()
        actor = "api:platform-operator"
    elif door == "console":
        b = browser(doors.console, "operator")
        page = b.get("/console/callbacks").get_data(as_text=True)
        assert number in page and "不满意" in page and "138****8000" in page
        tid = ticket(hotline, number).id
        assert b.post(f"/console/tickets/{tid}/callback", body).status_code == 303
        actor = "user:operator"
    else:
        code, output = doors.cli("callbacks", "record", number, "--score",
                                 "basically_satisfied", "--resolved", "resolved",
                                 "--note", body["note"])  # fmt: skip
        assert code == 0, output
        actor = str(Actor.cli())

    after = total(report(hotline))
    # The ticket's result is now the callback's 基本满意; the call is counted.
    assert (before.unsatisfied, before.basically_satisfied) == (1, 0)
    assert (after.unsatisfied, after.basically_satisfied, after.attempts) == (
        0,
        1,
        before.attempts + 1,
    )
    assert after.satisfaction_rate == 1.0
    callback = [row for row in door_audit(hotline, number) if row[1] == "ticket.callback"]
    assert [(a, d["score"], d["resolved"], d["note"]) for a, _, d in callback] == [
        (actor, "basically_satisfied", "resolved", "市民表示已改善")
    ]
    t = ticket(hotline, number)
    # The first contact is the callback's time (the CLI's clock is the real one).
    assert t.first_contact_at is not None and t.first_contact_at >= hotline.clock.now()
    with hotline.db.read() as s:
        from ivr.queries.lifecycle import callback_list

        assert callback_list(s) == []  # called back: off the list


def test_failed_automatic_attempts_and_supervised_tickets_are_on_the_callback_list(
    hotline: Hotline,
) -> None:
    from ivr.queries.lifecycle import callback_list

    unreached = registered(hotline)
    service.complete(hotline, SEEDER, unreached, "已办结")
    campaign_id, _ = create_campaign(hotline, SEEDER, "回访")
    with hotline.db.session() as s:
        for a in s.scalars(select(SurveyAttempt).where(SurveyAttempt.campaign_id == campaign_id)):
            a.status, a.outcome = "done", "no_answer"
    pressed = registered(hotline, "我要投诉西山区滇池路的饭店油烟扰民", caller="13900000001")
    lifecycle.supervise(hotline, Actor.user("chen"), pressed, "群众多次反映")
    with hotline.db.read() as s:
        listed = {i.ticket.number: i.reasons for i in callback_list(s)}
    assert listed == {unreached: ["failed"], pressed: ["supervised"]}
    with pytest.raises(Invalid, match="score"):
        from ivr.services.callbacks import record_callback

        record_callback(hotline, Actor.user("li"), unreached, "great", None, "")
