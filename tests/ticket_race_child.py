"""One of the processes racing on one ticket (tests/test_ticket_doors.py), started with
multiprocessing's spawn: a fresh interpreter with its own database connections.

Each racer reads the ticket, waits at the barrier for the other, then changes it
through `ivr.services.tickets`. The rule is slowed down after the ticket was
read, so without a lock both racers would decide on the same old state.
"""

from __future__ import annotations

import time
from datetime import datetime
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any

from ivr.app import Hotline
from ivr.clock import FixedClock
from ivr.config import Settings
from ivr.queries.tickets import find
from ivr.services import Actor, ServiceError, ticket_rules
from ivr.services import tickets as service
from ivr.tickets import version

# Long enough for the other racer to reach the same point if nothing stops it.
DECIDING_S = 0.5


def _slowed(rule: Any) -> Any:
    def slow(*args: Any) -> Any:
        time.sleep(DECIDING_S)
        return rule(*args)

    return slow


def race(
    settings_json: str, at: str, number: str, op: str, name: str, barrier: Barrier, out: Queue
) -> None:
    app = Hotline.open(Settings.model_validate_json(settings_json),
                       FixedClock(datetime.fromisoformat(at)))  # fmt: skip
    ticket_rules.accept = _slowed(ticket_rules.accept)
    ticket_rules.update = _slowed(ticket_rules.update)
    actor = Actor.system(name)
    try:
        with app.db.read() as s:
            ticket = find(s, number)
            assert ticket is not None
            seen = version(ticket)
        barrier.wait(timeout=60)
        try:
            if op == "accept":
                service.accept(app, actor, number)
            else:
                fields = {"summary": f"{name} 改的摘要"}
                service.update(app, actor, number, fields, expected_version=seen)
            out.put((name, "won"))
        except ServiceError as exc:
            out.put((name, type(exc).__name__))
    finally:
        app.close()
