"""SIP signalling against hostile and unusual peers (issue 14, items 4-7, 9, 14).

In-dialog requests are matched on Call-ID and both tags; re-INVITEs move the
media, change the codec and hold; SDP offers are read per m= section; the SIP
and RTP ports are held exclusively; bad requests are answered 400/420 and
logged without flooding. Peers are raw UDP datagrams (harness/sipkit/rawdialog.py)
and SIPp; nothing is timed.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.sipfix import Ivr, running_ivr, sip_settings
from harness.sipkit import send_raw, unknown_peer_ip
from harness.sipkit.rawdialog import RawUac, RtpSink, audio_sdp
from harness.sipkit.sipmsg import SipMessage, build_request
from ivr.config import Settings

LOCAL = "127.0.0.1"


@pytest.fixture
def ivr(base_settings: Settings, tmp_path: Path) -> Iterator[Ivr]:
    """The IVR in trunk mode (INVITEs from 127.0.0.1 only), without ASR."""
    with running_ivr(sip_settings(base_settings, tmp_path), asr=False) as ivr:
        yield ivr


@pytest.fixture
def sink() -> Iterator[RtpSink]:
    s = RtpSink()
    yield s
    s.close()


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def origin(msg: SipMessage) -> tuple[str, int]:
    """The o= session id and version of a message's SDP."""
    m = re.search(r"(?m)^o=\S+ (\d+) (\d+) ", msg.body)
    assert m, msg.body
    return m.group(1), int(m.group(2))


def media_lines(msg: SipMessage) -> list[str]:
    return re.findall(r"(?m)^m=.*?(?=\r?$)", msg.body)


def call(ivr: Ivr, sink: RtpSink, **sdp: str) -> RawUac:
    """An answered call from a raw caller whose RTP goes to `sink`."""
    uac = RawUac(ivr.hostport)
    reply = uac.invite("12345", audio_sdp(LOCAL, sink.port, **sdp))
    assert reply.final is not None and reply.final.status == 200, reply.statuses
    assert wait_for(lambda: uac.call_id in ivr.phone.sessions, 5)
    return uac


def hang_up(ivr: Ivr, uac: RawUac) -> None:
    assert uac.bye().statuses == [200]
    ivr.wait_idle(30)
    uac.close()


# -- item 7: in-dialog requests need the dialog's tags -----------------------------------------


def test_bye_with_wrong_tags_does_not_end_the_call(ivr: Ivr, sink: RtpSink) -> None:
    uac = call(ivr, sink)
    assert len(sink.collect(10, 5)) == 10  # the greeting is playing
    spoofer = RawUac(ivr.hostport, local_ip=unknown_peer_ip())
    spoofer.uri, spoofer.remote_target = uac.uri, uac.remote_target
    try:
        # Someone who learned the Call-ID, from another address, with made-up tags.
        forged = spoofer.send(spoofer.build("BYE", call_id=uac.call_id, to_tag="guessed"))
        assert forged.statuses == [481]
        # The caller's own address and From tag, but not our To tag; and no To tag at all.
        assert uac.bye(to_tag="not-ours").statuses == [481]
        assert uac.bye(to_tag="").statuses == [481]
        # The right To tag with another From tag; a re-INVITE and INFO with wrong tags.
        assert uac.bye(from_tag="someone-else").statuses == [481]
        cseq = uac.cseq + 1
        wrong = uac.build(
            "INVITE", body=audio_sdp(LOCAL, 9), to_tag="not-ours", cseq=cseq
        )  # it would move our media to port 9
        assert uac.send(wrong).statuses == [481]
        assert uac.send(uac.build("INFO", from_tag="x", cseq=cseq + 1)).statuses == [481]
        uac.cseq = cseq + 1
    finally:
        spoofer.close()
    session = ivr.phone.sessions.get(uac.call_id)
    assert session is not None and not session.remote_bye.is_set()
    sink.drain()
    assert len(sink.collect(10, 5)) == 10, "the call went silent"
    assert uac.send(uac.build("INFO", cseq=uac.cseq + 1)).statuses == [200]
    uac.cseq += 1
    hang_up(ivr, uac)
    (row,) = ivr.rows()["calls"]
    assert row.provider_call_id == uac.call_id


# -- item 6: re-INVITE -------------------------------------------------------------------------


def test_reinvite_moves_media_changes_codec_and_holds(ivr: Ivr, sink: RtpSink) -> None:
    uac = call(ivr, sink)
    first = uac.to_tag
    assert sink.collect(5, 5) == [0] * 5
    assert uac.answer is not None
    sid, version = origin(uac.answer)
    moved = RtpSink()
    try:
        # A new media port (the caller moved to another port): our packets follow it.
        r = uac.reinvite(audio_sdp(LOCAL, moved.port, version=2))
        assert r.final is not None and r.final.status == 200, r.statuses
        assert moved.collect(5, 5) == [0] * 5
        # Our side did not change, nor did our description: same session id and version.
        assert origin(r.final) == (sid, version)
        # A codec change: PCMA only. Answered PCMA, and PCMA is what we send.
        r = uac.reinvite(audio_sdp(LOCAL, moved.port, codecs="8 101", version=3))
        assert r.final is not None and r.final.status == 200
        assert media_lines(r.final) == [f"m=audio {_our_port(r.final)} RTP/AVP 8 101"]
        assert "a=rtpmap:8 PCMA/8000" in r.final.body
        assert origin(r.final) == (sid, version + 1)  # RFC 3264 8: changed, one up
        moved.drain()
        assert set(moved.collect(10, 5)) == {8}
        # Hold: sendonly is answered recvonly and we stop sending; inactive likewise.
        for offered, answered in (("sendonly", "recvonly"), ("inactive", "inactive")):
            r = uac.reinvite(
                audio_sdp(LOCAL, moved.port, codecs="8 101", direction=offered, version=4)
            )
            assert r.final is not None and r.final.status == 200
            assert f"a={answered}" in r.final.body and "a=sendrecv" not in r.final.body
            # Sending stops: soon half a second passes without a packet (20 ms apart before).
            assert wait_for(lambda: moved.collect(1, 0.5) == [], 5), f"sending while {offered}"
        # Off hold: sending again.
        r = uac.reinvite(audio_sdp(LOCAL, moved.port, codecs="8 101", version=5))
        assert r.final is not None and "a=sendrecv" in r.final.body
        assert set(moved.collect(10, 5)) == {8}
        # What we cannot serve (G.729 only) is 488 and changes nothing; nor does garbage (400).
        r = uac.reinvite(audio_sdp(LOCAL, sink.port, codecs="18", version=6))
        assert r.statuses[-1] == 488 and "Warning" in r.final.raw  # type: ignore[union-attr]
        r = uac.reinvite("v=0\r\nthis is not SDP\r\n")
        assert r.statuses[-1] == 400
        sink.drain()
        moved.drain()
        assert set(moved.collect(10, 5)) == {8} and sink.collect(1, 0.5) == []
        assert uac.to_tag == first
    finally:
        moved.close()
    hang_up(ivr, uac)


def test_offerless_reinvite_takes_the_answer_from_the_ack(ivr: Ivr, sink: RtpSink) -> None:
    """As a B2BUA does after a transfer: no SDP in the re-INVITE, our offer in the 200, the
    new media address in the ACK."""
    uac = call(ivr, sink)
    assert len(sink.collect(5, 5)) == 5
    moved = RtpSink()
    try:
        r = uac.reinvite("", ack_sdp=audio_sdp(LOCAL, moved.port, codecs="8 101", version=2))
        assert r.final is not None and r.final.status == 200
        # Our offer: the call's codec first, the other one too; a new version of our SDP.
        assert media_lines(r.final) == [f"m=audio {_our_port(r.final)} RTP/AVP 0 8 101"]
        assert uac.answer is not None
        assert origin(r.final) == (origin(uac.answer)[0], origin(uac.answer)[1] + 1)
        assert set(moved.collect(10, 5)) == {8}  # the answer's address and codec
    finally:
        moved.close()
    hang_up(ivr, uac)


def _our_port(msg: SipMessage) -> int:
    m = re.search(r"(?m)^m=audio (\d+) ", msg.body)
    assert m
    return int(m.group(1))


# -- item 9: reading offers --------------------------------------------------------------------


def test_media_level_connection_wins_over_session_level(ivr: Ivr, sink: RtpSink) -> None:
    uac = call(ivr, sink, session_c="IN IP4 192.0.2.7", media_c=f"IN IP4 {LOCAL}")
    assert len(sink.collect(5, 5)) == 5  # sent to the media-level address, not 192.0.2.7
    hang_up(ivr, uac)


@pytest.mark.parametrize(
    ("sdp", "why"),
    [
        ({"proto": "RTP/SAVP"}, "RTP/SAVP"),
        ({"session_c": "IN IP6 ::1"}, "IPv6"),
        ({"media_c": "IN IP6 ::1"}, "IPv6"),
        ({"port0": "1"}, "port 0"),
    ],
    ids=["srtp", "ipv6-session", "ipv6-media", "port0"],
)
def test_offers_we_cannot_serve_get_488(ivr: Ivr, sdp: dict[str, str], why: str) -> None:
    uac = RawUac(ivr.hostport)
    port = 0 if sdp.pop("port0", None) else 40000
    reply = uac.invite("12345", audio_sdp(LOCAL, port, **sdp))
    uac.close()
    assert reply.statuses == [488], reply.statuses
    assert why in (reply.final.header("Warning") or "")  # type: ignore[union-attr]
    assert ivr.rows()["calls"] == [] and ivr.phone.ports.in_use == 0


def test_usable_stream_beside_declined_ones_is_answered(ivr: Ivr, sink: RtpSink) -> None:
    """SRTP first, plain RTP second (as an SBC offering both), and a video stream: the
    plain audio is used, the others declined with port 0 in our answer."""
    savp = "!m=audio 41000 RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\nm=video 41002 RTP/AVP 96"
    uac = RawUac(ivr.hostport)
    reply = uac.invite("12345", audio_sdp(LOCAL, sink.port, extra_media=savp))
    final = reply.final
    assert final is not None and final.status == 200, reply.statuses
    lines = media_lines(final)
    assert lines[0] == "m=audio 0 RTP/SAVP 0" and lines[1] == "m=video 0 RTP/AVP 96"
    assert re.fullmatch(r"m=audio [1-9]\d* RTP/AVP 0 101", lines[2])
    assert len(sink.collect(5, 5)) == 5
    assert wait_for(lambda: uac.call_id in ivr.phone.sessions, 5)
    hang_up(ivr, uac)


# -- item 14: extensions, bad requests, Via, Allow, noise --------------------------------------


def test_require_100rel_gets_420_with_unsupported(ivr: Ivr) -> None:
    uac = RawUac(ivr.hostport)
    reply = uac.invite("12345", audio_sdp(LOCAL, 40000), extra=["Require: 100rel, timer"])
    uac.close()
    assert reply.statuses == [420]
    assert reply.final is not None and reply.final.header("Unsupported") == "100rel, timer"
    assert ivr.rows()["calls"] == []


def test_malformed_request_with_via_gets_400_with_reason(ivr: Ivr) -> None:
    def bad_cseq(local: tuple[str, int]) -> bytes:
        msg = build_request("OPTIONS", f"sip:12345@{LOCAL}", local=local)
        return msg.replace(b"CSeq: 1 OPTIONS", b"CSeq: one OPTIONS")

    reply = send_raw(ivr.hostport, bad_cseq, timeout=3)
    assert reply.statuses == [400]
    assert "CSeq" in reply.replies[0].start_line
    # A response can go nowhere without a Via: nothing comes back.
    no_via = send_raw(
        ivr.hostport,
        lambda lo: re.sub(rb"Via: [^\r]*\r\n", b"", bad_cseq(lo)),
        timeout=1,
    )
    assert no_via.statuses == []
    assert options_ok(ivr)


def options_ok(ivr: Ivr) -> bool:
    reply = send_raw(
        ivr.hostport, lambda lo: build_request("OPTIONS", f"sip:12345@{LOCAL}", local=lo), timeout=3
    )
    return reply.statuses == [200]


def test_via_gets_received_and_rport(ivr: Ivr) -> None:
    """RFC 3581: a peer behind NAT writes an address we cannot reach; rport brings the
    response back to where the request came from."""
    uac = RawUac(ivr.hostport)
    uac.uri = f"sip:12345@{LOCAL}"
    try:
        reply = uac.send(uac.build("OPTIONS", via=uac._via("192.0.2.9:5999")), timeout=3)
        assert reply.statuses == [200]
        via = reply.responses[0].header("Via") or ""
        assert f";rport={uac.local[1]}" in via and f";received={LOCAL}" in via, via
    finally:
        uac.close()


def test_allow_does_not_list_refer_and_refer_gets_405(ivr: Ivr) -> None:
    uac = RawUac(ivr.hostport)
    uac.uri = f"sip:12345@{LOCAL}"
    try:
        options = uac.send(uac.build("OPTIONS"), timeout=3)
        refer = uac.send(uac.build("REFER", cseq=2), timeout=3)
    finally:
        uac.close()
    assert options.statuses == [200] and refer.statuses == [405]
    for reply in (options, refer):
        allow = {m.strip() for m in (reply.final.header("Allow") or "").split(",")}  # type: ignore[union-attr]
        assert "INVITE" in allow and "REFER" not in allow


def test_garbage_and_refused_invites_are_logged_rate_limited_and_bounded(
    ivr: Ivr, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ivr.transports.sip")
    peer = unknown_peer_ip()
    stats = ivr.phone.endpoint.stats

    def invite(lo: tuple[str, int]) -> bytes:
        body = audio_sdp(lo[0], 40000)
        return build_request("INVITE", f"sip:12345@{LOCAL}", local=lo, body=body)

    garbage, refused = 50, 300  # a scanner's INVITEs, from a peer we take no calls from
    for i, payload in enumerate([b"\x16\x03\x01 not sip at all"] * garbage + [invite] * refused):
        before = stats.received
        send_raw(ivr.hostport, payload, local_ip=peer, timeout=0)
        # One at a time: a burst would overflow the socket's buffer and lose datagrams.
        assert wait_for(lambda n=before: stats.received > n, 5), i
    assert options_ok(ivr)  # the phone is still answering
    assert wait_for(lambda: len(ivr.phone.rejected) == ivr.phone.rejected.maxlen, 20)

    def warnings(text: str) -> list[logging.LogRecord]:
        return [r for r in caplog.records if text in r.getMessage() and peer in r.getMessage()]

    assert len(warnings("malformed SIP")) == 1
    assert len(warnings("refused: 403")) == 1
    # The next warning after the window says how many were not logged.
    ivr.phone.endpoint.peer_log.window_s = 0.0
    send_raw(ivr.hostport, b"more garbage", local_ip=peer, timeout=0)
    assert wait_for(lambda: len(warnings("malformed SIP")) == 2, 5)
    assert "and 49 more like it" in warnings("malformed SIP")[-1].getMessage()


# -- item 4: one process per SIP port ----------------------------------------------------------

SECOND_ENDPOINT = """
import logging, sys
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
from ivr.transports.sip.endpoint import SipEndpoint, SipPortInUse
try:
    SipEndpoint("127.0.0.1", int(sys.argv[1]), "127.0.0.1", lambda m, a: None)
except SipPortInUse as exc:
    print(exc)
    sys.exit(3)
print("bound")
"""


def test_a_second_process_cannot_share_the_sip_port(ivr: Ivr) -> None:
    second = subprocess.run(
        [sys.executable, "-c", SECOND_ENDPOINT, str(ivr.phone.port)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 3, (second.stdout, second.stderr)
    assert f"127.0.0.1:{ivr.phone.port} is already in use" in second.stdout
    assert f"ERROR SIP port 127.0.0.1:{ivr.phone.port} is already in use" in second.stderr
    assert options_ok(ivr)  # the first one still gets every request


def test_campaign_dialer_uses_its_own_port(ivr: Ivr) -> None:
    from ivr.transports.sip.service import build_phone

    dialer = build_phone(ivr.app, load_asr=False, dialer=True)
    dialer.start()
    try:
        assert dialer.port not in (0, ivr.phone.port)
        assert dialer.settings.sip.mode == "trunk"
        assert options_ok(ivr)
    finally:
        dialer.stop()


# -- item 5: RTP ports -------------------------------------------------------------------------

OTHER_POOL = """
import sys
from ivr.transports.sip.rtp import NoRtpPort, PortPool
pool = PortPool("127.0.0.1", int(sys.argv[1]), int(sys.argv[2]))
try:
    print(pool.acquire())
except NoRtpPort as exc:
    print("none:", exc)
"""


def test_two_processes_never_get_the_same_rtp_port(ivr: Ivr) -> None:
    pool = ivr.phone.ports
    mine = pool.acquire()
    try:
        other = subprocess.run(
            [sys.executable, "-c", OTHER_POOL, str(pool.low), str(pool.high)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert other.returncode == 0, other.stderr
        assert other.stdout.strip() != str(mine)
    finally:
        pool.release(mine)


HOLD_PORTS = """
import socket, sys
socks = []
for port in range(int(sys.argv[1]), int(sys.argv[2]) + 1):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    socks.append(s)
print("held", flush=True)
sys.stdin.read()
"""


def test_no_rtp_port_gets_503_and_leaves_nothing(
    base_settings: Settings, tmp_path: Path, sink: RtpSink
) -> None:
    """Another process holds the whole RTP range: the call gets 503, no row, no orphan."""
    settings = sip_settings(base_settings, tmp_path)
    low, high = settings.sip.rtp_port_min, settings.sip.rtp_port_max
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_PORTS, str(low), str(high)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with running_ivr(settings, asr=False) as ivr:
            uac = RawUac(ivr.hostport)
            reply = uac.invite("12345", audio_sdp(LOCAL, sink.port))
            uac.close()
            assert reply.statuses[-1] == 503, reply.statuses
            assert reply.final is not None and reply.final.header("Retry-After")
            ivr.wait_idle(10)
            assert ivr.rows()["calls"] == [] and ivr.phone.ports.in_use == 0
    finally:
        holder.kill()
        holder.wait(10)


# -- item 14: the audio waiting for an ASR worker is bounded -----------------------------------


def test_audio_for_a_stalled_asr_worker_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    """A stopped ASR process: the call's audio does not pile up without end; the oldest is
    dropped (logged once) and, once it runs again, the call still gets its transcript."""
    from ivr.transports.sip.recognizer import MAX_QUEUED_AUDIO_BYTES, AsrPool
    from tests.asr_fixtures import ko_asr_config

    caplog.set_level(logging.WARNING, logger="ivr.transports.sip")
    pool = AsrPool(ko_asr_config(), processes=1)
    try:
        worker = pool.workers[0]
        rec = pool.recognizer()
        assert rec is not None
        late: list[dict[str, object]] = []
        second = b"\x00\x01" * 8000  # 1 s of 8 kHz audio
        os.kill(worker.proc.pid, signal.SIGSTOP)
        try:
            for _ in range(180):  # three minutes, far more than the 60 s cap
                for i in range(0, len(second), 320):
                    rec.feed(second[i : i + 320])
            assert worker.outbox.audio_bytes <= MAX_QUEUED_AUDIO_BYTES
            assert worker.outbox.dropped_bytes >= 180 * 16000 - MAX_QUEUED_AUDIO_BYTES - (1 << 20)
        finally:
            os.kill(worker.proc.pid, signal.SIGCONT)
        behind = [r for r in caplog.records if "is behind" in r.getMessage()]
        assert len(behind) == 1, [r.getMessage() for r in behind]
        rec.finish()
        rec.when_late(late.append)
        assert wait_for(lambda: bool(late), 120), "no transcript after the worker resumed"
        assert "text" in late[0]
    finally:
        pool.close()
