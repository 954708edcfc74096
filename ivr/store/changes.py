"""Every write of a ticket takes the next number of one database counter (`change_seq`).

The tickets a transaction changed are collected at each flush and numbered just
before it commits (or when a service asks, `stamp`, to answer with the new version).
The counter row is updated in that transaction, so its row lock (PostgreSQL; SQLite
has one writer anyway) is held until the commit: ticket changes become visible in
the order of their numbers. A reader that has seen number N has therefore seen every
change numbered below it, however skewed the hosts' clocks or slow a transaction;
the live queue's cursor is this number, not a time. The counter is taken last, at
the end of a transaction, so it never waits while holding it for a ticket's lock.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, update
from sqlalchemy.orm import Session

from ivr.store.models import ChangeCounter, Ticket

COUNTER_ID = 1
_CHANGED = "ivr.changed_tickets"
_STAMPING = "ivr.stamping"


def _take(session: Session, n: int) -> int:
    """Reserve `n` numbers; the last of them."""
    last = session.execute(
        update(ChangeCounter)
        .where(ChangeCounter.id == COUNTER_ID)
        .values(seq=ChangeCounter.seq + n)
        .returning(ChangeCounter.seq)
    ).scalar_one()
    return int(last)


@event.listens_for(Session, "after_flush")
def _collect(session: Session, _context: Any) -> None:
    if session.info.get(_STAMPING):
        return
    changed: dict[int, Ticket] = session.info.setdefault(_CHANGED, {})
    for t in [*session.new, *session.dirty]:
        if isinstance(t, Ticket) and (t in session.new or session.is_modified(t)):
            changed[id(t)] = t


def stamp(session: Session) -> None:
    """Number the tickets this transaction changed so far (flushing them first)."""
    session.flush()
    changed: dict[int, Ticket] = session.info.pop(_CHANGED, {})
    if not changed:
        return
    tickets = sorted(changed.values(), key=lambda t: t.id)
    last = _take(session, len(tickets))
    session.info[_STAMPING] = True
    try:
        for i, ticket in enumerate(tickets):
            ticket.change_seq = last - len(tickets) + 1 + i
        session.flush()
    finally:
        session.info.pop(_STAMPING, None)


@event.listens_for(Session, "before_commit")
def _stamp_before_commit(session: Session) -> None:
    stamp(session)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_CHANGED, None)
