"""Calls that survive bad peers (issue 14): a hostile SDP, a stream that fails, a 200
never ACKed, and the call's end time taken at the real end."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from harness.sipfix import (
    Ivr,
    caller_pcap,
    clip_seconds,
    flow_prompt,
    in_threads,
    need_peers,
    running_ivr,
    sip_settings,
)
from harness.sipkit import run_sipp
from harness.sipkit.pcap import RtpStream as CallerAudio
from harness.sipkit.ports import free_port_block
from harness.sipkit.procs import wait_until
from ivr.config import Settings
from ivr.store.models import Call
from ivr.transports.sip.rtp import PCMU, RtpStream


@pytest.fixture
def ivr(base_settings: Settings, tmp_path: Path):  # type: ignore[no-untyped-def]
    need_peers("sipp")
    # About surviving bad peers, not what callers hear: the prompts are cut short.
    with running_ivr(sip_settings(base_settings, tmp_path, short_prompts=True)) as ivr:
        yield ivr


def good_call(ivr: Ivr, tmp: Path, n: int):  # type: ignore[no-untyped-def]
    pcap = caller_pcap(ivr.app.settings, tmp, "12345", digit="2", n=n)
    return run_sipp(
        "uac_call",
        ivr.hostport,
        service="12345",
        keys={"caller": "13800138000"},
        media={"media.pcap": pcap},
        timeout=120,
        recv_timeout=110,
    )


def hostile_calls(ivr: Ivr, done: threading.Event) -> list[list[int]]:
    """INVITEs offering `m=audio 99999` again and again while the good calls run."""
    statuses: list[list[int]] = []
    while not done.is_set() and len(statuses) < 20:
        result = run_sipp("uac_bad_sdp", ivr.hostport, service="12345", timeout=15)
        statuses.append(result.received_statuses("INVITE"))
        done.wait(1.0)
    return statuses


def test_a_hostile_sdp_is_refused_and_the_other_calls_are_complete(
    ivr: Ivr, tmp_path: Path
) -> None:
    done = threading.Event()

    def good(n: int):  # type: ignore[no-untyped-def]
        try:
            return good_call(ivr, tmp_path, n)
        finally:
            if n == 2:
                done.set()

    hostile, first, second = in_threads(
        [lambda: hostile_calls(ivr, done), lambda: good(1), lambda: good(2)]
    )
    # A port outside 1-65535 is unreadable SDP: 400 (RFC 3261 21.4.1), never answered.
    assert hostile and all(400 in s and 200 not in s for s in hostile), hostile
    for result in (first, second):
        assert result.ok and result.received("BYE"), result.describe()
    ivr.wait_idle()
    rows = ivr.rows()
    assert len(rows["calls"]) == 2  # the refused INVITEs left no call behind
    assert all(c.status == "completed" for c in rows["calls"])
    assert len(rows["tickets"]) == 2
    for t in rows["tickets"]:
        assert t.category == "投诉" and t.transcription == "done" and t.statement
    for rec in rows["recordings"]:
        assert rec.duration_s and rec.duration_s > 2.0
    assert ivr.phone.ports.in_use == 0


def test_a_failing_stream_ends_its_call_and_the_others_go_on_sending() -> None:
    """A stream the pacer cannot send for (a peer port no socket can have, as a bad
    re-INVITE or ACK could give) is ended alone; the other call keeps its audio."""
    low = free_port_block(4)
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", low + 2))
    peer.settimeout(2)
    failed: list[BaseException] = []
    good = RtpStream(("127.0.0.1", low), ("127.0.0.1", low + 2), PCMU, 101, label="good")
    bad = RtpStream(
        ("127.0.0.1", low + 1),
        ("127.0.0.1", 99999),
        PCMU,
        101,
        on_failure=failed.append,
        label="hostile",
    )
    good.start()
    try:
        bad.start()
        assert wait_until(lambda: bool(failed), 5), "the bad stream was never failed"
        after = good.sent
        # Half a second of the good call's audio, after the failure, reaches its peer.
        assert wait_until(lambda: good.sent >= after + 25, 5), "the pacer stopped"
        received = 0
        while received < after + 25:
            peer.recv(2048)
            received += 1
        assert bad.failure is failed[0]
    finally:
        good.close()
        bad.close()
        peer.close()


@pytest.fixture
def real_prompts_ivr(base_settings: Settings, tmp_path: Path):  # type: ignore[no-untyped-def]
    need_peers("sipp")
    with running_ivr(sip_settings(base_settings, tmp_path)) as ivr:
        yield ivr


def test_a_200_never_acked_is_given_up_with_bye_and_no_draft(real_prompts_ivr: Ivr) -> None:
    # The real prompts: the flow starts with the 200 and, cut short, it would reach its
    # own end (a silent call) before the 32 s without an ACK are over.
    ivr = real_prompts_ivr
    result = run_sipp(
        "uac_no_ack",
        ivr.hostport,
        service="12345",
        keys={"caller": "13800138000"},
        timeout=60,
        recv_timeout=50,
    )
    assert result.ok, result.describe()
    assert result.received("BYE"), "the IVR never ended the unconfirmed dialog"
    assert len(result.received(status=200, method="INVITE")) >= 3, "200 not retransmitted"
    ivr.wait_idle()
    rows = ivr.rows()
    (call_row,) = rows["calls"]
    assert call_row.status == "failed" and call_row.ended_at is not None
    assert rows["tickets"] == [] and rows["recordings"] == []


def test_end_time_and_duration_are_taken_after_the_goodbye(ivr: Ivr, tmp_path: Path) -> None:
    result = good_call(ivr, tmp_path, 4)
    assert result.ok and result.received("BYE"), result.describe()
    ivr.wait_idle()
    (call_row,) = ivr.rows()["calls"]
    with ivr.app.db.read() as s:
        events = s.get(Call, call_row.id).events  # type: ignore[union-attr]
        last_verb = max(e.at for e in events if e.kind == "verb")
    goodbye = clip_seconds(ivr.app.settings, flow_prompt(ivr.app.settings, "inbound", "goodbye"))
    assert call_row.ended_at is not None and call_row.duration_s is not None
    # The read-back and the goodbye were played after the flow's last step: they count.
    assert (call_row.ended_at - last_verb).total_seconds() >= goodbye
    assert call_row.duration_s >= (last_verb - call_row.answered_at).total_seconds() + goodbye


def test_a_silent_caller_leaves_no_draft_and_is_counted(ivr: Ivr, tmp_path: Path) -> None:
    """A scanner or dead air: no key, nothing said. The call is stored as silent."""
    before = REGISTRY.get_sample_value(
        "ivr_calls_total", {"direction": "inbound", "outcome": "silent"}
    )
    pcap = CallerAudio().silence(100_000).write(tmp_path / "silent.pcap")
    result = run_sipp(
        "uac_call",
        ivr.hostport,
        service="12345",
        keys={"caller": "13800138000"},
        media={"media.pcap": pcap.path},
        timeout=120,
        recv_timeout=110,
    )
    assert result.ok and result.received("BYE"), result.describe()
    ivr.wait_idle()
    rows = ivr.rows()
    (call_row,) = rows["calls"]
    assert call_row.status == "silent" and rows["tickets"] == []
    names = ivr.event_names(call_row.id)
    assert "Digits" not in names and "RecordingFinished" in names
    after = REGISTRY.get_sample_value(
        "ivr_calls_total", {"direction": "inbound", "outcome": "silent"}
    )
    assert (after or 0) == (before or 0) + 1
