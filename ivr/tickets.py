"""Ticket numbers, status transitions and the ticket's outward (JSON) shape."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ivr.phones import mask_number
from ivr.store.models import Ticket, TicketSequence, TicketStatus

S = TicketStatus
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


def complete(ticket: Ticket, note: str, at: datetime) -> None:
    """办结: a registered (or re-handled) ticket is completed with a result note."""
    if ticket.status == S.DRAFT:
        transition(ticket, S.REGISTERED, at)
    transition(ticket, S.COMPLETED, at)
    ticket.result_note = note


def to_dict(ticket: Ticket, *, show_phone: bool = False) -> dict[str, Any]:
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
        "contact_due": ticket.contact_due.isoformat(),
        "due_date": ticket.due_date.isoformat(),
        "duplicate_of": ticket.duplicate_of.number if ticket.duplicate_of else None,
        "transcription": ticket.transcription,
        "result_note": ticket.result_note,
        "survey_outcome": ticket.survey_outcome,
        "created_at": ticket.created_at.isoformat(),
        "completed_at": ticket.completed_at.isoformat() if ticket.completed_at else None,
    }
