"""Reading tickets: finding one, searching by status, line, category, department, urgency
and creation day, one ticket's detail, and what changed since a cursor.

Pages are keyset pages over the ticket id, newest first: a page ends at the
last id it returned and the next page starts below it, so tickets created
meanwhile never shift or repeat what a client has already paged through.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from ivr.store.models import AuditEntry, Recording, Ticket, Transcript

# Row ids are 32-bit integers on every backend (PostgreSQL INTEGER); none is larger.
MAX_ID = 2**31 - 1
MAX_CURSOR = 2**63 - 1  # tickets.change_seq is a BIGINT


@dataclass(frozen=True)
class TicketQuery:
    status: str | None = None
    line: str | None = None
    category: str | None = None
    department: str | None = None
    urgent: bool | None = None
    created_from: date | None = None  # local days, inclusive
    created_to: date | None = None
    before_id: int | None = None  # keyset: only tickets with a smaller id


def _midnight(day: date, days_after: int, tz: ZoneInfo) -> datetime | None:
    """Local midnight `days_after` days after `day`, in UTC; None beyond the calendar's ends
    (a bound at year 1 or 9999 bounds nothing)."""
    try:
        return datetime.combine(day + timedelta(days=days_after), time(), tz).astimezone(UTC)
    except OverflowError:
        return None


def _select(q: TicketQuery, tz: ZoneInfo) -> Select[tuple[Ticket]]:
    stmt = select(Ticket)
    for column, value in (
        (Ticket.status, q.status),
        (Ticket.line_number, q.line),
        (Ticket.category, q.category),
        (Ticket.department, q.department),
        (Ticket.urgent, q.urgent),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    start = _midnight(q.created_from, 0, tz) if q.created_from else None
    if start is not None:
        stmt = stmt.where(Ticket.created_at >= start)
    end = _midnight(q.created_to, 1, tz) if q.created_to else None
    if end is not None:
        stmt = stmt.where(Ticket.created_at < end)
    if q.before_id is not None and q.before_id <= MAX_ID:
        stmt = stmt.where(Ticket.id < q.before_id)
    return stmt.order_by(Ticket.id.desc())


def search(
    session: Session, q: TicketQuery, tz: ZoneInfo, limit: int
) -> tuple[list[Ticket], int | None]:
    """Up to `limit` matching tickets, newest first, and the id to continue below (or None)."""
    rows = list(session.scalars(_select(q, tz).limit(limit + 1)))
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1].id
    return rows, None


def findable(ref: str) -> bool:
    """Whether `ref` can name a ticket at all: a number, or an id the database can hold."""
    if "\x00" in ref:
        return False
    return not ref.isdigit() or (ref.isascii() and int(ref) <= MAX_ID)


def ticket_id(session: Session, ref: str | int) -> int | None:
    """The id of the ticket `ref` names (its number, or its id), without loading it."""
    ref = str(ref)
    if not findable(ref):
        return None
    match = Ticket.id == int(ref) if ref.isdigit() else Ticket.number == ref
    return session.scalar(select(Ticket.id).where(match))


def find(session: Session, ref: str | int) -> Ticket | None:
    """The ticket `ref` names (its number, or its id)."""
    found = ticket_id(session, ref)
    return session.get(Ticket, found) if found is not None else None


@dataclass(frozen=True)
class TicketDetail:
    """What the draft page shows of one ticket: it, its recording and transcript, its history."""

    ticket: Ticket
    recording: Recording | None
    transcript: Transcript | None
    history: list[AuditEntry]


def ticket_detail(session: Session, ticket_id: int, history: int = 50) -> TicketDetail | None:
    """One ticket with its latest recording and transcript and its newest `history` audit rows."""
    from ivr.intake.drafts import latest_transcript

    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        return None
    recording, transcript = (
        latest_transcript(session, ticket.call_id)
        if ticket.call_id
        else (
            None,
            None,
        )
    )
    entries = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.ticket_id == ticket.id)
        .order_by(AuditEntry.id.desc())
        .limit(history)
    ).all()
    return TicketDetail(ticket, recording, transcript, list(entries))


def latest_change(session: Session) -> int:
    """The highest ticket change number (the live queue's starting cursor)."""
    return int(session.scalar(select(func.max(Ticket.change_seq))) or 0)


def changed_after(session: Session, seq: int, limit: int) -> list[Ticket]:
    """At most `limit` tickets changed after change number `seq`, in change order."""
    return list(
        session.scalars(
            select(Ticket).where(Ticket.change_seq > seq).order_by(Ticket.change_seq).limit(limit)
        )
    )
