"""Callers whose PBX sends keys as SIP INFO or as tones in the audio choose a category."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from harness.data import statement
from harness.sipfix import (
    Ivr,
    clip_seconds,
    flow_prompt,
    need_peers,
    running_ivr,
    sip_settings,
)
from harness.sipkit import caller_media_pcap, run_sipp
from harness.sipkit.pcap import RtpStream
from harness.sipkit.procs import wait_until
from harness.sipkit.sipmsg import SipMessage, pcmu_sdp
from ivr.config import Settings


@pytest.fixture
def ivr(base_settings: Settings, tmp_path: Path):  # type: ignore[no-untyped-def]
    need_peers("sipp")
    # About how keys arrive, not what callers hear: the prompts are cut short.
    with running_ivr(sip_settings(base_settings, tmp_path, short_prompts=True)) as ivr:
        yield ivr


def ask_seconds(ivr: Ivr) -> float:
    """How long the IVR's request for the statement plays."""
    return clip_seconds(ivr.app.settings, flow_prompt(ivr.app.settings, "inbound", "statement"))


def timeline(ivr: Ivr) -> list[str]:
    (session,) = ivr.phone.finished
    return [what for _, what in session.timeline]


def test_keys_sent_as_sip_info_choose_the_category_and_end_the_statement(
    ivr: Ivr, tmp_path: Path
) -> None:
    """INFO application/dtmf-relay `Signal=3` in the greeting or menu, then the statement, and
    INFO application/dtmf `#` two seconds into it (the caller is done: the recording
    stops on the key, not on a pause); the caller offered no telephone-event."""
    pcap = tmp_path / "statement.pcap"
    # The key ends the greeting or menu: the IVR asks for the statement at once and beeps;
    # the caller starts speaking a little after the beep (this pcap plays after the key).
    lead_ms = round((ask_seconds(ivr) + 1.75) * 1000)
    caller_media_pcap(
        pcap,
        statement=statement(3),
        digits_last="",
        lead_ms=lead_ms,
        between_ms=300,
        trailing_silence_ms=0,
    )
    result = run_sipp(
        "uac_info",
        ivr.hostport,
        service="12345",
        keys={"caller": "13800138000", "digit": "3"},
        media={"media.pcap": pcap},
        extra_args=["-d", str(lead_ms + 2000)],  # when the '#' INFO leaves
        timeout=120,
        recv_timeout=110,
    )
    assert result.ok, result.describe()
    assert result.received_statuses("INFO") == [200, 200]
    assert result.received("BYE"), "the IVR did not hang up"
    ivr.wait_idle()
    rows = ivr.rows()
    (ticket,) = rows["tickets"]
    assert (ticket.category, ticket.category_source) == ("求助", "menu")
    (rec,) = rows["recordings"]
    assert rec.duration_s and rec.duration_s > 1.0
    steps = timeline(ivr)
    assert "INFO key 3" in steps and "INFO key #" in steps
    assert any(s.startswith("recorded") and "(finish-key)" in s for s in steps), str(steps)


def test_keys_as_tones_in_the_audio_choose_the_category(ivr: Ivr, tmp_path: Path) -> None:
    """No telephone-event in the caller's SDP: '5' and '#' are DTMF tones in the RTP audio."""
    pcap = tmp_path / "caller.pcap"
    (
        RtpStream()
        .silence(1000)
        .tones("5")  # ends the greeting or menu: the IVR asks for the statement and beeps
        .silence(round((ask_seconds(ivr) + 1.75) * 1000))
        .wav(statement(5))
        .silence(300)
        .tones("#")
        .silence(500)
        .write(pcap)
    )
    result = run_sipp(
        "uac_call_inband",
        ivr.hostport,
        service="12345",
        keys={"caller": "13800138000"},
        media={"media.pcap": pcap},
        timeout=120,
        recv_timeout=110,
    )
    assert result.ok, result.describe()
    assert result.received("BYE"), "the IVR did not hang up"
    ivr.wait_idle()
    rows = ivr.rows()
    (ticket,) = rows["tickets"]
    assert (ticket.category, ticket.category_source) == ("举报", "menu")
    assert ticket.transcription == "done"
    steps = timeline(ivr)
    assert any(s.startswith("recorded") and "(finish-key)" in s for s in steps), str(steps)


def test_info_outside_any_call_gets_481(ivr: Ivr) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    port = sock.getsockname()[1]
    raw = (
        f"INFO sip:ivr@127.0.0.1:{ivr.phone.port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKinfo1\r\n"
        "From: <sip:13800138000@127.0.0.1>;tag=a\r\nTo: <sip:12345@127.0.0.1>;tag=b\r\n"
        "Call-ID: nosuchcall@127.0.0.1\r\nCSeq: 2 INFO\r\nMax-Forwards: 70\r\n"
        "Content-Type: application/dtmf-relay\r\nContent-Length: 10\r\n\r\nSignal=1\r\n"
    )
    try:
        sock.sendto(raw.encode(), ivr.hostport)
        answer = sock.recv(4096).decode()
    finally:
        sock.close()
    assert answer.startswith("SIP/2.0 481"), answer


def test_info_without_a_key_gets_400_and_the_call_goes_on(ivr: Ivr) -> None:
    """In an answered call: an INFO of a DTMF type naming no key is refused (400), one of
    another type is accepted (200), and the call still answers a good key."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp.bind(("127.0.0.1", 0))
    host, port = sock.getsockname()
    target = f"sip:12345@127.0.0.1:{ivr.phone.port}"
    call_id = f"info-{port}@127.0.0.1"

    def send(method: str, cseq: int, to_tag: str, ctype: str = "", body: str = "") -> None:
        lines = [
            f"{method} {target} SIP/2.0",
            f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{method}{cseq}x;rport",
            "Max-Forwards: 70",
            f"From: <sip:13800138000@{host}:{port}>;tag=infotest",
            f"To: <{target}>" + (f";tag={to_tag}" if to_tag else ""),
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:13800138000@{host}:{port}>",
        ]
        if ctype:
            lines.append(f"Content-Type: {ctype}")
        lines.append(f"Content-Length: {len(body)}")
        sock.sendto(("\r\n".join(lines) + "\r\n\r\n" + body).encode(), ivr.hostport)

    def final(method: str) -> SipMessage:
        while True:
            msg = SipMessage.parse(sock.recv(65536))
            cseq = (msg.header("CSeq") or "").split()
            if msg.status and msg.status >= 200 and cseq[-1:] == [method]:
                return msg

    try:
        send("INVITE", 1, "", "application/sdp", pcmu_sdp(host, rtp.getsockname()[1]))
        ok = final("INVITE")
        assert ok.status == 200
        tag = (ok.header("To") or "").split("tag=")[1].split(";")[0]
        send("ACK", 1, tag)
        send("INFO", 2, tag, "application/dtmf-relay", "Duration=160\r\n")
        assert final("INFO").status == 400
        send("INFO", 3, tag, "application/media_control+xml", "<media_control/>")
        assert final("INFO").status == 200
        send("INFO", 4, tag, "application/dtmf-relay", "Signal=1\r\nDuration=160\r\n")
        assert final("INFO").status == 200
        assert wait_until(lambda: "INFO key 1" in _notes(ivr, call_id), 10)
        send("BYE", 5, tag)
        assert final("BYE").status == 200
    finally:
        sock.close()
        rtp.close()


def _notes(ivr: Ivr, call_id: str) -> list[str]:
    session = ivr.phone.sessions.get(call_id)
    return [what for _, what in session.timeline] if session else []
