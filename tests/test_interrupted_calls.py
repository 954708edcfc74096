"""Start-up of a SIP node after a crash: its open calls closed as interrupted (issue 14).

The kill -9 of a real `ivr serve` is in test_sip_crash.py; this is the same entry
point on both databases, with several nodes' calls and every state a crash leaves.
"""

from __future__ import annotations

from prometheus_client import REGISTRY
from sqlalchemy import select

from harness.data import statement
from ivr.app import Hotline
from ivr.calls.recordings import StatementSpool, spool_path
from ivr.flow import Digits
from ivr.store import Call, Recording, Ticket
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
