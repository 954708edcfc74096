"""督办: putting tickets under supervision (by a supervisor, or by the scan for overdue and
repeatedly complained items) and closing it when the ticket is completed."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session

from ivr.services.ticket_rules import required
from ivr.services.unit import (
    Actor,
    IllegalTransition,
    audit,
    serialized,
    unit_of_work,
)
from ivr.store.models import Supervision, Ticket, TicketStatus

if TYPE_CHECKING:
    from ivr.app import Hotline

S = TicketStatus
# Tickets still being worked on: what supervision can press.
OPEN_STATUSES = (S.REGISTERED, S.RETURNED, S.REHANDLE, S.REVIEW)
SOURCES = {
    "overdue": "超期未办结",
    "repeat_address": "同一地址重复投诉",
    "repeat_subject": "同一事项重复来电",
    "manual": "人工督办",
}
SCAN_LOCK = "ivr.supervision.scan"


def _open_supervision(ticket_id: object, source: str) -> object:
    return exists().where(
        Supervision.ticket_id == ticket_id,
        Supervision.source == source,
        Supervision.closed_at.is_(None),
    )


def _add(
    session: Session, actor: Actor, ticket: Ticket, source: str, reason: str, at: datetime
) -> None:
    session.add(
        Supervision(
            ticket_id=ticket.id, source=source, reason=reason, actor=str(actor), created_at=at
        )
    )
    audit(session, actor, "ticket.supervise", ticket, {"source": source, "reason": reason}, at)


def supervise(app: Hotline, actor: Actor, ticket: Ticket, reason: str, session: Session) -> None:
    """人工督办 of a locked ticket, in the caller's unit of work."""
    why = required(reason, "give the reason for supervision (督办原因)")
    if ticket.status not in OPEN_STATUSES:
        raise IllegalTransition(
            f"ticket {ticket.number} is {ticket.status}; only a ticket being handled is supervised"
        )
    if session.scalar(select(_open_supervision(ticket.id, "manual"))):
        raise IllegalTransition(f"ticket {ticket.number} is already under supervision")
    _add(session, actor, ticket, "manual", why, app.clock.now())


def close_open(session: Session, ticket: Ticket, at: datetime) -> int:
    """Close the ticket's open supervisions (it was completed or rejected)."""
    return session.execute(
        update(Supervision)
        .where(Supervision.ticket_id == ticket.id, Supervision.closed_at.is_(None))
        .values(closed_at=at)
    ).rowcount


def scan(app: Hotline, actor: Actor) -> dict[str, int]:
    """Supervise what the rules say, once per ticket and reason while it stays open:
    overdue tickets; open tickets about an address `repeat_threshold` tickets named within
    `repeat_window_days`; a ticket repeated by that many calls (itself and its 重复件)."""
    cfg = app.settings.lifecycle
    now = app.clock.now()
    today = now.astimezone(app.settings.tz).date()
    since = datetime.combine(today - timedelta(days=cfg.repeat_window_days), time(), UTC)
    open_ = Ticket.status.in_(OPEN_STATUSES)
    repeat_addresses = (
        select(Ticket.address_key)
        .where(Ticket.address_key.is_not(None), Ticket.created_at >= since)
        .group_by(Ticket.address_key)
        .having(func.count() >= cfg.repeat_threshold)
    )
    dup = Ticket.__table__.alias("dup")
    repeats = (
        select(func.count())
        .where(dup.c.duplicate_of_id == Ticket.id, dup.c.created_at >= since)
        .scalar_subquery()
    )
    found = {
        "overdue": (
            select(Ticket).where(open_, Ticket.due_date < today),
            lambda t: f"办理时限{t.due_date.isoformat()}已过，仍未办结",
        ),
        "repeat_address": (
            select(Ticket).where(open_, Ticket.address_key.in_(repeat_addresses)),
            lambda t: (
                f"{cfg.repeat_window_days}天内同一地址（{t.address_key}）"
                f"已有{cfg.repeat_threshold}件以上工单"
            ),
        ),
        "repeat_subject": (
            select(Ticket).where(open_, repeats + 1 >= cfg.repeat_threshold),
            lambda t: f"{cfg.repeat_window_days}天内同一事项重复来电{cfg.repeat_threshold}次以上",
        ),
    }
    counts: dict[str, int] = {}
    with unit_of_work(app) as s:
        serialized(s, SCAN_LOCK)
        for source, (stmt, why) in found.items():
            rows = s.scalars(
                stmt.where(~_open_supervision(Ticket.id, source)).order_by(Ticket.id)
            ).all()
            for ticket in rows:
                _add(s, actor, ticket, source, why(ticket), now)
            counts[source] = len(rows)
    return counts
