"""Finding tickets by status, line, category, department, urgency and creation day.

Pages are keyset pages over the ticket id, newest first: a page ends at the
last id it returned and the next page starts below it, so tickets created
meanwhile never shift or repeat what a client has already paged through.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from ivr.store.models import Ticket


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
    if q.created_from is not None:
        stmt = stmt.where(Ticket.created_at >= datetime.combine(q.created_from, time(), tz))
    if q.created_to is not None:
        end = datetime.combine(q.created_to + timedelta(days=1), time(), tz)
        stmt = stmt.where(Ticket.created_at < end)
    if q.before_id is not None:
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
