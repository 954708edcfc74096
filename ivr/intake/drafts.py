"""Draft tickets (工单草稿): analysed statement, deadlines and duplicates."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import date
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.intake.analyze import Analysis, ScopeFlag, analyze
from ivr.intake.duplicates import find_duplicate
from ivr.phones import mask_number
from ivr.services.unit import Actor, audit
from ivr.store.models import Call, Recording, RecordingStatus, Ticket, TicketStatus, Transcript
from ivr.tickets import changes_between, next_ticket_number, to_dict

if TYPE_CHECKING:
    from ivr.app import Hotline

log = logging.getLogger(__name__)

# Marks on a draft's `intake` facts that come from the call, not from the analysis:
# "interrupted", the call was cut by a crash of the IVR and the draft made from what
# was recorded until then (ivr.calls.interrupted).
DRAFT_FLAGS = ("interrupted",)

# Who the audit log names for what the intake pipeline does to a draft.
INTAKE = Actor.system("intake")
TRANSCRIPTION = Actor.system("transcription")


def deadlines(app: Hotline, day: date, category: str, urgent: bool) -> tuple[date, date]:
    """(contact the caller by, handle by) in working days from `day`."""
    rules = app.settings.deadlines
    if urgent and rules.urgent_same_day:
        return day, day
    cat = app.settings.category(category)
    days = (
        cat.deadline_workdays if cat else max(c.deadline_workdays for c in app.settings.categories)
    )
    return app.calendar.add_workdays(day, rules.contact_workdays), app.calendar.add_workdays(
        day, days
    )


def latest_transcript(session: Session, call_id: int) -> tuple[Recording | None, Transcript | None]:
    rec = session.scalars(
        select(Recording).where(Recording.call_id == call_id).order_by(Recording.id.desc())
    ).first()
    return rec, (rec.transcript if rec else None)


def transcription_state(recording: Recording | None, transcript: Transcript | None) -> str:
    """What the draft shows: done, pending (转写中), fetch_failed (录音获取失败) or none."""
    if transcript is not None:
        return "done"
    if recording is None:
        return "none"
    return "fetch_failed" if recording.status == RecordingStatus.LOST else "pending"


def with_heard_emergency(app: Hotline, result: Analysis, heard_rule: str | None) -> Analysis:
    """An emergency the live recognizer heard flags the draft even when the final
    transcript is missing or worded so that no rule matches it."""
    if heard_rule is None or (result.scope is not None and result.scope.kind == "emergency"):
        return result
    rule = next((r for r in app.settings.scope_rules if r.name == heard_rule), None)
    if rule is None or rule.kind != "emergency":
        return result
    return replace(result, scope=ScopeFlag(rule.name, "emergency", rule.advice, ""))


def _apply(app: Hotline, ticket: Ticket, result: Analysis, day: date) -> None:
    # An emergency is urgent whether or not an urgency keyword was said.
    emergency = result.scope is not None and result.scope.kind == "emergency"
    result = replace(result, urgent=result.urgent or emergency)
    ticket.category, ticket.category_source = result.category, result.category_source
    ticket.department, ticket.department_source = result.department, result.department_source
    ticket.urgent, ticket.urgency_keywords = result.urgent, list(result.urgency_keywords)
    ticket.statement, ticket.summary = result.text, result.summary
    ticket.address = (
        {
            "province": result.address.province,
            "city": result.address.city,
            "district": result.address.district,
            "street": result.address.street,
            "adcode": result.address.adcode,
            "text": result.address.text,
        }
        if result.address
        else None
    )
    ticket.phone_numbers = list(result.phone_numbers)
    # Flags the call set (not the model's view) survive a new analysis.
    flags = {k: True for k in DRAFT_FLAGS if (ticket.intake or {}).get(k)}
    ticket.intake = (
        {
            **flags,
            "model_version": result.model_version,
            "category_confidence": result.category_confidence,
            "department_confidence": result.department_confidence,
            "departments_top3": [list(t) for t in result.departments_top3],
            "low_confidence": list(result.low_confidence),
        }
        if result.model_version
        else (flags or None)
    )
    scope = result.scope
    ticket.out_of_scope = scope is not None
    ticket.scope_kind = scope.kind if scope else None
    ticket.scope_rule = scope.rule if scope else None
    ticket.scope_advice = scope.advice if scope else None
    ticket.contact_due, ticket.due_date = deadlines(app, day, result.category, result.urgent)
    ticket.no_callback = any(k in result.text for k in app.settings.surveys.no_callback_keywords)


def create_draft(
    app: Hotline,
    session: Session,
    call: Call,
    menu_category: str | None = None,
    heard_rule: str | None = None,
) -> Ticket:
    """The call's draft, created once (retries and replays return the same ticket).

    `heard_rule` names the emergency rule the live recognizer matched, if any.
    """
    existing = session.scalars(select(Ticket).where(Ticket.call_id == call.id)).first()
    if existing is not None:
        return existing
    line = app.settings.line(call.line_number) or app.settings.line(app.settings.hotline)
    assert line is not None
    recording, transcript = latest_transcript(session, call.id)
    text = transcript.normalized_text if transcript else ""
    result = analyze(app.settings, text, line=line, menu_category=menu_category)
    result = with_heard_emergency(app, result, heard_rule)
    now = app.clock.now()
    day = now.astimezone(app.settings.tz).date()
    ticket = Ticket(
        number=next_ticket_number(session, app.settings.ticket_prefix, day),
        call_id=call.id,
        status=TicketStatus.DRAFT,
        line_number=call.line_number,
        caller_number=call.from_number,
        created_at=now,
        updated_at=now,
        transcription=transcription_state(recording, transcript),
    )
    _apply(app, ticket, result, day)
    session.add(ticket)
    session.flush()
    ticket.duplicate_of = find_duplicate(app, session, ticket)
    shown = to_dict(ticket, show_phone=True, history_days=0)
    created = {k: shown[k] for k in ("status", "line", "category", "department", "urgent",
                                     "out_of_scope", "duplicate_of", "due_date")}  # fmt: skip
    audit(session, INTAKE, "ticket.create", ticket, {"call": call.id, "ticket": created}, now)
    log.info(
        "draft %s created: line %s caller %s category %s department %s urgent %s%s",
        ticket.number,
        ticket.line_number,
        mask_number(ticket.caller_number),
        ticket.category,
        ticket.department,
        ticket.urgent,
        f" duplicate of {ticket.duplicate_of.number}" if ticket.duplicate_of else "",
    )
    return ticket


def refresh_draft(app: Hotline, session: Session, ticket: Ticket, transcript: Transcript) -> None:
    """A transcript that arrived after the draft (Twilio, pending ASR) fills it in.

    The caller holds the unit of work and has locked the ticket row."""
    before = to_dict(ticket, show_phone=True, history_days=0)
    ticket.transcription = "done"
    if ticket.status != TicketStatus.DRAFT:
        return  # an operator owns it now; the transcript is still on the recording
    line = app.settings.line(ticket.line_number) or app.settings.line(app.settings.hotline)
    assert line is not None
    menu = ticket.category if ticket.category_source == "menu" else None
    result = analyze(app.settings, transcript.normalized_text, line=line, menu_category=menu)
    heard = ticket.scope_rule if ticket.scope_kind == "emergency" else None
    result = with_heard_emergency(app, result, heard)
    day = ticket.created_at.astimezone(app.settings.tz).date()
    _apply(app, ticket, result, day)
    now = app.clock.now()
    ticket.updated_at = now
    ticket.duplicate_of = find_duplicate(app, session, ticket)
    changes = changes_between(before, to_dict(ticket, show_phone=True, history_days=0))
    detail = {"transcript": transcript.id, "changes": changes}
    audit(session, TRANSCRIPTION, "ticket.transcribed", ticket, detail, now)
