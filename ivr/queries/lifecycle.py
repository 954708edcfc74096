"""Reading the loop: the 督办 list, the manual callback list (人工回访), returns
counted per department and a ticket's contacts with the caller (及时联系)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session

from ivr.store.models import (
    Supervision,
    SurveyAttempt,
    Ticket,
    TicketContact,
    TicketReturn,
    TicketStatus,
)

S = TicketStatus
OPEN_ATTEMPTS = ("planned", "claimed", "dialing")
CALLBACK_REASONS = {
    "unsatisfied": "不满意",
    "failed": "自动回访未接通",
    "supervised": "督办",
}


@dataclass(frozen=True)
class SupervisedTicket:
    ticket: Ticket
    source: str
    reason: str
    since: datetime
    actor: str


def supervision_list(session: Session, limit: int = 500) -> list[SupervisedTicket]:
    """Open supervisions, oldest first, each with its ticket and reason."""
    rows = session.execute(
        select(Supervision, Ticket)
        .join(Ticket, Ticket.id == Supervision.ticket_id)
        .where(Supervision.closed_at.is_(None))
        .order_by(Supervision.created_at, Supervision.id)
        .limit(limit)
    )
    return [SupervisedTicket(t, sv.source, sv.reason, sv.created_at, sv.actor) for sv, t in rows]


@dataclass
class CallbackItem:
    ticket: Ticket
    reasons: list[str] = field(default_factory=list)


def callback_list(session: Session, limit: int = 500) -> list[CallbackItem]:
    """Tickets a person should call back, with why: 不满意 in the current round, automatic
    attempts that all failed (none left to dial, no answer), and open 督办; a ticket
    leaves the list once a manual callback is recorded for it (for 督办: after it began)."""
    round_attempt = and_(
        SurveyAttempt.ticket_id == Ticket.id, SurveyAttempt.round == Ticket.survey_round
    )
    no_callback = ~exists().where(round_attempt, SurveyAttempt.manual.is_(True))
    unsatisfied = select(Ticket).where(Ticket.survey_outcome == "unsatisfied", no_callback)
    failed = select(Ticket).where(
        Ticket.status == S.COMPLETED,
        Ticket.survey_outcome.is_(None),
        exists().where(round_attempt, SurveyAttempt.manual.is_(False)),
        ~exists().where(round_attempt, SurveyAttempt.status.in_(OPEN_ATTEMPTS)),
        no_callback,
    )
    later_callback = exists().where(
        SurveyAttempt.ticket_id == Ticket.id,
        SurveyAttempt.manual.is_(True),
        SurveyAttempt.finished_at >= Supervision.created_at,
    )
    supervised = (
        select(Ticket)
        .join(Supervision, Supervision.ticket_id == Ticket.id)
        .where(Supervision.closed_at.is_(None), ~later_callback)
    )
    items: dict[int, CallbackItem] = {}
    found = {"unsatisfied": unsatisfied, "failed": failed, "supervised": supervised}
    for reason, stmt in found.items():
        for ticket in session.scalars(stmt.order_by(Ticket.id).limit(limit)).unique():
            item = items.setdefault(ticket.id, CallbackItem(ticket))
            if reason not in item.reasons:
                item.reasons.append(reason)
    return [items[k] for k in sorted(items)][:limit]


def returns_by_department(session: Session) -> dict[str, int]:
    """退回 counted per department that returned."""
    rows = session.execute(
        select(TicketReturn.department, func.count())
        .group_by(TicketReturn.department)
        .order_by(TicketReturn.department)
    )
    return {dept: n for dept, n in rows}


def ticket_contacts(session: Session, ticket_id: int) -> list[TicketContact]:
    """Every recorded contact with the ticket's caller, earliest first."""
    return list(
        session.scalars(
            select(TicketContact)
            .where(TicketContact.ticket_id == ticket_id)
            .order_by(TicketContact.at, TicketContact.id)
        )
    )


@dataclass(frozen=True)
class ContactState:
    """及时联系 of one ticket: the first contact, whether it was by `contact_due` (None
    until there is one), and whether the time to contact has passed without one."""

    first: datetime | None
    in_time: bool | None
    late: bool


def contact_state(ticket: Ticket, tz: tzinfo, today: date) -> ContactState:
    first = ticket.first_contact_at
    if first is not None:
        return ContactState(first, first.astimezone(tz).date() <= ticket.contact_due, False)
    waiting = ticket.status not in (S.DRAFT, S.REJECTED, S.DUPLICATE, S.CLOSED)
    return ContactState(None, None, waiting and today > ticket.contact_due)
