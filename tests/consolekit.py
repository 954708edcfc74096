"""The console under test: the real Flask app, a user per role, signed-in clients."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from ivr.app import Hotline
from ivr.calls.simulate import simulate_inbound
from ivr.services import Actor
from ivr.services.accounts import create_user
from ivr.store import AuditEntry, Ticket
from webhooks import create_app

PASSWORD = "password-123"
ROLES = ("operator", "supervisor", "admin")
CALLER = "13800138000"
NOISE = "我要投诉我们小区楼下的烧烤店每天晚上噪音扰民到凌晨两点"
GAS_LEAK = "我们这里燃气管道好像漏气了闻到很大的味道"
# Who the kit's own setup (users, campaigns) is audited as; `audit_log` leaves it out.
SETUP = Actor.system("test-setup")
_CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


def close_app(app: Flask) -> None:
    """Stop the app's background job workers (they live as long as the app)."""
    jobs = app.extensions.get("jobs") or getattr(app.extensions.get("twilio"), "jobs", None)
    if jobs is not None:
        jobs.close(wait=True, timeout=30)


@contextmanager
def console_app(hotline: Hotline) -> Iterator[Flask]:
    app = create_app(hotline)
    app.config["TESTING"] = True
    for role in ROLES:
        create_user(hotline, SETUP, role, PASSWORD, role)
    try:
        yield app
    finally:
        close_app(app)


@dataclass
class Browser:
    """A test client that signs in like a person and sends the page's CSRF token."""

    client: FlaskClient
    csrf: str = ""

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        r = self.client.get(path, **kwargs)
        m = _CSRF.search(r.get_data(as_text=True)) if r.mimetype == "text/html" else None
        if m:
            self.csrf = m.group(1)
        return r

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> TestResponse:
        return self.client.post(path, data={"csrf_token": self.csrf, **(data or {})}, **kwargs)

    def sign_in(self, username: str, password: str = PASSWORD) -> TestResponse:
        self.get("/console/login")
        r = self.post("/console/login", {"username": username, "password": password})
        if r.status_code == 302:  # the page signed in to carries the new session's CSRF token
            self.get(r.headers["Location"])
        return r


def browser(app: Flask, role: str | None = None, password: str = PASSWORD) -> Browser:
    """A client, signed in as the user named `role` (the kit's users are named by role)."""
    b = Browser(app.test_client())
    if role is not None:
        r = b.sign_in(role, password)
        assert r.status_code == 302, r.get_data(as_text=True)
    return b


def draft(hotline: Hotline, text: str = NOISE, *, line: str = "12315", digits: str = "2") -> int:
    """A draft made by a simulated call, as the IVR makes them; its id."""
    sim = simulate_inbound(hotline, line=line, caller=CALLER, digits=digits, text=text)
    assert sim.ticket is not None
    with hotline.db.session() as s:
        return s.scalars(select(Ticket.id).where(Ticket.number == sim.ticket["number"])).one()


def audit_log(hotline: Hotline) -> list[tuple[str, str, int | None, dict[str, Any]]]:
    """What the users did, oldest first: rows written as `system:...` (the kit's setup,
    intake, surveys) are left out."""
    with hotline.db.read() as s:
        return [
            (e.actor, e.action, e.ticket_id, e.detail)
            for e in s.scalars(
                select(AuditEntry)
                .where(AuditEntry.actor.not_like("system:%"))
                .order_by(AuditEntry.id)
            )
        ]


def sse_events(
    client: FlaskClient, path: str, count: int, headers: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """The first `count` ticket events of the queue stream."""
    r = client.get(path, headers=headers or {}, buffered=False)
    assert r.mimetype == "text/event-stream"
    events: list[dict[str, Any]] = []
    buf = ""
    for chunk in r.response:
        buf += chunk.decode() if isinstance(chunk, bytes) else chunk
        while "\n\n" in buf:
            block, buf = buf.split("\n\n", 1)
            data = [ln[6:] for ln in block.splitlines() if ln.startswith("data: ")]
            if "event: ticket" in block and data:
                events.append(json.loads(data[0]))
        if len(events) >= count:
            break
    r.close()
    return events
