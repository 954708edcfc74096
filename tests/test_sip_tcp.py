"""SIP over TCP (RFC 3261 18): the IVR listens on TCP on its UDP port too."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from harness.sipfix import Ivr, caller_pcap, need_peers, running_ivr, sip_settings
from harness.sipkit import run_sipp
from harness.sipkit.procs import wait_until
from harness.sipkit.sipmsg import StreamReader
from ivr.config import Settings
from ivr.transports.sip.transport_tcp import MAX_PER_ADDRESS, FramingError, split_messages


@pytest.fixture
def ivr(base_settings: Settings, tmp_path: Path):  # type: ignore[no-untyped-def]
    need_peers("sipp")
    with running_ivr(sip_settings(base_settings, tmp_path)) as ivr:
        yield ivr


def test_a_full_call_over_tcp_with_a_large_invite(ivr: Ivr, tmp_path: Path) -> None:
    """SIPp -t t1 (one TCP connection): a 5 KB INVITE, key 2, the statement, '#', the
    IVR's BYE on the same connection, and a draft."""
    padding = tuple(f"X-Carrier-Info-{i}: {'x' * 1200}" for i in range(4))
    pcap = caller_pcap(ivr.app.settings, tmp_path, "12345", digit="2", n=4)
    result = run_sipp(
        "uac_call",
        ivr.hostport,
        service="12345",
        keys={"caller": "13800138000"},
        headers=padding,
        media={"media.pcap": pcap},
        extra_args=["-t", "t1"],
        timeout=120,
        recv_timeout=110,
    )
    assert result.ok, result.describe()
    (invite,) = result.sent("INVITE")
    assert len(invite.raw) > 5000 and (invite.header("Via") or "").startswith("SIP/2.0/TCP")
    assert result.received("BYE"), "the IVR did not hang up over the TCP connection"
    (ok,) = [m for m in result.received(status=200) if m.method == "INVITE"][:1]
    assert (ok.header("Contact") or "").endswith(";transport=tcp>")
    assert all(t.transport.lower() == "tcp" for t in result.messages), result.describe()
    ivr.wait_idle()
    rows = ivr.rows()
    (call_row,) = rows["calls"]
    assert call_row.status == "completed" and call_row.from_number == "13800138000"
    (ticket,) = rows["tickets"]
    assert (ticket.category, ticket.category_source) == ("投诉", "menu")
    assert ticket.transcription == "done"
    (rec,) = rows["recordings"]
    assert rec.duration_s and rec.duration_s > 2.0


def _tcp(ivr: Ivr) -> socket.socket:
    return socket.create_connection(ivr.hostport, timeout=30)


def _options(local: tuple[str, int], ivr: Ivr, branch: str) -> bytes:
    return (
        f"OPTIONS sip:12345@127.0.0.1:{ivr.phone.port} SIP/2.0\r\n"
        f"Via: SIP/2.0/TCP {local[0]}:{local[1]};branch=z9hG4bK{branch}\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p1\r\n"
        f"To: <sip:12345@127.0.0.1>\r\nCall-ID: {branch}@127.0.0.1\r\nCSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def test_keep_alive_pings_and_pipelined_requests_on_one_connection(ivr: Ivr) -> None:
    """CRLF CRLF gets the CRLF pong (RFC 5626); two requests in one segment and one
    request split over two segments are each answered on the same connection."""
    with _tcp(ivr) as sock:
        local = sock.getsockname()
        sock.sendall(b"\r\n\r\n")
        assert sock.recv(16) == b"\r\n"
        reader = StreamReader(sock)
        sock.sendall(_options(local, ivr, "a1") + _options(local, ivr, "a2"))
        first, second = reader.read(), reader.read()
        assert (first.status, second.status) == (200, 200)
        assert [first.header("Call-ID"), second.header("Call-ID")] == [
            "a1@127.0.0.1",
            "a2@127.0.0.1",
        ]
        half = _options(local, ivr, "a3")
        sock.sendall(half[:40])
        sock.sendall(half[40:])
        assert reader.read().header("Call-ID") == "a3@127.0.0.1"
        assert ivr.phone.endpoint.tcp is not None and ivr.phone.endpoint.tcp.connections == 1


def test_garbage_on_a_connection_closes_it_and_the_phone_goes_on(ivr: Ivr) -> None:
    with _tcp(ivr) as bad:
        bad.sendall(b"INVITE sip:x SIP/2.0\r\nContent-Length: lots\r\n\r\n")
        assert bad.recv(16) == b""  # closed by the IVR
    with _tcp(ivr) as good:
        good.sendall(_options(good.getsockname(), ivr, "b1"))
        assert StreamReader(good).read().status == 200


def test_one_address_cannot_take_every_connection(ivr: Ivr) -> None:
    socks = [_tcp(ivr) for _ in range(MAX_PER_ADDRESS)]
    try:
        tcp = ivr.phone.endpoint.tcp
        assert tcp is not None
        assert wait_until(lambda: tcp.connections == MAX_PER_ADDRESS, 10)
        with _tcp(ivr) as extra:
            assert extra.recv(16) == b""  # refused: closed at once
        first = socks[0]
        first.sendall(_options(first.getsockname(), ivr, "c1"))
        assert StreamReader(first).read().status == 200
    finally:
        for sock in socks:
            sock.close()


@pytest.mark.parametrize(
    ("stream", "messages", "rest"),
    [
        (b"\r\n\r\nOPTIONS", [], b"OPTIONS"),
        (b"A\r\nl: 3\r\n\r\nabcB\r\n\r\n", [b"A\r\nl: 3\r\n\r\nabc", b"B\r\n\r\n"], b""),
        (b"A\r\nContent-Length: 5\r\n\r\nabc", [], b"A\r\nContent-Length: 5\r\n\r\nabc"),
        (b"\r\n", [], b"\r\n"),
        (b"\r\nA\r\n\r\n", [b"A\r\n\r\n"], b""),
    ],
)
def test_stream_framing(stream: bytes, messages: list[bytes], rest: bytes) -> None:
    buffer = bytearray(stream)
    got, _ = split_messages(buffer)
    assert (got, bytes(buffer)) == (messages, rest)


def test_stream_without_end_of_headers_is_refused() -> None:
    with pytest.raises(FramingError):
        split_messages(bytearray(b"A" * 70000))
