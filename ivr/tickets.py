"""Ticket numbers, the status transitions and the ticket's outward (JSON) shape.

The review rules and every change of a ticket are in `ivr.services.tickets`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session

from ivr.config import DuplicateConfig
from ivr.intake.duplicates import earlier_tickets
from ivr.privacy import redact
from ivr.queries.survey_reasons import unsatisfied_reasons
from ivr.services.unit import IllegalTransition
from ivr.store.models import Ticket, TicketSequence, TicketStatus

S = TicketStatus
# The caller's earlier tickets listed with a ticket (`duplicates.history_days`).
HISTORY_DAYS = DuplicateConfig().history_days
TRANSITIONS: dict[str, set[str]] = {
    S.DRAFT: {S.REGISTERED, S.REJECTED, S.DUPLICATE},
    S.REGISTERED: {S.COMPLETED, S.REJECTED, S.RETURNED},
    S.RETURNED: {S.REGISTERED, S.REJECTED},
    S.COMPLETED: {S.SURVEYED, S.REVIEW, S.REHANDLE, S.CLOSED},
    S.REVIEW: {S.REHANDLE, S.SURVEYED},
    S.REHANDLE: {S.COMPLETED},
    S.SURVEYED: {S.CLOSED},
    S.CLOSED: set(),
    S.REJECTED: set(),
    S.DUPLICATE: set(),
}


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


def transition(ticket: Ticket, new: TicketStatus, at: datetime) -> None:
    """Move the ticket to `new` if TRANSITIONS allow it; IllegalTransition otherwise."""
    if new not in TRANSITIONS.get(ticket.status, set()):
        raise IllegalTransition(
            f"ticket {ticket.number} is {ticket.status}; it cannot become {new.value}"
        )
    ticket.status = new
    ticket.updated_at = at
    if new is S.COMPLETED:
        ticket.completed_at = at
    if new is S.REGISTERED:
        ticket.dispatched_at = at


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
    """The ticket as the API, the CLI and exports show it, with the caller's tickets of the
    last `history_days`; phone numbers masked unless `show_phone`."""
    return to_dicts([ticket], show_phone=show_phone, history_days=history_days)[0]


def to_dicts(
    tickets: Sequence[Ticket], *, show_phone: bool = False, history_days: int = HISTORY_DAYS
) -> list[dict[str, Any]]:
    """`to_dict` of each ticket; what several tickets share is read once for all."""
    reasons = _reasons_of(tickets)
    return [redact(_unmasked(t, history_days, reasons.get(t.id, [])), show_phone) for t in tickets]


def masked(shown: dict[str, Any]) -> dict[str, Any]:
    """A `to_dict(..., show_phone=True)` copy as an operator sees it (`ivr.privacy`)."""
    return redact(shown, sees_phone=False)


def changes_between(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What differs between two `to_dict` copies, as the audit log records changes."""
    return {k: {"old": before[k], "new": v} for k, v in after.items() if before.get(k) != v}


def version(ticket: Ticket) -> str:
    """The ticket's version (the API's ETag, the console form's `version`): its change
    sequence number, bumped by every write (`ivr.store.changes`), so any change makes a
    reader's copy stale. A counter, not a digest: nothing of the content can be
    recovered from it (a digest of the full record gave masked digits away)."""
    return f"{ticket.id}.{ticket.change_seq}"


def _reasons_of(tickets: Sequence[Ticket]) -> dict[int, list[str]]:
    """不满意原因 said on these tickets' survey calls, newest first: one query for all of
    them (a page of the API or the CLI list), read in the tickets' own session."""
    asked = [t.id for t in tickets if t.survey_outcome is not None]
    session = object_session(tickets[0]) if tickets else None
    if session is None or not asked:
        return {}
    found = unsatisfied_reasons(session, asked)
    return {tid: [r.text for r in reasons] for tid, reasons in found.items()}


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _unmasked(ticket: Ticket, history_days: int, reasons: list[str]) -> dict[str, Any]:
    return {
        "number": ticket.number,
        "status": ticket.status,
        "line": ticket.line_number,
        "caller": ticket.caller_number,
        "category": ticket.category,
        "category_source": ticket.category_source,
        "department": ticket.department,
        "department_source": ticket.department_source,
        "urgent": ticket.urgent,
        "urgency_keywords": ticket.urgency_keywords,
        "statement": ticket.statement,
        "statement_original": ticket.statement_original,
        "caller_name": ticket.caller_name,
        "callback_number": ticket.callback_number,
        "summary": ticket.summary,
        "address": ticket.address,
        "phone_numbers": list(ticket.phone_numbers or []),
        "out_of_scope": ticket.out_of_scope,
        "scope": (
            {"kind": ticket.scope_kind, "rule": ticket.scope_rule, "advice": ticket.scope_advice}
            if ticket.scope_kind
            else None
        ),
        "intake": _intake(ticket.intake),
        # The call was cut (the IVR crashed): the statement may be incomplete.
        "interrupted": bool((ticket.intake or {}).get("interrupted")),
        "contact_due": ticket.contact_due.isoformat(),
        "due_date": ticket.due_date.isoformat(),
        "duplicate_of": ticket.duplicate_of.number if ticket.duplicate_of else None,
        "transcription": ticket.transcription,
        "result_note": ticket.result_note,
        "kb_article": ticket.kb_article_id,
        "survey_outcome": ticket.survey_outcome,
        "unsatisfied_reasons": reasons,
        "survey_resolved": ticket.survey_resolved,
        "survey_round": ticket.survey_round,
        "rehandle_count": ticket.rehandle_count,
        "first_contact_at": _iso(ticket.first_contact_at),
        "created_at": ticket.created_at.isoformat(),
        "completed_at": _iso(ticket.completed_at),
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
