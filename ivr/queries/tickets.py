"""Reading tickets: finding one, searching by status, line, category, department, urgency,
creation day and text, one ticket's detail, and what changed since a cursor.

One query object (`TicketQuery`) serves every door. The API reads keyset pages over
the ticket id, newest first (`search`): a page ends at the last id it returned and
the next page starts below it, so tickets created meanwhile never shift or repeat
what a client has already paged through. The console's queue reads numbered pages
with the total (`work_page`), most pressing first: urgent, then due soonest, then
oldest; and the live queue asks `TicketQuery.matches` whether a changed ticket
still belongs on the page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from ivr.store.models import AuditEntry, Recording, Ticket, Transcript

# Row ids are 32-bit integers on every backend (PostgreSQL INTEGER); none is larger.
MAX_ID = 2**31 - 1
MAX_CURSOR = 2**63 - 1  # tickets.change_seq is a BIGINT
# The longest search text (a sentence of a statement is plenty).
SEARCH_MAX = 100


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
    # A ticket number (or part of one), a whole phone number (the caller's or the call-back
    # number), or words of the statement or summary.
    text: str | None = None

    def matches(self, t: Ticket, tz: ZoneInfo) -> bool:
        """Whether `t` is one of the tickets this query finds (as `_select` decides)."""
        day = t.created_at.astimezone(tz).date()
        return (
            all(
                value is None or getattr(t, column) == value
                for column, value in (
                    ("status", self.status),
                    ("line_number", self.line),
                    ("category", self.category),
                    ("department", self.department),
                    ("urgent", self.urgent),
                )
            )
            and (self.created_from is None or day >= self.created_from)
            and (self.created_to is None or day <= self.created_to)
            and (self.before_id is None or t.id < self.before_id)
            and (not self.text or _text_matches(self.text, t))
        )


# A search of only digits this long is a phone number (found whole, never by a part, so
# a masked number cannot be completed digit by digit) or part of a ticket number.
PHONE_MIN_DIGITS = 7
# Text with a run of digits this long is about a number: it is not looked for in the
# statement or summary, where numbers the caller said are masked for operators.
_DIGITS = re.compile(r"[0-9]{4}")


def _is_phone(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) >= PHONE_MIN_DIGITS


def _in_words(text: str) -> bool:
    return _DIGITS.search(text) is None


def _text_matches(text: str, t: Ticket) -> bool:
    if text in t.number:
        return True
    if _is_phone(text) and text in (t.caller_number, t.callback_number):
        return True
    return _in_words(text) and (text in (t.statement or "") or text in (t.summary or ""))


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _text_clause(text: str) -> Any:
    pattern = _like(text)
    found = [Ticket.number.like(pattern, escape="\\")]
    if _is_phone(text):
        found += [Ticket.caller_number == text, Ticket.callback_number == text]
    if _in_words(text):
        found += [
            Ticket.statement.like(pattern, escape="\\"),
            Ticket.summary.like(pattern, escape="\\"),
        ]
    return or_(*found)


def _midnight(day: date, days_after: int, tz: ZoneInfo) -> datetime | None:
    """Local midnight `days_after` days after `day`, in UTC; None beyond the calendar's ends
    (a bound at year 1 or 9999 bounds nothing)."""
    try:
        return datetime.combine(day + timedelta(days=days_after), time(), tz).astimezone(UTC)
    except OverflowError:
        return None


def _filtered(q: TicketQuery, tz: ZoneInfo) -> Select[tuple[Ticket]]:
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
    if q.text:
        stmt = stmt.where(_text_clause(q.text))
    return stmt


def _select(q: TicketQuery, tz: ZoneInfo) -> Select[tuple[Ticket]]:
    return _filtered(q, tz).order_by(Ticket.id.desc())


def search(
    session: Session, q: TicketQuery, tz: ZoneInfo, limit: int
) -> tuple[list[Ticket], int | None]:
    """Up to `limit` matching tickets, newest first, and the id to continue below (or None)."""
    rows = list(session.scalars(_select(q, tz).limit(limit + 1)))
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1].id
    return rows, None


@dataclass(frozen=True)
class WorkPage:
    """One numbered page of the work queue, and how many tickets match in all."""

    tickets: list[Ticket]
    total: int
    page: int  # 1-based, within 1..pages
    pages: int


def work_page(session: Session, q: TicketQuery, tz: ZoneInfo, page: int, size: int) -> WorkPage:
    """Page `page` (of `size` tickets) of what `q` finds, most pressing first: urgent
    tickets, then the nearest due date, then the oldest. A page past the end is the last."""
    stmt = _filtered(q, tz)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    pages = max(1, -(-total // size))
    page = min(max(1, page), pages)
    # The order is found over ids alone (a sort of narrow rows, the index helping), then
    # only the page's tickets are read: a page deep in the queue costs little more.
    ids = list(
        session.scalars(
            stmt.with_only_columns(Ticket.id)
            .order_by(Ticket.urgent.desc(), Ticket.due_date, Ticket.id)
            .offset((page - 1) * size)
            .limit(size)
        )
    )
    found = {t.id: t for t in session.scalars(select(Ticket).where(Ticket.id.in_(ids)))}
    return WorkPage([found[i] for i in ids], total, page, pages)


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
