"""A busy shift's queue: thousands of open drafts, for the console's tests and bench.

Each draft is a copy of one real draft (made by a simulated call, so every field is
as intake fills it) with its own number, caller, creation time, urgency and due
date, inserted in bulk: a queue of 5,000 takes seconds, not 5,000 calls.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, inspect, select

from ivr.app import Hotline
from ivr.store.models import Ticket

# Columns a copy gets anew (the rest are the model draft's).
_OWN = {"id", "number", "call_id", "caller_number", "created_at", "updated_at", "urgent"}


def bulk_drafts(
    hotline: Hotline,
    model_id: int,
    count: int,
    *,
    seed: int = 12345,
    urgent_share: float = 0.03,
    prefix: str = "12345-20261101",
) -> list[str]:
    """Insert `count` drafts copied from ticket `model_id`; their numbers, in order.

    Creation times go back one hour per draft from the model's; due dates spread
    over the model's due date and the ten days after it."""
    rng = random.Random(seed)
    with hotline.db.session() as s:
        model = s.get(Ticket, model_id)
        assert model is not None, f"no ticket {model_id}"
        columns = [c.key for c in inspect(Ticket).mapper.column_attrs]
        base: dict[str, Any] = {c: getattr(model, c) for c in columns if c not in _OWN}
        numbers = []
        rows = []
        for i in range(count):
            number = f"{prefix}-{i:05d}"
            numbers.append(number)
            created = model.created_at - timedelta(hours=i + 1)
            rows.append(
                {
                    **base,
                    "number": number,
                    "caller_number": f"139{rng.randrange(10**8):08d}",
                    "urgent": rng.random() < urgent_share,
                    "due_date": model.due_date + timedelta(days=rng.randrange(11)),
                    "created_at": created,
                    "updated_at": created,
                }
            )
        for start in range(0, len(rows), 1000):
            s.execute(insert(Ticket), rows[start : start + 1000])
        assert s.scalar(select(Ticket.id).where(Ticket.number == numbers[-1])) is not None
    return numbers
