"""Reviewing drafts: edit, accept, duplicate, reject, complete (ivr.tickets)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from ivr.app import Hotline
from ivr.calls.simulate import simulate_inbound
from ivr.store import Ticket
from ivr.tickets import (
    TicketError,
    accept,
    complete,
    mark_duplicate,
    reject_out_of_scope,
    update_fields,
)

NOISE = "我要投诉我们小区楼下的烧烤店每天晚上噪音扰民到凌晨两点"
LAMP = "五华区人民路的路灯坏了一个星期了"
LATER = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


def draft(app: Hotline, text: str, caller: str = "13800138000") -> int:
    sim = simulate_inbound(app, line="12345", caller=caller, text=text)
    assert sim.ticket is not None
    with app.db.session() as s:
        return s.scalars(select(Ticket.id).where(Ticket.number == sim.ticket["number"])).one()


def test_edit_records_old_and_new_and_moves_deadlines(hotline: Hotline) -> None:
    tid = draft(hotline, NOISE)
    with hotline.db.session() as s:
        t = s.get(Ticket, tid)
        assert t is not None and t.category == "投诉" and str(t.due_date) == "2026-12-14"
        changes = update_fields(
            hotline,
            t,
            {
                "category": "咨询",
                "department": "住房和城乡建设局",
                "summary": "烧烤店夜间噪音",
                "address": "昆明市五华区人民路",
                "urgent": False,
            },
            LATER,
        )
    assert changes["category"] == {"old": "投诉", "new": "咨询"}
    assert changes["department"] == {"old": "城市管理综合执法局", "new": "住房和城乡建设局"}
    assert changes["address"]["new"] == "昆明市五华区人民路"
    # 咨询 is due in 5 working days from Monday 2026-11-23.
    assert changes["due_date"] == {"old": "2026-12-14", "new": "2026-11-30"}
    assert "urgent" not in changes
    with hotline.db.session() as s:
        t = s.get(Ticket, tid)
        assert t is not None and t.address is not None
        assert (t.address["district"], t.address["text"]) == ("五华区", "昆明市五华区人民路")
        assert (t.category_source, t.department_source) == ("operator", "operator")
        assert t.updated_at == LATER
        # Urgent: due the same day.
        changes = update_fields(hotline, t, {"urgent": True}, LATER)
        assert changes["due_date"]["new"] == "2026-11-23"
        assert update_fields(hotline, t, {"urgent": True}, LATER) == {}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"category": "闲聊"}, "unknown category"),
        ({"department": "外星局"}, "unknown department"),
        ({"summary": "长" * 201}, "longer than 200"),
        ({"urgent": "yes"}, "true or false"),
        ({"status": "closed"}, "not editable: status"),
    ],
)
def test_bad_edits_change_nothing(
    hotline: Hotline, fields: dict[str, object], message: str
) -> None:
    tid = draft(hotline, NOISE)
    with hotline.db.session() as s:
        t = s.get(Ticket, tid)
        assert t is not None
        with pytest.raises(TicketError, match=message):
            update_fields(hotline, t, {"summary": "先改这个", **fields}, LATER)
        assert t.summary != "先改这个"


def test_accept_then_complete(hotline: Hotline) -> None:
    tid = draft(hotline, LAMP)
    with hotline.db.session() as s:
        t = s.get(Ticket, tid)
        assert t is not None
        assert accept(t, LATER) == {"status": {"old": "draft", "new": "registered"}}
        with pytest.raises(TicketError, match="not a draft"):
            accept(t, LATER)
        with pytest.raises(TicketError, match="needs a result note"):
            complete(t, "  ", LATER)
        changes = complete(t, "已修复路灯", LATER)
        assert changes["status"] == {"old": "registered", "new": "completed"}
        assert changes["result_note"] == {"old": None, "new": "已修复路灯"}
        assert t.completed_at == LATER
        with pytest.raises(TicketError, match="can no longer be edited"):
            update_fields(hotline, t, {"summary": "x"}, LATER)


def test_out_of_scope_draft_is_rejected_not_accepted(hotline: Hotline) -> None:
    tid = draft(hotline, "我要起诉我的房东他不退押金")
    with hotline.db.session() as s:
        t = s.get(Ticket, tid)
        assert t is not None and t.out_of_scope
        with pytest.raises(TicketError, match="out of scope"):
            accept(t, LATER)
        with pytest.raises(TicketError, match="reason"):
            reject_out_of_scope(t, "", LATER)
        changes = reject_out_of_scope(t, "诉讼事项，请通过法院解决", LATER)
        assert changes["status"] == {"old": "draft", "new": "rejected"}
        assert t.result_note == "诉讼事项，请通过法院解决"


def test_clearing_out_of_scope_allows_accepting(hotline: Hotline) -> None:
    tid = draft(hotline, "我要起诉我的房东他不退押金")
    with hotline.db.session() as s:
        t = s.get(Ticket, tid)
        assert t is not None
        update_fields(hotline, t, {"out_of_scope": False}, LATER)
        assert t.scope_kind is None
        assert accept(t, LATER)["status"]["new"] == "registered"


def test_duplicate_points_at_the_first_ticket(hotline: Hotline) -> None:
    first = draft(hotline, NOISE, caller="13900139000")
    second = draft(hotline, LAMP, caller="13700137000")
    third = draft(hotline, LAMP, caller="13600136000")
    with hotline.db.session() as s:
        a, b, c = (s.get(Ticket, i) for i in (first, second, third))
        assert a is not None and b is not None and c is not None
        with pytest.raises(TicketError, match="itself"):
            mark_duplicate(b, b, LATER)
        changes = mark_duplicate(b, a, LATER)
        assert changes["duplicate_of"] == {"old": None, "new": a.number}
        assert b.status == "rejected"
        # A duplicate of a duplicate points at the original.
        mark_duplicate(c, b, LATER)
        assert c.duplicate_of is a


def test_accepting_a_suspected_duplicate_makes_it_a_ticket_of_its_own(hotline: Hotline) -> None:
    first = draft(hotline, NOISE)
    second = draft(hotline, NOISE)  # same caller, same statement: flagged on arrival
    with hotline.db.session() as s:
        a, b = s.get(Ticket, first), s.get(Ticket, second)
        assert a is not None and b is not None and b.duplicate_of is a
        changes = accept(b, LATER)
        assert changes["duplicate_of"] == {"old": a.number, "new": None}
        assert b.duplicate_of is None and b.status == "registered"
