"""Ticket numbers, status transitions and the ticket's outward (JSON) shape."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ivr.config import DuplicateConfig
from ivr.intake.duplicates import earlier_tickets
from ivr.phones import mask_number
from ivr.store.models import Ticket, TicketSequence, TicketStatus

if TYPE_CHECKING:
    from ivr.app import Hotline

S = TicketStatus
# The caller's earlier tickets listed with a ticket (`duplicates.history_days`).
HISTORY_DAYS = DuplicateConfig().history_days
TRANSITIONS: dict[str, set[str]] = {
    S.DRAFT: {S.REGISTERED, S.REJECTED},
    S.REGISTERED: {S.COMPLETED, S.REJECTED},
    S.COMPLETED: {S.SURVEYED, S.REHANDLE, S.CLOSED},
    S.REHANDLE: {S.COMPLETED},
    S.SURVEYED: {S.CLOSED},
    S.CLOSED: set(),
    S.REJECTED: set(),
}


class TicketError(Exception):
    pass


def next_ticket_number(session: Session, prefix: str, local_day: date) -> str:
    """12345-20261122-00042: a per-day sequence, safe under concurrent writers."""
    day = local_day.strftime("%Y%m%d")
    bump = (
        update(TicketSequence)
        .where(TicketSequence.day == day)
        .values(last=TicketSequence.last + 1)
        .returning(TicketSequence.last)
    )
    seq = session.execute(bump).scalar()
    if seq is None:
        try:
            with session.begin_nested():
                session.execute(insert(TicketSequence).values(day=day, last=1))
            seq = 1
        except IntegrityError:  # another writer created today's row first
            seq = session.execute(bump).scalar_one()
    return f"{prefix}-{day}-{seq:05d}"


def find(session: Session, number_or_id: str) -> Ticket | None:
    if number_or_id.isdigit():
        return session.get(Ticket, int(number_or_id))
    return session.scalars(select(Ticket).where(Ticket.number == number_or_id)).first()


def transition(ticket: Ticket, new: TicketStatus, at: datetime) -> None:
    if new not in TRANSITIONS.get(ticket.status, set()):
        raise TicketError(
            f"ticket {ticket.number} is {ticket.status}; it cannot become {new.value}"
        )
    ticket.status = new
    ticket.updated_at = at
    if new is S.COMPLETED:
        ticket.completed_at = at


# What a state change did, field by field: {"status": {"old": "draft", "new": "registered"}}.
# The console and the JSON API write it to the audit log as it is (JSON values only).
Changes = dict[str, dict[str, Any]]
EDITABLE_FIELDS = ("category", "department", "address", "urgent", "summary", "out_of_scope")
# A ticket's fields may be corrected until it is completed.
EDITABLE_STATUSES = frozenset({S.DRAFT, S.REGISTERED, S.REHANDLE})
SUMMARY_MAX = 200


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date | datetime) else value


def _required(text: str, message: str) -> str:
    text = text.strip()
    if not text:
        raise TicketError(message)
    return text


def _set(ticket: Ticket, name: str, value: Any, changes: Changes) -> None:
    old = getattr(ticket, name)
    if old != value:
        changes[name] = {"old": _json(old), "new": _json(value)}
        setattr(ticket, name, value)


def _move(ticket: Ticket, new: TicketStatus, at: datetime, changes: Changes) -> None:
    old = ticket.status
    transition(ticket, new, at)
    changes["status"] = {"old": str(old), "new": new.value}


def accept(ticket: Ticket, at: datetime) -> Changes:
    """受理: the operator accepts a draft; it becomes a registered ticket."""
    if ticket.status != S.DRAFT:
        raise TicketError(f"ticket {ticket.number} is {ticket.status}, not a draft")
    if ticket.out_of_scope:
        raise TicketError(
            f"ticket {ticket.number} is marked out of scope: clear the mark or reject it"
        )
    changes: Changes = {}
    if ticket.duplicate_of is not None:  # accepted as a ticket of its own: not a duplicate
        changes["duplicate_of"] = {"old": ticket.duplicate_of.number, "new": None}
        ticket.duplicate_of = None
    _move(ticket, S.REGISTERED, at, changes)
    return changes


def _text(fields: Mapping[str, Any], name: str) -> str:
    value = fields[name]
    if not isinstance(value, str):
        raise TicketError(f"{name} must be text")
    return value.strip()


def _flag(fields: Mapping[str, Any], name: str) -> bool:
    value = fields[name]
    if not isinstance(value, bool):
        raise TicketError(f"{name} must be true or false")
    return value


def _address(app: Hotline, text: str) -> dict[str, Any] | None:
    from ivr.intake.address import extract_address

    if not text:
        return None
    found = extract_address(text, app.settings.city)
    return {
        "province": found.province if found else None,
        "city": found.city if found else None,
        "district": found.district if found else None,
        "street": found.street if found else None,
        "adcode": found.adcode if found else None,
        "text": text,
    }


def update_fields(app: Hotline, ticket: Ticket, fields: Mapping[str, Any], at: datetime) -> Changes:
    """Correct a ticket's fields (any of EDITABLE_FIELDS); deadlines follow category and urgency.

    `address` is the address as text (empty clears it); `urgent` and `out_of_scope`
    are booleans. Unknown fields, categories or departments are refused, nothing is
    changed then. Returns only what actually changed.
    """
    from ivr.intake.drafts import deadlines

    unknown = sorted(set(fields) - set(EDITABLE_FIELDS))
    if unknown:
        raise TicketError(f"not editable: {', '.join(unknown)}")
    if ticket.status not in EDITABLE_STATUSES:
        raise TicketError(f"ticket {ticket.number} is {ticket.status}; it can no longer be edited")
    settings = app.settings
    values: dict[str, Any] = {}
    if "category" in fields:
        values["category"] = _text(fields, "category")
        if settings.category(values["category"]) is None:
            raise TicketError(f"unknown category {values['category']!r}")
    if "department" in fields:
        values["department"] = _text(fields, "department")
        if values["department"] not in {d.name for d in settings.departments}:
            raise TicketError(f"unknown department {values['department']!r}")
    if "summary" in fields:
        values["summary"] = _text(fields, "summary")
        if len(values["summary"]) > SUMMARY_MAX:
            raise TicketError(f"summary is longer than {SUMMARY_MAX} characters")
    for flag in ("urgent", "out_of_scope"):
        if flag in fields:
            values[flag] = _flag(fields, flag)
    changes: Changes = {}
    if "address" in fields:
        text = _text(fields, "address")
        old_text = (ticket.address or {}).get("text") or ""
        if text != old_text:
            changes["address"] = {"old": old_text or None, "new": text or None}
            ticket.address = _address(app, text)
    for name, value in values.items():
        _set(ticket, name, value, changes)
    if "category" in changes:
        ticket.category_source = "operator"
    if "department" in changes:
        ticket.department_source = "operator"
    if "out_of_scope" in changes and not ticket.out_of_scope:
        ticket.scope_kind = ticket.scope_rule = ticket.scope_advice = None
    if "category" in changes or "urgent" in changes:
        day = ticket.created_at.astimezone(settings.tz).date()
        contact_due, due_date = deadlines(app, day, ticket.category, ticket.urgent)
        _set(ticket, "contact_due", contact_due, changes)
        _set(ticket, "due_date", due_date, changes)
    if changes:
        ticket.updated_at = at
    return changes


def mark_duplicate(ticket: Ticket, original: Ticket, at: datetime) -> Changes:
    """重复件: the draft repeats `original` (or the ticket that one repeats) and is closed."""
    while original.duplicate_of is not None:
        original = original.duplicate_of
    if original.id == ticket.id:
        raise TicketError(f"ticket {ticket.number} cannot duplicate itself")
    if original.status == S.REJECTED:
        raise TicketError(f"ticket {original.number} was rejected; it cannot be the original")
    if ticket.status != S.DRAFT:
        raise TicketError(f"ticket {ticket.number} is {ticket.status}, not a draft")
    changes: Changes = {}
    old = ticket.duplicate_of.number if ticket.duplicate_of else None
    if old != original.number:
        changes["duplicate_of"] = {"old": old, "new": original.number}
    ticket.duplicate_of = original
    _move(ticket, S.REJECTED, at, changes)
    return changes


def reject_out_of_scope(ticket: Ticket, reason: str, at: datetime) -> Changes:
    """不予受理: the request is not for the hotline (courts, 110/119...); `reason` tells why."""
    reason = _required(reason, "give the reason the request is out of scope")
    changes: Changes = {}
    if ticket.status not in (S.DRAFT, S.REGISTERED):
        raise TicketError(f"ticket {ticket.number} is {ticket.status}; it cannot be rejected")
    _set(ticket, "out_of_scope", True, changes)
    _set(ticket, "scope_kind", ticket.scope_kind or "out_of_scope", changes)
    _set(ticket, "result_note", reason, changes)
    _move(ticket, S.REJECTED, at, changes)
    return changes


def complete(ticket: Ticket, note: str, at: datetime) -> Changes:
    """办结: a registered (or re-handled) ticket is completed with a result note."""
    note = _required(note, "a completed ticket needs a result note")
    changes: Changes = {}
    old = ticket.status
    if ticket.status == S.DRAFT:
        transition(ticket, S.REGISTERED, at)
    _move(ticket, S.COMPLETED, at, changes)
    changes["status"]["old"] = str(old)
    _set(ticket, "result_note", note, changes)
    return changes


def _intake(facts: dict[str, Any] | None) -> dict[str, Any]:
    """The model's view of the draft; `low_confidence` names the fields to check."""
    facts = facts or {}
    return {
        "model_version": facts.get("model_version"),
        "category_confidence": facts.get("category_confidence"),
        "department_confidence": facts.get("department_confidence"),
        "departments_top3": [
            {"department": name, "probability": p} for name, p in facts.get("departments_top3", [])
        ],
        "low_confidence": list(facts.get("low_confidence", [])),
    }


def to_dict(
    ticket: Ticket, *, show_phone: bool = False, history_days: int = HISTORY_DAYS
) -> dict[str, Any]:
    caller = ticket.caller_number if show_phone else mask_number(ticket.caller_number)
    return {
        "number": ticket.number,
        "status": ticket.status,
        "line": ticket.line_number,
        "caller": caller,
        "category": ticket.category,
        "category_source": ticket.category_source,
        "department": ticket.department,
        "department_source": ticket.department_source,
        "urgent": ticket.urgent,
        "urgency_keywords": ticket.urgency_keywords,
        "statement": ticket.statement,
        "summary": ticket.summary,
        "address": ticket.address,
        "phone_numbers": [
            n if show_phone else mask_number(n) for n in (ticket.phone_numbers or [])
        ],
        "out_of_scope": ticket.out_of_scope,
        "scope": (
            {"kind": ticket.scope_kind, "rule": ticket.scope_rule, "advice": ticket.scope_advice}
            if ticket.scope_kind
            else None
        ),
        "intake": _intake(ticket.intake),
        "contact_due": ticket.contact_due.isoformat(),
        "due_date": ticket.due_date.isoformat(),
        "duplicate_of": ticket.duplicate_of.number if ticket.duplicate_of else None,
        "transcription": ticket.transcription,
        "result_note": ticket.result_note,
        "survey_outcome": ticket.survey_outcome,
        "created_at": ticket.created_at.isoformat(),
        "completed_at": ticket.completed_at.isoformat() if ticket.completed_at else None,
        "earlier_tickets": [
            {
                "number": t.number,
                "created_at": t.created_at.isoformat(),
                "status": t.status,
                "summary": t.summary,
            }
            for t in earlier_tickets(ticket, history_days)
        ],
    }
