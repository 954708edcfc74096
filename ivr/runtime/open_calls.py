"""The periodic open-call check (the active scheduler, every `jobs.open_call_check_s`).

Start-up closes what a node's own dead process left open; this closes what nobody
restarts, with the same code:

- SIP: every node with calls `in-progress` whose presence nobody holds
  (ivr.runtime.presence: its processes are all dead) has them closed as a
  restart of that node would (`close_interrupted_calls`: `interrupted`, spooled
  statements stored and drafted; the spool is read from the shared storage_dir).
  A live node's calls are not touched.
- Twilio: calls open longer than `twilio.max_call_s` are asked of the REST API and
  closed when it reports them ended (`close_open_calls`, as at a worker's start).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from ivr.runtime.presence import dead_node
from ivr.store.models import Call

if TYPE_CHECKING:
    from ivr.app import Hotline

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OpenCallCheck:
    dead_nodes: tuple[str, ...] = ()
    sip_closed: int = 0
    twilio_closed: int = 0


def check_open_calls(
    app: Hotline,
    transcribe: Callable[[int], None],
    twilio_calls: Any = None,
    twilio_client: Any = None,
) -> OpenCallCheck:
    """Close the calls of dead SIP nodes, and (with a REST client) the Twilio calls
    Twilio reports ended."""
    from ivr.transports.sip.recovery import close_interrupted_calls
    from ivr.transports.twilio.reconcile import close_open_calls

    with app.db.read() as s:
        nodes = list(
            s.scalars(
                select(Call.node)
                .where(Call.provider == "sip", Call.status == "in-progress", Call.node.is_not(None))
                .distinct()
            )
        )
    dead: list[str] = []
    closed = 0
    for node in sorted(n for n in nodes if n):
        with dead_node(app.db, node, app.settings.storage_path) as is_dead:
            if is_dead:
                dead.append(node)
                closed += len(close_interrupted_calls(app, node, transcribe))
    if dead:
        log.warning("SIP node(s) %s are gone: %d open call(s) closed", ", ".join(dead), closed)
    twilio = 0
    if twilio_calls is not None and twilio_client is not None:
        twilio = close_open_calls(twilio_calls, twilio_client)
    return OpenCallCheck(tuple(dead), closed, twilio)
