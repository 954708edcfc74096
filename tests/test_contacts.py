"""及时联系 through each door (JSON API, console, CLI): the first contact becomes the
ticket's first_contact_at, later ones are kept; each leaves one audit row and a new
version; a contact in the future, before the call or on a draft is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from ivr.app import Hotline
from ivr.calls.simulate import simulate_inbound
from ivr.services import Actor, IllegalTransition, Invalid
from ivr.services import tickets as service
from ivr.services.contacts import record_contact
from ivr.store.models import TicketContact
from ivr.tickets import version

from .consolekit import browser
from .test_lifecycle import DOORS, LATER, Doors, door_audit, doors, registered, set_time, ticket

__all__ = ["doors"]  # the fixture, shared with test_lifecycle

FIRST = datetime(2026, 11, 23, 2, 30, tzinfo=UTC)  # 10:30 in Shanghai, after the 10:00 call
SECOND = datetime(2026, 11, 23, 2, 50, tzinfo=UTC)


def contacted(door: str, doors: Doors, number: str, at: datetime, note: str) -> tuple[str, str]:
    """Record a contact at `at` through `door`: (the audit actor, the answer's text)."""
    local = at.astimezone(doors.app.settings.tz)
    body: dict[str, Any] = {"note": note, "channel": "phone"}
    if door == "api":
        body["at"] = local.isoformat()
    else:
        body["at"] = local.strftime("%Y-%m-%dT%H:%M")
    cli = ["contacted", number, "--at", body["at"], "--channel", "phone", "--note", note]
    return doors.take(door, number, "contacts" if door == "api" else "contact", body, cli=cli)


def contacts(app: Hotline, number: str) -> list[tuple[datetime, str, str, str | None, str]]:
    tid = ticket(app, number).id
    with app.db.read() as s:
        rows = s.scalars(select(TicketContact).where(TicketContact.ticket_id == tid))
        return [(c.at, c.department, c.channel, c.note, c.actor) for c in rows]


@pytest.mark.parametrize("door", DOORS)
def test_the_first_contact_is_kept_and_later_ones_are_history(
    hotline: Hotline, doors: Doors, door: str
) -> None:
    number = registered(hotline)
    department = ticket(hotline, number).department
    set_time(hotline, LATER)  # 11:00
    before = version(ticket(hotline, number))
    actor, answer = contacted(door, doors, number, FIRST, "已电话联系，约定明日上门")
    t = ticket(hotline, number)
    assert t.first_contact_at == FIRST
    assert version(t) != before  # the change counter moved: older copies are stale
    assert contacts(hotline, number) == [
        (FIRST, department, "phone", "已电话联系，约定明日上门", actor)
    ]
    assert door_audit(hotline, number)[-1] == (
        actor,
        "ticket.contact",
        {
            "changes": {
                "contacts": {"old": 0, "new": 1},
                "first_contact_at": {"old": None, "new": FIRST.isoformat()},
            },
            "at": FIRST.isoformat(),
            "department": department,
            "channel": "phone",
            "note": "已电话联系，约定明日上门",
        },
    )
    if door == "console":
        first = answer.split('id="first-contact">', 1)[1].split("</dd>", 1)[0]
        assert "2026-11-23 10:30" in first and "按时联系" in first
        assert "已记录联系" in answer and 'id="contacts"' in answer
    if door == "api":
        assert answer.startswith("200 ") and FIRST.isoformat() in answer

    # A second contact is history; the first contact stays the earliest one.
    actor, _ = contacted(door, doors, number, SECOND, "上门核实")
    assert ticket(hotline, number).first_contact_at == FIRST
    assert [c[0] for c in contacts(hotline, number)] == [FIRST, SECOND]
    last = door_audit(hotline, number)[-1]
    assert last[:2] == (actor, "ticket.contact")
    assert last[2]["changes"] == {"contacts": {"old": 1, "new": 2}}
    assert len(door_audit(hotline, number)) == 2


@pytest.mark.parametrize("door", DOORS)
def test_contacts_in_the_future_before_the_call_or_on_a_draft_are_refused(
    hotline: Hotline, doors: Doors, door: str
) -> None:
    number = registered(hotline)
    set_time(hotline, LATER)
    future = datetime(2099, 1, 1, 2, 0, tzinfo=UTC)  # also the CLI's real clock's future
    _, answer = contacted(door, doors, number, future, "")
    # The time conflicts with the ticket's state (now, its creation): 409, like a status.
    expected = {"api": "409 ", "console": "联系时间不能晚于现在", "cli": "1 "}[door]
    assert expected in answer
    if door != "console":
        assert "future" in answer
    _, answer = contacted(door, doors, number, datetime(2026, 11, 22, 2, 0, tzinfo=UTC), "")
    expected = {"api": "409 ", "console": "联系时间不能早于来电时间", "cli": "1 "}[door]
    assert expected in answer

    sim = simulate_inbound(hotline, line="12345", caller="13900000002", digits="2", text="咨询")
    assert sim.ticket is not None
    draft = str(sim.ticket["number"])
    _, answer = contacted(door, doors, draft, FIRST, "")
    expected = {"api": "409 ", "console": "当前状态不能记录联系", "cli": "1 "}[door]
    assert expected in answer
    for n in (number, draft):
        assert contacts(hotline, n) == [] and door_audit(hotline, n) == []
        assert ticket(hotline, n).first_contact_at is None


def test_the_api_takes_if_match_and_refuses_a_stale_copy(hotline: Hotline, doors: Doors) -> None:
    number = registered(hotline)
    set_time(hotline, LATER)
    etag = doors.api.call("GET", f"/api/tickets/{number}", "operator").headers["ETag"]
    path = f"/api/tickets/{number}/contacts"
    ok = doors.api.call("POST", path, "operator", json={}, headers={"If-Match": etag})
    assert ok.status_code == 200 and ok.get_json()["first_contact_at"] == LATER.isoformat()
    stale = doors.api.call(
        "POST", path, "operator", json={"channel": "sms"}, headers={"If-Match": etag}
    )
    assert stale.status_code == 412
    bad = doors.api.call("POST", path, "operator", json={"at": "下午三点", "channel": "fax"})
    assert bad.status_code == 422
    assert {d["field"] for d in bad.get_json()["error"]["details"]} == {"at", "channel"}
    for edge in ("9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"):
        r = doors.api.call("POST", path, "operator", json={"at": edge})
        assert r.status_code == 409, r.get_json()
    assert len(contacts(hotline, number)) == 1


def test_a_late_first_contact_shows_on_the_ticket_page(hotline: Hotline, doors: Doors) -> None:
    number = registered(hotline)
    t = ticket(hotline, number)
    page = browser(doors.console, "operator").get(f"/console/tickets/{t.id}")
    assert "尚未联系" in page.get_data(as_text=True)
    set_time(hotline, datetime(2026, 12, 1, 2, 0, tzinfo=UTC))  # past the 联系时限
    page = browser(doors.console, "supervisor").get(f"/console/tickets/{t.id}")
    assert "尚未联系，已超过联系时限" in page.get_data(as_text=True)
    record_contact(hotline, Actor.user("li"), number, channel="visit", note="上门")
    page = browser(doors.console, "supervisor").get(f"/console/tickets/{t.id}")
    first = page.get_data(as_text=True).split('id="first-contact">', 1)[1].split("</dd>")[0]
    assert "2026-12-01 10:00" in first and "超过联系时限" in first


def test_the_service_checks_channel_and_department(hotline: Hotline) -> None:
    number = registered(hotline)
    who = Actor.user("li")
    with pytest.raises(Invalid, match="channel"):
        record_contact(hotline, who, number, channel="fax")
    with pytest.raises(Invalid, match="not a configured department"):
        record_contact(hotline, who, number, department="不存在的局")
    record_contact(hotline, who, number, department="五华区人民政府")  # 属地兜底 counts
    assert contacts(hotline, number)[0][1] == "五华区人民政府"
    other = registered(hotline, caller="13900000003")
    service.reject(hotline, who, other, "不属于受理范围")
    with pytest.raises(IllegalTransition, match="rejected"):
        record_contact(hotline, who, other)
