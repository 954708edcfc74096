"""Start-up of a SIP node after a crash: its open calls closed as interrupted (issue 14).

The kill -9 of a real `ivr serve` is in test_sip_crash.py; this is the same entry
point on both databases, with several nodes' calls and every state a crash leaves.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from harness.data import statement
from ivr.app import Hotline
from ivr.calls.recordings import StatementSpool, spool_path
from ivr.clock import FixedClock
from ivr.flow import Digits
from ivr.jobs import DramatiqJobs
from ivr.runtime.lease import Lease
from ivr.runtime.open_calls import check_open_calls
from ivr.runtime.presence import NodeBusy, dead_node, hold, node_presence
from ivr.store import Call, Recording, Ticket
from ivr.surveys.scheduler import DispatchScheduler
from ivr.tickets import to_dict
from ivr.transports.sip.audiofile import read_pcm8k
from ivr.transports.sip.recovery import close_interrupted_calls

from .consolekit import browser, console_app

NODE, OTHER = "10.0.0.1:5060", "10.0.0.2:5060"


def start(app: Hotline, call_id: str, node: str, key: str | None = "2") -> None:
    app.calls.start(
        provider="sip",
        provider_call_id=call_id,
        from_number="13800138000",
        to_number="12345",
        node=node,
    )
    if key:
        app.calls.handle("sip", call_id, Digits(key))  # on to the statement


def lost_count() -> float:
    return REGISTRY.get_sample_value("ivr_recordings_lost_total", {"provider": "sip"}) or 0


def test_a_node_closes_its_own_open_calls_and_keeps_what_was_said(hotline: Hotline) -> None:
    start(hotline, "speaking@x", NODE)  # the caller was speaking: the statement is spooled
    start(hotline, "in-menu@x", NODE, key=None)  # cut in the menu: nothing said
    start(hotline, "lost@x", NODE)  # was recording, but its spool is gone
    start(hotline, "elsewhere@x", OTHER)  # another node's live call
    pcm = read_pcm8k(statement(1))[: 8000 * 2 * 3]  # three seconds reached the disk
    spool = StatementSpool(spool_path(hotline, "sip", "speaking@x"), 8000)
    spool.append(pcm, sync=True)  # never closed: the process died
    lost_before = lost_count()
    submitted: list[int] = []

    closed = close_interrupted_calls(hotline, NODE, submitted.append)

    assert sorted(c.provider_call_id for c in closed) == ["in-menu@x", "lost@x", "speaking@x"]
    with hotline.db.read() as s:
        calls = {c.provider_call_id: c for c in s.scalars(select(Call))}
        recordings = list(s.scalars(select(Recording)))
        tickets = {t.call_id: t for t in s.scalars(select(Ticket))}
    assert calls["elsewhere@x"].status == "in-progress" and calls["elsewhere@x"].ended_at is None
    for cid in ("speaking@x", "in-menu@x", "lost@x"):
        assert calls[cid].status == "interrupted" and calls[cid].ended_at is not None
    (rec,) = recordings
    assert rec.call_id == calls["speaking@x"].id and rec.duration_s == 3.0
    assert submitted == [rec.id]
    assert set(tickets) == {calls["speaking@x"].id}  # nothing said, nothing recovered: no draft
    ticket = tickets[calls["speaking@x"].id]
    assert ticket.category == "投诉" and ticket.transcription == "pending"
    assert ticket.intake and ticket.intake["interrupted"] is True
    assert not spool_path(hotline, "sip", "speaking@x").exists()
    assert lost_count() == lost_before + 1
    # A second start finds nothing left to close.
    assert close_interrupted_calls(hotline, NODE, submitted.append) == []


def test_the_operator_sees_the_draft_was_cut(hotline: Hotline) -> None:
    """The console's queue and ticket page mark the draft 通话中断; the API says so."""
    start(hotline, "cut@x", NODE)
    spool = StatementSpool(spool_path(hotline, "sip", "cut@x"), 8000)
    spool.append(read_pcm8k(statement(2)), sync=True)
    (closed,) = close_interrupted_calls(hotline, NODE, lambda _rid: None)
    with hotline.db.read() as s:
        ticket = s.scalars(select(Ticket).where(Ticket.number == closed.ticket)).one()
        assert to_dict(ticket)["interrupted"] is True
    with console_app(hotline) as app:
        b = browser(app, "operator")
        queue = b.get("/console/queue").get_data(as_text=True)
        assert "通话中断" in queue and ticket.number in queue
        page = b.get(f"/console/tickets/{ticket.id}").get_data(as_text=True)
        assert 'id="interrupted"' in page and "通话中断" in page


# A SIP node's process as the open-call check sees it: it holds the node's presence
# (as SipPhone.start does) until it is killed.
HOLD_PRESENCE = """
import sys
from pathlib import Path
from ivr.runtime.presence import hold, node_presence
from ivr.store import Database
presence = node_presence(Database(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))
hold(presence)
print("held", flush=True)
sys.stdin.read()
"""


def test_the_scheduler_closes_the_calls_of_a_dead_node_without_a_restart(
    hotline: Hotline, clock: FixedClock, tmp_path: Path
) -> None:
    """Two SIP nodes, each a live process, have a call open; one is killed with -9 and
    never restarted. The active scheduler's periodic open-call check closes that node's
    call as a restart would have (interrupted, the spooled statement drafted) and
    leaves the live node's call alone."""
    start(hotline, "dead@x", NODE)
    start(hotline, "alive@x", OTHER)
    spool = StatementSpool(spool_path(hotline, "sip", "dead@x"), 8000)
    spool.append(read_pcm8k(statement(1))[: 8000 * 2 * 3], sync=True)
    url, storage = hotline.settings.resolved_database_url, hotline.settings.storage_path
    nodes = {
        node: subprocess.Popen(
            [sys.executable, "-c", HOLD_PRESENCE, url, node, str(storage)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        for node in (NODE, OTHER)
    }
    jobs = DramatiqJobs(hotline.settings.jobs)
    submitted: list[int] = []
    scheduler = DispatchScheduler(
        hotline,
        jobs,
        Lease(hotline.db, "scheduler", tmp_path),
        1.0,
        open_calls=lambda: check_open_calls(hotline, submitted.append),
    )
    try:
        for proc in nodes.values():
            assert proc.stdout is not None and proc.stdout.readline() == b"held\n"
        scheduler.tick()
        assert statuses(hotline) == {"dead@x": "in-progress", "alive@x": "in-progress"}
        nodes[NODE].kill()
        nodes[NODE].wait()
        scheduler.tick()  # the check is not due yet
        assert statuses(hotline)["dead@x"] == "in-progress"
        clock.advance(seconds=hotline.settings.jobs.open_call_check_s)
        scheduler.tick()
    finally:
        for proc in nodes.values():
            proc.kill()
            proc.wait()
        jobs.close(wait=False)
        scheduler.lease.release()
    assert statuses(hotline) == {"dead@x": "interrupted", "alive@x": "in-progress"}
    with hotline.db.read() as s:
        (rec,) = s.scalars(select(Recording))
        (ticket,) = s.scalars(select(Ticket))
        assert rec.call.provider_call_id == "dead@x" and rec.duration_s == 3.0
        assert ticket.call_id == rec.call_id and ticket.intake and ticket.intake["interrupted"]
    assert submitted == [rec.id]
    assert not spool_path(hotline, "sip", "dead@x").exists()


def statuses(app: Hotline) -> dict[str, str]:
    with app.db.read() as s:
        return {c.provider_call_id: c.status for c in s.scalars(select(Call))}


def test_a_node_waits_to_come_back_while_its_calls_are_being_closed(hotline: Hotline) -> None:
    """The check holds a dead node's lease while it closes the node's calls: a process of
    that node starting meanwhile waits (and gives up with NodeBusy if it lasts), so no
    call it takes can be closed by mistake; once it holds its presence, it is alive."""
    db, storage = hotline.db, hotline.settings.storage_path
    presence = node_presence(db, NODE, storage)
    with dead_node(db, NODE, storage) as dead:
        assert dead
        with pytest.raises(NodeBusy):
            hold(presence, timeout_s=0.3)
    hold(presence)
    try:
        with dead_node(db, NODE, storage) as dead:
            assert not dead
    finally:
        presence.release()
