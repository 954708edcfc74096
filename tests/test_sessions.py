"""Console sessions, sign-in lockouts, API tokens on the admin page, security headers and
the live queue's bounded, skew-proof replay, through the real Flask app."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from ivr.app import Hotline
from ivr.clock import FixedClock
from ivr.queries.tickets import changed_after, latest_change
from ivr.services.accounts import update_user
from ivr.services.tickets import update
from ivr.store import Ticket
from ivr.store.models import LoginFailure

from .apikit import hotline_on
from .consolekit import PASSWORD, SETUP, Browser, browser, console_app, draft

ATTACKER = {"REMOTE_ADDR": "203.0.113.9"}
DESK = {"REMOTE_ADDR": "10.1.2.3"}


def configured(hotline: Hotline, **console: Any) -> Hotline:
    settings = hotline.settings.model_copy(
        update={"console": hotline.settings.console.model_copy(update=console)}
    )
    return Hotline(settings, hotline.db, hotline.clock)


@pytest.fixture
def app(hotline: Hotline) -> Iterator[Flask]:
    with console_app(configured(hotline, poll_s=0.05, stream_page=3)) as app:
        yield app


@pytest.fixture
def polling_app(hotline: Hotline) -> Iterator[Flask]:
    """Every stream answers one check and ends (as for tabs beyond the stream limit)."""
    with console_app(configured(hotline, stream_page=3, streams_per_process=0)) as app:
        yield app


def signed_in(b: Browser) -> bool:
    return b.client.get("/console/queue").status_code == 200


def copy_of(app: Flask, b: Browser) -> Browser:
    """Another client holding a copy of `b`'s session cookie (as a thief would)."""
    thief = Browser(app.test_client(), b.csrf)
    cookie = b.client.get_cookie("session")
    assert cookie is not None
    thief.client.set_cookie("session", cookie.value)
    return thief


# ---- sessions -------------------------------------------------------------------------


def test_a_copied_cookie_stops_working_at_sign_out(app: Flask) -> None:
    op = browser(app, "operator")
    thief = copy_of(app, op)
    assert signed_in(thief)
    assert op.post("/console/logout").status_code == 302
    assert not signed_in(thief) and not signed_in(op)
    assert thief.client.get("/console/queue").headers["Location"].startswith("/console/login")


@pytest.mark.parametrize(
    "change", [{"password": "a-new-password"}, {"role": "supervisor"}, {"active": False}]
)
def test_an_admins_change_ends_the_users_sessions(
    app: Flask, hotline: Hotline, change: dict[str, Any]
) -> None:
    op = browser(app, "operator")
    other = browser(app, "supervisor")
    assert signed_in(op)
    update_user(hotline, SETUP, "operator", **change)
    assert not signed_in(op)
    assert signed_in(other)  # nobody else is signed out
    if change.get("active", True):
        password = change.get("password", PASSWORD)
        assert browser(app).sign_in("operator", password).status_code == 302


def test_the_admin_page_reset_signs_the_user_out(app: Flask) -> None:
    op = browser(app, "operator")
    admin = browser(app, "admin")
    page = admin.get("/console/users").get_data(as_text=True)
    ids = dict(re.findall(r'<tr id="u-(\w+)">.*?form="user-(\d+)"', page, re.S))
    assert "operator" in ids
    r = admin.post(
        f"/console/users/{ids['operator']}",
        {"role": "operator", "active": "on", "password": "reset-by-admin"},
    )
    assert r.status_code == 303
    assert not signed_in(op)


def test_idle_and_absolute_timeouts(app: Flask, hotline: Hotline) -> None:
    clock = hotline.clock
    assert isinstance(clock, FixedClock)
    op = browser(app, "operator")
    clock.advance(minutes=29)
    assert signed_in(op)  # used within the idle limit: still signed in, and refreshed
    clock.advance(minutes=29)
    assert signed_in(op)
    clock.advance(minutes=31)
    assert not signed_in(op)  # 31 minutes idle
    busy = browser(app, "operator")
    for _ in range(12 * 4):  # used every quarter hour for twelve hours
        assert signed_in(busy)
        clock.advance(minutes=15)
    clock.advance(minutes=1)
    assert not signed_in(busy)  # the absolute limit (console.session_hours)


def stream_events(client: FlaskClient, path: str, **kw: Any) -> Iterator[tuple[str, Any]]:
    """The queue stream's events as they come: ("ticket", data) or ("id", cursor)."""
    r = client.get(path, buffered=False, **kw)
    assert r.mimetype == "text/event-stream"
    buf = ""
    try:
        for chunk in r.response:
            buf += chunk.decode() if isinstance(chunk, bytes) else chunk
            while "\n\n" in buf:
                block, buf = buf.split("\n\n", 1)
                data = [ln[6:] for ln in block.splitlines() if ln.startswith("data: ")]
                ids = [ln[4:] for ln in block.splitlines() if ln.startswith("id: ")]
                if "event: ticket" in block and data:
                    yield "ticket", {**json.loads(data[0]), "event_id": ids[0]}
                elif ids:
                    yield "id", ids[0]
    finally:
        r.close()


def test_an_open_stream_ends_when_the_account_is_disabled(app: Flask, hotline: Hotline) -> None:
    op = browser(app, "operator")
    seen: list[int] = []
    for kind, data in stream_events(op.client, "/console/queue/stream"):
        if kind == "id":  # the stream is open: draft one, then disable the operator
            draft(hotline)
        elif not seen:
            seen.append(data["id"])
            update_user(hotline, SETUP, "operator", active=False)
            draft(hotline)  # made after the account was disabled
        else:
            seen.append(data["id"])
    assert len(seen) == 1  # the stream ended before pushing anything more
    assert op.client.get("/console/queue/stream").status_code in (302, 401)


# ---- sign-in lockouts -------------------------------------------------------------------


def failures(hotline: Hotline) -> int:
    with hotline.db.read() as s:
        return s.scalar(select(func.count()).select_from(LoginFailure)) or 0


def attempt(app: Flask, username: str, password: str, where: dict[str, str]) -> int:
    b = Browser(app.test_client())
    b.client.environ_base.update(where)
    return b.sign_in(username, password).status_code


def test_an_attacker_cannot_lock_an_operator_out_of_their_desk(
    app: Flask, hotline: Hotline
) -> None:
    desk = Browser(app.test_client())
    desk.client.environ_base.update(DESK)
    assert desk.sign_in("operator").status_code == 302  # this browser is known now
    desk.post("/console/logout")
    for _ in range(5):
        assert attempt(app, "operator", "guess-guess", ATTACKER) == 401
    # the username is locked for browsers it never signed in from ...
    assert attempt(app, "operator", PASSWORD, {"REMOTE_ADDR": "10.9.9.9"}) == 429
    # ... but the operator's own browser signs in
    assert desk.sign_in("operator").status_code == 302


def test_an_address_is_blocked_after_many_failures_and_refusals_are_not_counted(
    app: Flask, hotline: Hotline
) -> None:
    limit = hotline.settings.console.max_failed_logins_per_address
    for i in range(limit):
        assert attempt(app, f"nobody-{i}", "guess-guess", ATTACKER) == 401
    counted = failures(hotline)
    assert counted == limit
    # blocked for every username, even with the right password, and not counted
    for _ in range(3):
        assert attempt(app, "supervisor", PASSWORD, ATTACKER) == 429
    assert failures(hotline) == counted
    assert attempt(app, "supervisor", PASSWORD, DESK) == 302  # elsewhere, fine
    hotline.clock.advance(minutes=16)  # type: ignore[attr-defined]
    assert attempt(app, "supervisor", PASSWORD, ATTACKER) == 302


def test_a_locked_username_does_not_count_further_attempts(app: Flask, hotline: Hotline) -> None:
    for _ in range(5):
        assert attempt(app, "operator", "guess-guess", ATTACKER) == 401
    for _ in range(10):
        assert attempt(app, "operator", "guess-guess", {"REMOTE_ADDR": "198.51.100.7"}) == 429
    assert failures(hotline) == 5
    hotline.clock.advance(minutes=16)  # type: ignore[attr-defined]
    # the window is over and nothing was counted meanwhile: no lock any more
    assert attempt(app, "operator", PASSWORD, {"REMOTE_ADDR": "198.51.100.7"}) == 302


# ---- API tokens on the admin page --------------------------------------------------------


def test_admin_issues_lists_and_revokes_tokens(app: Flask, hotline: Hotline) -> None:
    admin = browser(app, "admin")
    page = admin.get("/console/users").get_data(as_text=True)
    sup_id = re.search(r'<option value="(\d+)">supervisor</option>', page)
    assert sup_id
    r = admin.post(
        "/console/tokens", {"user": sup_id.group(1), "name": "province", "expires_days": "30"}
    )
    text = r.get_data(as_text=True)
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    token = re.search(r'id="new-token">.*?<code>(ivr_[^<]+)</code>', text, re.S)
    assert token, text
    assert "从未使用" in text and "2026-12-23" in text  # expires in 30 days
    api = app.test_client()
    auth = {"Authorization": f"Bearer {token.group(1)}"}
    assert api.get("/api/tickets", headers=auth).status_code == 200
    page = admin.get("/console/users").get_data(as_text=True)
    assert token.group(1) not in page  # shown once
    row = re.search(r'<tr id="token-(\d+)">(.*?)</tr>', page, re.S)
    assert row and "province" in row.group(2) and "有效" in row.group(2)
    assert "从未使用" not in row.group(2)  # its last use is shown
    r = admin.post(f"/console/tokens/{row.group(1)}/revoke")
    assert r.status_code == 303
    assert "已撤销令牌 province" in admin.get("/console/users").get_data(as_text=True)
    assert api.get("/api/tickets", headers=auth).status_code == 401
    # operators and supervisors have no access to any of it
    for role in ("operator", "supervisor"):
        b = browser(app, role)
        assert b.post("/console/tokens", {"user": sup_id.group(1), "name": "x"}).status_code == 403


def test_an_expired_token_is_refused(app: Flask, hotline: Hotline) -> None:
    from ivr.services.accounts import issue_token

    token = issue_token(hotline, SETUP, "operator", "short", expires_days=1)
    auth = {"Authorization": f"Bearer {token}"}
    api = app.test_client()
    assert api.get("/api/tickets", headers=auth).status_code == 200
    hotline.clock.advance(days=1)  # type: ignore[attr-defined]
    r = api.get("/api/tickets", headers=auth)
    assert r.status_code == 401 and "expired" in r.get_json()["error"]["message"]


# ---- security headers --------------------------------------------------------------------


def test_pages_and_api_answers_carry_security_headers(app: Flask) -> None:
    op = browser(app, "operator")
    for r in (op.client.get("/console/queue"), app.test_client().get("/api/tickets")):
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        assert "script-src 'self'" in r.headers["Content-Security-Policy"]
        assert r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Referrer-Policy"] == "same-origin"
    cookie = op.client.get("/console/login").headers.get("Set-Cookie", "")
    assert "Secure" not in cookie  # plain HTTP (the test client): a Secure cookie would be lost
    r = op.client.get("/console/login", base_url="https://ivr.example.org")
    assert "Secure" in r.headers["Set-Cookie"] and "HttpOnly" in r.headers["Set-Cookie"]


# ---- the live queue: bounded replay, change numbers -----------------------------------------


def test_a_replay_from_zero_comes_a_page_at_a_time(polling_app: Flask, hotline: Hotline) -> None:
    made = [draft(hotline) for _ in range(7)]
    op = browser(polling_app, "operator")
    got: list[int] = []
    cursor = "0"
    for _ in range(5):
        page = [
            d
            for k, d in stream_events(op.client, f"/console/queue/stream?cursor={cursor}")
            if k == "ticket"
        ]
        assert len(page) <= 3  # console.stream_page
        if not page:
            break
        got += [d["id"] for d in page]
        cursor = page[-1]["event_id"]
        if len(page) < 3:
            break
    assert got == made


def test_a_change_stamped_earlier_than_one_already_sent_is_still_pushed(
    polling_app: Flask, hotline: Hotline
) -> None:
    """Clock skew between hosts: the second change carries an older updated_at."""
    clock = hotline.clock
    assert isinstance(clock, FixedClock)
    first, second = draft(hotline), draft(hotline)
    op = browser(polling_app, "operator")
    with hotline.db.read() as s:
        start = s.scalar(select(func.max(Ticket.change_seq)))
    update(hotline, SETUP, first, {"urgent": True})
    clock.advance(minutes=-10)  # another host, ten minutes behind
    update(hotline, SETUP, second, {"urgent": True})
    clock.advance(minutes=10)
    pushed = [
        d["id"]
        for k, d in stream_events(op.client, f"/console/queue/stream?cursor={start}")
        if k == "ticket"
    ][:2]
    assert pushed == [first, second]


@pytest.mark.postgres
def test_a_slow_transactions_change_is_not_skipped(request: pytest.FixtureRequest) -> None:
    """PostgreSQL, two writers: the one that began first commits last. Its change must
    still come after every change a reader has already seen."""
    with hotline_on(request, "postgres") as pg:
        slow_id, quick_id = draft(pg), draft(pg)
        with pg.db.read() as s:
            start = latest_change(s)
        with pg.db.session() as slow:
            t = slow.get(Ticket, slow_id)
            assert t is not None
            t.summary = "slow transaction"
            slow.flush()  # written, not committed
            update(pg, SETUP, quick_id, {"urgent": True})  # another writer commits first
            with pg.db.read() as s:
                seen = [t.id for t in changed_after(s, start, 10)]
                cursor = latest_change(s)
            assert seen == [quick_id]
        with pg.db.read() as s:  # the slow one committed: it is after the cursor
            assert [t.id for t in changed_after(s, cursor, 10)] == [slow_id]
