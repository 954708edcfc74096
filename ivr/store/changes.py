"""Every write of a ticket takes the next numbers of one database counter (`change_seq`).

The counter row is updated in the writing transaction, so its row lock (PostgreSQL;
SQLite has one writer anyway) is held until commit: ticket changes become visible in
the order of their numbers. A reader that has seen number N has therefore seen every
change numbered below N, however skewed the hosts' clocks or slow a transaction; the
live queue's cursor is this number, not a timestamp.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, update
from sqlalchemy.orm import Session

from ivr.store.models import ChangeCounter, Ticket

COUNTER_ID = 1


def _take(session: Session, n: int) -> int:
    """Reserve `n` numbers; the last of them."""
    last = session.execute(
        update(ChangeCounter)
        .where(ChangeCounter.id == COUNTER_ID)
        .values(seq=ChangeCounter.seq + n)
        .returning(ChangeCounter.seq)
    ).scalar_one()
    return int(last)


@event.listens_for(Session, "before_flush")
def _number_ticket_changes(session: Session, _context: Any, _instances: Any) -> None:
    changed = [t for t in session.new if isinstance(t, Ticket)]
    changed += [
        t
        for t in session.dirty
        if isinstance(t, Ticket) and session.is_modified(t, include_collections=False)
    ]
    if not changed:
        return
    last = _take(session, len(changed))
    for i, ticket in enumerate(sorted(changed, key=lambda t: t.id or 0)):
        ticket.change_seq = last - len(changed) + 1 + i
