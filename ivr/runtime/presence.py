"""Which SIP nodes are alive: every process that takes calls for a node (`calls.node`)
holds the node's lease shared while it runs; whoever gets it exclusively knows no
process of that node is left, and keeps the node from coming back while it closes
the node's calls (ivr.runtime.open_calls).

The lease is what the scheduler's lease is (ivr.runtime.lease): a PostgreSQL
advisory lock or, on SQLite, a flock in the storage directory. The server or the
kernel drops it the moment the process dies (kill -9 included), so a dead node is
known at the next check, with no heartbeat timeout to wait out.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ivr.runtime.lease import Lease
from ivr.store import Database


class NodeBusy(RuntimeError):
    """The node's lease stayed taken exclusively (another process closing its calls)."""


def _name(node: str) -> str:
    return f"sip-node:{node}"


def node_presence(db: Database, node: str, lock_dir: Path) -> Lease:
    """The lease a process of `node` holds (shared) while it may take calls."""
    return Lease(db, _name(node), lock_dir, shared=True)


def hold(lease: Lease, timeout_s: float = 30.0) -> None:
    """Take a node's presence, waiting out a check that is closing the node's calls."""
    deadline = time.monotonic() + timeout_s
    while not lease.try_acquire():
        if time.monotonic() > deadline:
            raise NodeBusy(f"{lease.name} stayed taken for {timeout_s:.0f} s")
        time.sleep(0.1)


@contextmanager
def dead_node(db: Database, node: str, lock_dir: Path) -> Iterator[bool]:
    """True when no process of `node` is alive; the node cannot come back until the
    block ends (its processes wait in `hold`)."""
    probe = Lease(db, _name(node), lock_dir)
    if not probe.try_acquire():
        yield False
        return
    try:
        yield True
    finally:
        probe.release()
