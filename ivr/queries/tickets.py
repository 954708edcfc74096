"""Finding tickets by status, line, category, department, urgency and creation day.

Pages are keyset pages over the ticket id, newest first: a page ends at the
last id it returned and the next page starts below it, so tickets created
meanwhile never shift or repeat what a client has already paged through.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from ivr.store.models import Ticket

# Row ids are 32-bit integers on every backend (PostgreSQL INTEGER); none is larger.
MAX_ID = 2**31 - 1


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
