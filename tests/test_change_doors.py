"""One change through each door (CLI, console, JSON API) leaves the same state and the same
audit row; only the actor differs (`cli:<os user>`, `user:<name>`, `api:<token name>`).

Every door offers what it offers: accounts and tokens are managed from the CLI and the
console's accounts page (tokens from the CLI only), campaigns are created from the CLI
and paused or resumed from all three, numbers are put on the do-not-call list from the CLI.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from ivr.accounts import authenticate, user_for_token
from ivr.app import Hotline
from ivr.cli import main
from ivr.services.accounts import create_user
from ivr.services.campaigns import create_campaign
from ivr.services.tickets import complete
from ivr.store import Campaign, DoNotCall, SurveyAttempt, Ticket, User

from .apikit import api_rig
from .conftest import ROOT
from .consolekit import SETUP, audit_log, browser, console_app, draft

OS_USER = "ops"  # who runs `ivr` in these tests
ACTOR = {"cli": f"cli:{OS_USER}", "console": "user:admin", "api": "api:platform-admin"}
# Campaigns are a supervisor's business on the console and the API.
SUPERVISOR = {**ACTOR, "console": "user:supervisor", "api": "api:platform-supervisor"}


def ivr(hotline: Hotline, *args: str, stdin: str | None = None) -> Result:
    env = {"DATABASE_URL": hotline.settings.resolved_database_url, "LOGNAME": OS_USER}
    return CliRunner().invoke(
        main, ["--config", str(ROOT / "config.yaml"), *args], env=env, input=stdin
    )


def changes(hotline: Hotline) -> list[tuple[str, str, dict[str, Any]]]:
    """The audit rows of changes (not sign-ins, not the test's own setup), oldest first."""
    return [(a, act, d) for a, act, _, d in audit_log(hotline) if not act.startswith("login")]


def users(hotline: Hotline) -> list[tuple[str, str, bool]]:
    with hotline.db.read() as s:
        return [
            (u.username, u.role, u.active) for u in s.scalars(select(User).order_by(User.username))
        ]


def signs_in(hotline: Hotline, username: str, password: str) -> bool:
    with hotline.db.read() as s:
        return authenticate(s, username, password) is not None


def status(hotline: Hotline, campaign_id: int) -> str:
    with hotline.db.read() as s:
        return s.get_one(Campaign, campaign_id).status


# An action through a door: (the door's own arguments...) -> whether the door said it was done.
Act = Callable[..., bool]


@contextmanager
def admin_door(hotline: Hotline, door: str) -> Iterator[dict[str, Act]]:
    """Create a user and change a password, through the CLI or the console."""
    with console_app(hotline) as app:  # the same seeded users whichever door is used
        if door == "cli":

            def add(username: str, role: str, password: str) -> bool:
                r = ivr(
                    hotline,
                    "users",
                    "add",
                    username,
                    "--role",
                    role,
                    "--password-stdin",
                    stdin=password + "\n",
                )
                return r.exit_code == 0

            def passwd(username: str, password: str) -> bool:
                r = ivr(
                    hotline, "users", "passwd", username, "--password-stdin", stdin=password + "\n"
                )
                return r.exit_code == 0

            yield {"add": add, "passwd": passwd}
            return
        admin = browser(app, "admin")

        def console_add(username: str, role: str, password: str) -> bool:
            form = {"username": username, "role": role, "password": password}
            r = admin.post("/console/users", form, follow_redirects=True)
            return 'class="flash error"' not in r.get_data(as_text=True)

        def console_passwd(username: str, password: str) -> bool:
            with hotline.db.read() as s:
                user = s.scalars(select(User).where(User.username == username)).one()
                form = {
                    "role": user.role,
                    "active": "on" if user.active else "",
                    "password": password,
                }
            r = admin.post(f"/console/users/{user.id}", form, follow_redirects=True)
            return 'class="flash error"' not in r.get_data(as_text=True)

        yield {"add": console_add, "passwd": console_passwd}


@pytest.mark.parametrize("door", ["cli", "console"])
def test_creating_a_user(hotline: Hotline, door: str) -> None:
    with admin_door(hotline, door) as act:
        assert act["add"]("zhao", "supervisor", "zhao-password")
        assert not act["add"]("zhao", "operator", "other-password")  # taken: refused
        assert not act["add"]("qian", "operator", "short")  # too short: refused
    assert ("zhao", "supervisor", True) in users(hotline)
    assert "qian" not in [u for u, _, _ in users(hotline)]
    assert signs_in(hotline, "zhao", "zhao-password")
    assert changes(hotline) == [
        (ACTOR[door], "user.create", {"username": "zhao", "role": "supervisor"})
    ]


@pytest.mark.parametrize("door", ["cli", "console"])
def test_changing_a_password(hotline: Hotline, door: str) -> None:
    with admin_door(hotline, door) as act:
        create_user(hotline, SETUP, "zhao", "zhao-password", "operator")
        assert act["passwd"]("zhao", "new-password-1")
        assert not act["passwd"]("zhao", "short")
    assert not signs_in(hotline, "zhao", "zhao-password")
    assert signs_in(hotline, "zhao", "new-password-1")
    assert ("zhao", "operator", True) in users(hotline)
    assert changes(hotline) == [
        (ACTOR[door], "user.update", {"username": "zhao", "password": "changed"})
    ]


def test_issuing_and_revoking_a_token_from_the_cli(hotline: Hotline) -> None:
    create_user(hotline, SETUP, "platform", "long enough", "supervisor")
    r = ivr(hotline, "users", "token", "platform", "province")
    assert r.exit_code == 0, r.output
    token = r.output.strip()
    r = ivr(hotline, "users", "token", "platform", "province")
    assert r.exit_code == 1 and "live token named 'province' exists" in r.output
    with hotline.db.read() as s:
        user = user_for_token(s, token)
        assert user is not None and user.username == "platform"
    r = ivr(hotline, "users", "tokens", "platform")
    token_id = r.output.splitlines()[1].split()[0]
    r = ivr(hotline, "users", "revoke", token_id)
    assert r.exit_code == 0, r.output
    r = ivr(hotline, "users", "revoke", token_id)
    assert r.exit_code == 1 and "revoked already" in r.output
    with hotline.db.read() as s:
        assert user_for_token(s, token) is None
    detail = {"username": "platform", "token": "province"}
    assert changes(hotline) == [
        (ACTOR["cli"], "token.issue", detail),
        (ACTOR["cli"], "token.revoke", {**detail, "token_id": int(token_id)}),
    ]


# ---- campaigns and the do-not-call list ---------------------------------------------


def completed(hotline: Hotline) -> str:
    """A completed ticket (办结), ready to be surveyed; its number."""
    return complete(hotline, SETUP, draft(hotline), "已协调城管执法").number


def planned(hotline: Hotline, campaign_id: int) -> list[tuple[str, str]]:
    with hotline.db.read() as s:
        return [
            (t.number, a.phone)
            for a, t in s.execute(
                select(SurveyAttempt, Ticket)
                .join(Ticket, Ticket.id == SurveyAttempt.ticket_id)
                .where(SurveyAttempt.campaign_id == campaign_id)
                .order_by(SurveyAttempt.id)
            )
        ]


def test_creating_a_campaign_from_the_cli(hotline: Hotline, tmp_path: Any) -> None:
    first, second = completed(hotline), completed(hotline)
    r = ivr(hotline, "campaign", "create", "--name", "11月回访", "--line", "12315")
    assert r.exit_code == 0, r.output
    assert "campaign 1: 2 ticket(s) planned" in r.output
    listed = tmp_path / "list.csv"
    listed.write_text(f"工单编号,电话\n{second},13900000001\nnot-a-ticket,1390000002\n")
    r = ivr(hotline, "campaign", "create", "--name", "补访", "--csv", str(listed))
    assert r.exit_code == 0, r.output
    assert "skipped: line 3: no ticket not-a-ticket" in r.output
    r = ivr(hotline, "campaign", "create", "--name", " ")
    assert r.exit_code == 1 and "needs a name" in r.output
    assert [status(hotline, 1), status(hotline, 2)] == ["created", "created"]
    assert planned(hotline, 1) == [(first, "13800138000"), (second, "13800138000")]
    assert planned(hotline, 2) == [(second, "13900000001")]
    assert changes(hotline) == [
        (
            ACTOR["cli"],
            "campaign.create",
            {"campaign": 1, "name": "11月回访", "filters": {"line": "12315"}, "planned": 2},
        ),
        (
            ACTOR["cli"],
            "campaign.create",
            {
                "campaign": 2,
                "name": "补访",
                "filters": {"csv": "list.csv"},
                "planned": 1,
                "skipped": 1,
            },
        ),
    ]


@contextmanager
def supervisor_door(hotline: Hotline, door: str) -> Iterator[Act]:
    """Pause or resume a campaign through one door: (verb, campaign id) -> done."""
    if door == "cli":
        yield lambda verb, cid: ivr(hotline, "campaign", verb, str(cid)).exit_code == 0
        return
    if door == "console":
        with console_app(hotline) as app:
            sup = browser(app, "supervisor")

            def console(verb: str, cid: int) -> bool:
                r = sup.post(f"/console/campaigns/{cid}/{verb}", follow_redirects=True)
                return 'class="flash error"' not in r.get_data(as_text=True)

            yield console
        return
    with api_rig(hotline) as rig:

        def api(verb: str, cid: int) -> bool:
            r = rig.call("POST", f"/api/campaigns/{cid}/{verb}", "supervisor")
            if r.status_code == 200:
                assert r.get_json()["status"] == status(hotline, cid)
                return True
            assert r.status_code == 409
            assert r.get_json()["error"]["code"] == "illegal_transition"
            return False

        yield api


@pytest.mark.parametrize("door", ["cli", "console", "api"])
def test_pausing_and_resuming_a_campaign(hotline: Hotline, door: str) -> None:
    completed(hotline)
    cid, _ = create_campaign(hotline, SETUP, "11月回访")
    seen = []
    with supervisor_door(hotline, door) as act:
        for verb in ("resume", "resume", "pause", "pause", "resume"):
            seen.append((verb, act(verb, cid), status(hotline, cid)))
    assert seen == [
        ("resume", True, "running"),  # a created campaign starts
        ("resume", False, "running"),  # already running: refused
        ("pause", True, "paused"),
        ("pause", False, "paused"),
        ("resume", True, "running"),
    ]

    def row(verb: str, old: str, new: str) -> tuple[str, str, dict[str, Any]]:
        detail = {"campaign": cid, "status": {"old": old, "new": new}}
        return (SUPERVISOR[door], f"campaign.{verb}", detail)

    assert changes(hotline) == [
        row("start", "created", "running"),  # its first run is its start
        row("pause", "running", "paused"),
        row("resume", "paused", "running"),
    ]


def test_operators_may_not_pause_campaigns(hotline: Hotline) -> None:
    cid, _ = create_campaign(hotline, SETUP, "11月回访")
    with api_rig(hotline) as rig:
        r = rig.call("POST", f"/api/campaigns/{cid}/pause", "operator")
        assert r.status_code == 403
        r = rig.call("POST", "/api/campaigns/999/pause", "supervisor")
        assert r.status_code == 404 and r.get_json()["error"]["code"] == "not_found"
    with console_app(hotline) as app:
        assert browser(app, "operator").post(f"/console/campaigns/{cid}/pause").status_code == 403
    assert status(hotline, cid) == "created"
    assert changes(hotline) == []


def test_putting_a_number_on_the_do_not_call_list_from_the_cli(hotline: Hotline) -> None:
    r = ivr(hotline, "campaign", "dnc", "139-0000-0003", "--reason", "不愿接受回访")
    assert r.exit_code == 0 and "139****0003 will not be called" in r.output
    r = ivr(hotline, "campaign", "dnc", "13900000003")
    assert r.exit_code == 0 and "on the list already" in r.output
    r = ivr(hotline, "campaign", "dnc", "not a number")
    assert r.exit_code == 2 and "not a phone number" in r.output
    with hotline.db.read() as s:
        assert s.scalar(select(func.count()).select_from(DoNotCall)) == 1
        assert s.get_one(DoNotCall, "13900000003").reason == "不愿接受回访"
    assert changes(hotline) == [
        (ACTOR["cli"], "dnc.add", {"number": "139****0003", "reason": "不愿接受回访"})
    ]
