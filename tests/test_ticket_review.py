"""Reviewing drafts: edit, accept, duplicate, reject, complete, reopen (ivr.services.tickets)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from ivr.app import Hotline
from ivr.calls.simulate import simulate_inbound
from ivr.clock import FixedClock
from ivr.services import Actor, Conflict, IllegalTransition, Invalid, NotFound
from ivr.services import tickets as service
from ivr.store import AuditEntry, Ticket

NOISE = "我要投诉我们小区楼下的烧烤店每天晚上噪音扰民到凌晨两点"
LAMP = "五华区人民路的路灯坏了一个星期了"
COURT = "我要起诉我的房东他不退押金"
LATER = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
WANG = Actor.user("wang")


def draft(app: Hotline, text: str, caller: str = "13800138000") -> int:
    sim = simulate_inbound(app, line="12345", caller=caller, text=text)
    assert sim.ticket is not None
    with app.db.session() as s:
        return s.scalars(select(Ticket.id).where(Ticket.number == sim.ticket["number"])).one()


def later(app: Hotline) -> None:
    """Review happens an hour after the call."""
    assert isinstance(app.clock, FixedClock)
    app.clock.set(LATER)


def ticket(app: Hotline, tid: int) -> Ticket:
    with app.db.read() as s:
        t = s.get(Ticket, tid)
        assert t is not None
        return t


def audit_rows(
    app: Hotline, tid: int, *, intake: bool = False
) -> list[tuple[str, str, dict[str, object]]]:
    """The ticket's audit rows; those the intake pipeline wrote only if `intake`."""
    with app.db.read() as s:
        stmt = select(AuditEntry).where(AuditEntry.ticket_id == tid).order_by(AuditEntry.id)
        if not intake:
            stmt = stmt.where(AuditEntry.actor.not_like("system:%"))
        rows = s.scalars(stmt)
        return [(e.actor, e.action, e.detail) for e in rows]


def test_edit_records_old_and_new_and_moves_deadlines(hotline: Hotline) -> None:
    tid = draft(hotline, NOISE)
    t = ticket(hotline, tid)
    assert t.category == "投诉" and str(t.due_date) == "2026-12-14"
    later(hotline)
    changes = service.update(
        hotline,
        WANG,
        tid,
        {
            "category": "咨询",
            "department": "住房和城乡建设局",
            "summary": "烧烤店夜间噪音",
            "address": "昆明市五华区人民路",
            "urgent": False,
        },
    ).changes
    assert changes["category"] == {"old": "投诉", "new": "咨询"}
    assert changes["department"] == {"old": "城市管理综合执法局", "new": "住房和城乡建设局"}
    assert changes["address"]["new"] == "昆明市五华区人民路"
    # 咨询 is due in 5 working days from Monday 2026-11-23.
    assert changes["due_date"] == {"old": "2026-12-14", "new": "2026-11-30"}
    assert "urgent" not in changes
    t = ticket(hotline, tid)
    assert t.address is not None
    assert (t.address["district"], t.address["text"]) == ("五华区", "昆明市五华区人民路")
    assert (t.category_source, t.department_source) == ("operator", "operator")
    assert t.updated_at == LATER
    # Urgent: due the same day.
    changes = service.update(hotline, WANG, tid, {"urgent": True}).changes
    assert changes["due_date"]["new"] == "2026-11-23"
    assert service.update(hotline, WANG, tid, {"urgent": True}).changes == {}
    # One audit row per change that changed something, naming the actor.
    assert [(a, act) for a, act, _ in audit_rows(hotline, tid)] == [
        ("user:wang", "ticket.update"),
        ("user:wang", "ticket.update"),
    ]


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
    with pytest.raises(Invalid, match=message):
        service.update(hotline, WANG, tid, {"summary": "先改这个", **fields})
    assert ticket(hotline, tid).summary != "先改这个"
    assert audit_rows(hotline, tid) == []


def test_accept_then_complete(hotline: Hotline) -> None:
    tid = draft(hotline, LAMP)
    later(hotline)
    assert service.accept(hotline, WANG, tid).changes == {
        "status": {"old": "draft", "new": "registered"}
    }
    with pytest.raises(IllegalTransition, match="not a draft"):
        service.accept(hotline, WANG, tid)
    with pytest.raises(Invalid, match="needs a result note"):
        service.complete(hotline, WANG, tid, "  ")
    changes = service.complete(hotline, WANG, tid, "已修复路灯").changes
    assert changes["status"] == {"old": "registered", "new": "completed"}
    assert changes["result_note"] == {"old": None, "new": "已修复路灯"}
    assert ticket(hotline, tid).completed_at == LATER
    with pytest.raises(IllegalTransition, match="can no longer be edited"):
        service.update(hotline, WANG, tid, {"summary": "x"})


def test_a_draft_can_be_completed_at_once(hotline: Hotline) -> None:
    """即时办结: completing a draft accepts it first, by accept's rules."""
    tid = draft(hotline, LAMP)
    changes = service.complete(hotline, WANG, tid, "已当场答复").changes
    assert changes["status"] == {"old": "draft", "new": "completed"}
    assert ticket(hotline, tid).status == "completed"


def test_out_of_scope_draft_is_rejected_not_accepted(hotline: Hotline) -> None:
    tid = draft(hotline, COURT)
    assert ticket(hotline, tid).out_of_scope
    with pytest.raises(IllegalTransition, match="out of scope"):
        service.accept(hotline, WANG, tid)
    with pytest.raises(Invalid, match="reason"):
        service.reject(hotline, WANG, tid, "")
    changes = service.reject(hotline, WANG, tid, "诉讼事项，请通过法院解决").changes
    assert changes["status"] == {"old": "draft", "new": "rejected"}
    assert ticket(hotline, tid).result_note == "诉讼事项，请通过法院解决"


def test_out_of_scope_draft_is_not_completed_either(hotline: Hotline) -> None:
    """What accept refuses, complete refuses: an out-of-scope draft never becomes completed."""
    tid = draft(hotline, COURT)
    with pytest.raises(IllegalTransition, match="out of scope"):
        service.complete(hotline, WANG, tid, "已处理")
    t = ticket(hotline, tid)
    assert (t.status, t.result_note, t.completed_at) == ("draft", None, None)
    assert audit_rows(hotline, tid) == []


def test_clearing_out_of_scope_allows_accepting(hotline: Hotline) -> None:
    tid = draft(hotline, COURT)
    service.update(hotline, WANG, tid, {"out_of_scope": False})
    assert ticket(hotline, tid).scope_kind is None
    assert service.accept(hotline, WANG, tid).changes["status"]["new"] == "registered"


def test_duplicate_points_at_the_first_ticket(hotline: Hotline) -> None:
    first = draft(hotline, NOISE, caller="13900139000")
    second = draft(hotline, LAMP, caller="13700137000")
    third = draft(hotline, LAMP, caller="13600136000")
    a, b = ticket(hotline, first), ticket(hotline, second)
    with pytest.raises(IllegalTransition, match="itself"):
        service.mark_duplicate(hotline, WANG, second, b.number)
    with pytest.raises(NotFound, match="to be the original"):
        service.mark_duplicate(hotline, WANG, second, "12345-20990101-00009")
    changes = service.mark_duplicate(hotline, WANG, second, a.number).changes
    assert changes["duplicate_of"] == {"old": None, "new": a.number}
    assert ticket(hotline, second).status == "duplicate"
    # A duplicate of a duplicate points at the original.
    service.mark_duplicate(hotline, WANG, third, b.number)
    assert ticket(hotline, third).duplicate_of_id == first


def test_accepting_a_suspected_duplicate_makes_it_a_ticket_of_its_own(hotline: Hotline) -> None:
    first = draft(hotline, NOISE)
    second = draft(hotline, NOISE)  # same caller, same statement: flagged on arrival
    a, b = ticket(hotline, first), ticket(hotline, second)
    assert b.duplicate_of_id == a.id
    changes = service.accept(hotline, WANG, second).changes
    assert changes["duplicate_of"] == {"old": a.number, "new": None}
    b = ticket(hotline, second)
    assert b.duplicate_of_id is None and b.status == "registered"


def test_a_completed_ticket_reopens_for_rehandling_once(hotline: Hotline) -> None:
    tid = draft(hotline, LAMP)
    with pytest.raises(IllegalTransition, match="cannot become rehandle"):
        service.reopen(hotline, WANG, tid, "市民反映路灯仍不亮")
    service.complete(hotline, WANG, tid, "已修复路灯")
    with pytest.raises(Invalid, match="reason"):
        service.reopen(hotline, WANG, tid, " ")
    changed = service.reopen(hotline, WANG, tid, "市民反映路灯仍不亮")
    assert changed.changes == {
        "status": {"old": "completed", "new": "rehandle"},
        "rehandle_count": {"old": 0, "new": 1},
    }
    assert audit_rows(hotline, tid)[-1] == (
        "user:wang",
        "ticket.reopen",
        {"changes": changed.changes, "reason": "市民反映路灯仍不亮"},
    )
    # Re-handled, it is edited and completed again.
    service.update(hotline, WANG, tid, {"summary": "路灯再次修复"})
    assert service.complete(hotline, WANG, tid, "已更换灯具").shown["status"] == "completed"


def test_a_stale_version_is_a_conflict_and_changes_nothing(hotline: Hotline) -> None:
    tid = draft(hotline, NOISE)
    seen = service.update(hotline, WANG, tid, {"summary": "第一次"}).version
    service.update(hotline, Actor.user("li"), tid, {"summary": "别人改的"}, expected_version=seen)
    with pytest.raises(Conflict, match="changed"):
        service.accept(hotline, WANG, tid, expected_version=seen)
    assert ticket(hotline, tid).status == "draft"
    with pytest.raises(NotFound):
        service.accept(hotline, WANG, "12345-20990101-00009")


def test_the_intake_audits_the_draft_it_creates(hotline: Hotline) -> None:
    tid = draft(hotline, COURT)
    [(actor, action, detail)] = audit_rows(hotline, tid, intake=True)
    assert (actor, action) == ("system:intake", "ticket.create")
    created = detail["ticket"]
    assert isinstance(created, dict)
    assert (created["status"], created["out_of_scope"]) == ("draft", True)


def test_a_late_transcript_fills_the_draft_in_and_is_audited(hotline: Hotline) -> None:
    from ivr.calls.recordings import add_transcript, store_recording
    from ivr.intake.drafts import create_draft
    from ivr.store import Call, Recording

    step = hotline.calls.start(
        provider="sim", provider_call_id="late", from_number="13800138000", to_number="12345"
    )
    with hotline.db.session() as s:
        call = s.get(Call, step.call_id)
        assert call is not None
        rec_id = store_recording(hotline, s, call, "r1", data=b"RIFF", audio_format="wav").id
        tid = create_draft(hotline, s, call).id  # the transcript is still pending
    with hotline.db.session() as s:
        rec = s.get(Recording, rec_id)
        assert rec is not None
        add_transcript(hotline, s, rec, text=NOISE, model="vosk-test")
    t = ticket(hotline, tid)
    assert (t.transcription, t.category) == ("done", "投诉")
    [created, filled] = audit_rows(hotline, tid, intake=True)
    assert created[:2] == ("system:intake", "ticket.create")
    actor, action, detail = filled
    assert (actor, action) == ("system:transcription", "ticket.transcribed")
    changes = detail["changes"]
    assert isinstance(changes, dict)
    assert changes["statement"]["new"] == NOISE and changes["transcription"]["new"] == "done"


def test_an_unsatisfied_survey_answer_puts_the_ticket_under_review_audited(
    hotline: Hotline,
) -> None:
    from ivr.services.campaigns import create_campaign
    from ivr.store import SurveyAttempt
    from ivr.surveys.outcomes import record_score

    tid = draft(hotline, LAMP)
    service.complete(hotline, WANG, tid, "已修复路灯")
    create_campaign(hotline, Actor.system("test-setup"), "11月回访")
    with hotline.db.session() as s:
        attempt = s.scalars(select(SurveyAttempt).where(SurveyAttempt.ticket_id == tid)).one()
        record_score(s, {"attempt_id": attempt.id, "score": "unsatisfied"}, LATER)
    t = ticket(hotline, tid)
    assert (t.status, t.survey_outcome) == ("review", "unsatisfied")
    actor, action, detail = audit_rows(hotline, tid, intake=True)[-1]
    assert (actor, action) == ("system:survey", "ticket.survey")
    assert detail["changes"] == {
        "survey_outcome": {"old": None, "new": "unsatisfied"},
        "status": {"old": "completed", "new": "review"},
    }
