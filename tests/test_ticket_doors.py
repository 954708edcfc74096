"""The same ticket change through each door (JSON API, console, CLI) leaves the same ticket
and the same audit row, naming the door's actor; the doors share one set of rules; two
processes racing on one ticket serialize, on SQLite and on PostgreSQL."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from ivr.app import Hotline
from ivr.cli import main
from ivr.services import Actor
from ivr.services import tickets as service
from ivr.store import AuditEntry, Ticket

from .apikit import BACKENDS, api_rig, hotline_on
from .conftest import ROOT
from .consolekit import browser, console_app
from .ticket_race_child import race

NOISE = "我要投诉我们小区楼下的烧烤店每天晚上噪音扰民到凌晨两点"
FIRE = "我家楼下的饭店着火了火很大"  # an emergency: out of the hotline's scope (119)
NOTE = "已协调城管执法，烧烤店已整改"
SEEDER = Actor.system("test")


def draft(app: Hotline, text: str = NOISE, digits: str = "2") -> str:
    from ivr.calls.simulate import simulate_inbound

    sim = simulate_inbound(app, line="12345", caller="13800138000", digits=digits, text=text)
    assert sim.ticket is not None
    return str(sim.ticket["number"])


def state(app: Hotline, number: str) -> tuple[object, ...]:
    with app.db.read() as s:
        t = s.scalars(select(Ticket).where(Ticket.number == number)).one()
        return (t.status, t.result_note, t.completed_at is not None, t.duplicate_of_id)


def door_audit(app: Hotline, number: str) -> list[tuple[str, str, dict[str, object]]]:
    """The audit rows a door wrote for the ticket (not the intake's or the seeding's)."""
    with app.db.read() as s:
        rows = s.scalars(
            select(AuditEntry)
            .join(Ticket, AuditEntry.ticket_id == Ticket.id)
            .where(Ticket.number == number, AuditEntry.actor.not_like("system:%"))
            .where(AuditEntry.action != "ticket.view")
            .order_by(AuditEntry.id)
        )
        return [(e.actor, e.action, e.detail) for e in rows]


def ticket_id(app: Hotline, number: str) -> int:
    with app.db.read() as s:
        return s.scalars(select(Ticket.id).where(Ticket.number == number)).one()


# -- one change, three doors --------------------------------------------------------------


def complete_by_api(app: Hotline, number: str) -> str:
    with api_rig(app) as rig:
        resp = rig.call("POST", f"/api/tickets/{number}/complete", "supervisor",
                        json={"note": NOTE})  # fmt: skip
        assert resp.status_code == 200, resp.get_json()
    return "api:platform-supervisor"


def complete_by_console(app: Hotline, number: str) -> str:
    with console_app(app) as flask_app:
        sup = browser(flask_app, "supervisor")
        page = sup.get(f"/console/tickets/{ticket_id(app, number)}").get_data(as_text=True)
        version = page.split('name="version" value="', 1)[1].split('"', 1)[0]
        r = sup.post(f"/console/tickets/{ticket_id(app, number)}/complete",
                     {"note": NOTE, "version": version})  # fmt: skip
        assert r.status_code == 303
    return "user:supervisor"


def complete_by_cli(app: Hotline, number: str) -> str:
    env = {"DATABASE_URL": app.settings.resolved_database_url}
    args = ["--config", str(ROOT / "config.yaml"), "tickets", "complete", number, "--note", NOTE]
    r = CliRunner().invoke(main, args, env=env)
    assert r.exit_code == 0, r.output
    assert "completed" in r.output
    return str(Actor.cli())


DOORS: dict[str, Callable[[Hotline, str], str]] = {
    "api": complete_by_api,
    "console": complete_by_console,
    "cli": complete_by_cli,
}


@pytest.mark.parametrize("door", DOORS)
def test_completing_through_each_door_leaves_the_same_ticket_and_audit_row(
    hotline: Hotline, door: str
) -> None:
    number = draft(hotline)
    service.accept(hotline, SEEDER, number)
    actor = DOORS[door](hotline, number)
    assert state(hotline, number) == ("completed", NOTE, True, None)
    assert door_audit(hotline, number) == [
        (
            actor,
            "ticket.complete",
            {
                "changes": {
                    "status": {"old": "registered", "new": "completed"},
                    "result_note": {"old": None, "new": NOTE},
                }
            },
        )
    ]


def test_cli_complete_is_audited_with_the_os_user(hotline: Hotline) -> None:
    import getpass

    number = draft(hotline)
    complete_by_cli(hotline, number)
    [(actor, action, _)] = door_audit(hotline, number)
    assert (actor, action) == (f"cli:{getpass.getuser()}", "ticket.complete")
    # Completing again is refused, and refusals are not audited.
    args = ["--config", str(ROOT / "config.yaml"), "tickets", "complete", number, "--note", "x"]
    env = {"DATABASE_URL": hotline.settings.resolved_database_url}
    r = CliRunner().invoke(main, args, env=env)
    assert r.exit_code == 1 and "cannot become completed" in r.output
    assert len(door_audit(hotline, number)) == 1


def test_api_refuses_to_complete_an_out_of_scope_draft_as_it_refuses_to_accept_it(
    hotline: Hotline,
) -> None:
    number = draft(hotline, FIRE, digits="3")
    with api_rig(hotline) as rig:
        accepted = rig.call("POST", f"/api/tickets/{number}/accept")
        completed = rig.call("POST", f"/api/tickets/{number}/complete", "supervisor",
                             json={"note": "已处理"})  # fmt: skip
        for resp in (accepted, completed):
            assert resp.status_code == 409, resp.get_json()
            error = resp.get_json()["error"]
            assert error["code"] == "illegal_transition" and "out of scope" in error["message"]
        shown = rig.call("GET", f"/api/tickets/{number}").get_json()
    assert (shown["status"], shown["out_of_scope"], shown["result_note"]) == ("draft", True, None)
    assert door_audit(hotline, number) == []


# -- two processes, one ticket ---------------------------------------------------------------


def run_race(app: Hotline, number: str, op: str) -> list[str]:
    """Two spawned processes doing `op` on the ticket at the same moment; their outcomes."""
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    settings, at = app.settings.model_dump_json(), app.clock.now().isoformat()
    racers = [
        ctx.Process(target=race, args=(settings, at, number, op, name, barrier, out))
        for name in ("racer-a", "racer-b")
    ]
    for p in racers:
        p.start()
    for p in racers:
        p.join(timeout=120)
        assert p.exitcode == 0
    results = dict(out.get(timeout=5) for _ in racers)
    return sorted(results.values())


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_processes_accepting_one_draft_serialize(
    request: pytest.FixtureRequest, backend: str
) -> None:
    with hotline_on(request, backend) as app:
        number = draft(app)
        assert run_race(app, number, "accept") == ["IllegalTransition", "won"]
        with app.db.read() as s:
            accepts = s.scalars(
                select(AuditEntry.actor).where(AuditEntry.action == "ticket.accept")
            ).all()
        assert len(accepts) == 1 and state(app, number)[0] == "registered"


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_processes_editing_one_version_lose_no_update(
    request: pytest.FixtureRequest, backend: str
) -> None:
    with hotline_on(request, backend) as app:
        number = draft(app)
        assert run_race(app, number, "edit") == ["Stale", "won"]
        with app.db.read() as s:
            edits = s.execute(
                select(AuditEntry.actor, AuditEntry.detail).where(
                    AuditEntry.action == "ticket.update"
                )
            ).all()
            summary = s.scalars(select(Ticket.summary).where(Ticket.number == number)).one()
        # The one edit that was made is the one the ticket shows.
        [(winner, detail)] = edits
        assert summary == f"{winner.removeprefix('system:')} 改的摘要"
        assert detail["changes"]["summary"]["new"] == summary
