"""The SIP parser accepts what pyVoIP 1.6.8 dropped (defect 6) and refuses real garbage."""

from __future__ import annotations

import re
import time

import pytest

from ivr.transports.sip.auth import authorization, challenge_params
from ivr.transports.sip.message import (
    SipParseError,
    addr_uri,
    param,
    parse,
    uri_hostport,
    uri_user,
    via_sent_by,
)
from ivr.transports.sip.sdp import PCMA, PCMU, SdpError, answer, offer
from ivr.transports.sip.sdp import parse as parse_sdp

INVITE = (
    "INVITE sip:12345@127.0.0.1:5070 SIP/2.0\r\n"
    "v: SIP/2.0/UDP 10.0.0.9:5061;branch=z9hG4bK77;rport\r\n"
    'f: "Caller" <sip:13800138000@10.0.0.9>;tag=abc\r\n'
    "To:<sip:12345@127.0.0.1>\r\n"
    "i: call-1\r\n"
    "CSeq: 7 INVITE\r\n"
    "Supported:\r\n"
    "Subject: noise: loud\r\n"
    "Diversion: <sip:12345@city>;reason=unconditional\r\n"
    "Diversion: <sip:12315@origin>;reason=unconditional\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: 4\r\n\r\nv=0\r\nEXTRA"
)


def test_tolerant_parse() -> None:
    m = parse(INVITE.encode())
    assert (m.method, m.uri, m.call_id, m.cseq) == (
        "INVITE",
        "sip:12345@127.0.0.1:5070",
        "call-1",
        (7, "INVITE"),
    )
    assert m.get("Supported") == ""  # empty header kept, message not dropped
    assert m.get("Subject") == "noise: loud"  # ": " inside a value is not truncated
    assert m.get_all("Diversion")[-1] == "<sip:12315@origin>;reason=unconditional"
    assert uri_user(addr_uri(m.get("To") or "")) == "12345"  # To:<...> without a space
    assert param(m.get("From") or "", "tag") == "abc"
    assert m.body == b"v=0\r"  # Content-Length is honoured
    assert m.branch == "z9hG4bK77"


def test_round_trip() -> None:
    m = parse(INVITE.encode())
    again = parse(m.encode())
    assert again.headers == m.headers and again.body == m.body


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "empty message"),
        (b"\x00\xff\xfe garbage", "not UTF-8"),
        (b"HELLO WORLD\r\n\r\n", "not a SIP start line"),
        (INVITE.replace("i: call-1\r\n", "").encode(), "missing header(s) Call-ID"),
        (INVITE.replace("CSeq: 7 INVITE", "CSeq: seven").encode(), "bad CSeq"),
        (INVITE.replace("Content-Length: 4", "Content-Length: 400").encode(), "shorter"),
        (INVITE.replace("Subject: noise: loud", "no colon here").encode(), "malformed header"),
        (b"INVITE sip:x SIP/2.0\r\n" + b"X: " + b"a" * 70000, "too large"),
    ],
)
def test_malformed_is_refused_with_reason(data: bytes, why: str) -> None:
    with pytest.raises(SipParseError, match=re.escape(why)):
        parse(data)


def test_via_and_uris() -> None:
    assert via_sent_by("SIP/2.0/UDP 10.0.0.9:5061;branch=z;rport=6000;received=1.2.3.4") == (
        "1.2.3.4",
        6000,
    )
    assert via_sent_by("SIP/2.0/UDP host.example;branch=z") == ("host.example", 5060)
    assert uri_hostport("sip:12345@127.0.0.1:5070;transport=udp") == ("127.0.0.1", 5070)
    assert uri_user("tel:+8613800138000") == "+8613800138000"


def test_sdp_prefers_pcmu_and_keeps_telephone_event() -> None:
    remote = parse_sdp(
        b"v=0\r\nc=IN IP4 10.0.0.9\r\nm=audio 40000 RTP/AVP 8 0 101\r\n"
        b"a=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    )
    assert (remote.host, remote.port, remote.codecs, remote.event_pt) == (
        "10.0.0.9",
        40000,
        (PCMA, PCMU),
        101,
    )
    body, codec = answer(remote, "127.0.0.1", 30000)
    assert codec == PCMU  # pyVoIP's PCMA encoder sent mu-law (defect 3): PCMU first
    assert b"m=audio 30000 RTP/AVP 0 101" in body
    pcma_only = parse_sdp(b"c=IN IP4 1.1.1.1\r\nm=audio 5 RTP/AVP 8\r\n")
    assert answer(pcma_only, "127.0.0.1", 1)[1] == PCMA
    assert b"c=IN IP4 127.0.0.1" in offer("127.0.0.1", 4000)
    with pytest.raises(SdpError):
        parse_sdp(b"v=0\r\n")
    with pytest.raises(SdpError, match="no common codec"):
        answer(parse_sdp(b"c=IN IP4 1.1.1.1\r\nm=audio 5 RTP/AVP 18\r\n"), "h", 1)


def test_digest_matches_rfc2617_example() -> None:
    # RFC 2617 section 3.5, with the method and URI of that example.
    challenge = (
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
        'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    assert challenge_params(challenge)["realm"] == "testrealm@host.com"
    header = authorization(challenge, "GET", "/dir/index.html", "Mufasa", "Circle Of Life")
    assert header.startswith('Digest username="Mufasa"')
    assert "qop=auth" in header and "nc=00000001" in header
    no_qop = authorization('Digest realm="r", nonce="n"', "REGISTER", "sip:x", "u", "p")
    # md5(md5("u:r:p"):n:md5("REGISTER:sip:x"))
    import hashlib

    def md5(s: str) -> str:
        return hashlib.md5(s.encode()).hexdigest()

    expected = md5(f"{md5('u:r:p')}:n:{md5('REGISTER:sip:x')}")
    assert f'response="{expected}"' in no_qop


def test_dialer_acks_a_retransmitted_200_again(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A callee whose first ACK was lost resends its 200: the dialer ACKs it again."""
    import socket
    import threading

    from ivr.app import Hotline
    from ivr.config import load_config
    from ivr.transports.sip.dialer import SipDialer
    from ivr.transports.sip.message import parse as parse_sip
    from ivr.transports.sip.phone import SipPhone

    base = load_config(env={})
    settings = base.model_copy(
        update={
            "sip": base.sip.model_copy(
                update={"port": 0, "rtp_port_min": 42000, "rtp_port_max": 42100}
            ),
            "database_url": f"sqlite:///{tmp_path / 'x.sqlite3'}",
        }
    )
    phone = SipPhone(Hotline.open(settings, check_schema=False))
    phone.start()
    callee = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    callee.bind(("127.0.0.1", 0))
    callee.settimeout(5)
    port = callee.getsockname()[1]
    # An open media port: RTP sent to a closed one fails, and a failing stream ends the
    # call (issue 14) before the retransmitted 200 arrives.
    media = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    media.bind(("127.0.0.1", 0))
    acks: list[str] = []

    def answer_twice() -> None:
        data, addr = callee.recvfrom(65535)
        invite = parse_sip(data)
        rtp = media.getsockname()[1]
        sdp = f"v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio {rtp} RTP/AVP 0\r\nt=0 0\r\n"
        ok = (
            "SIP/2.0 200 OK\r\n"
            + "".join(f"Via: {v}\r\n" for v in invite.get_all("Via"))
            + f"From: {invite.get('From')}\r\nTo: {invite.get('To')};tag=callee\r\n"
            f"Call-ID: {invite.call_id}\r\nCSeq: 1 INVITE\r\n"
            f"Contact: <sip:c@127.0.0.1:{port}>\r\nContent-Type: application/sdp\r\n"
            f"Content-Length: {len(sdp)}\r\n\r\n{sdp}"
        ).encode()
        for _ in range(2):
            callee.sendto(ok, addr)
            while True:
                msg = parse_sip(callee.recvfrom(65535)[0])
                if msg.method == "ACK":
                    acks.append(msg.call_id)
                    break
        while True:  # the BYE ends it
            msg = parse_sip(callee.recvfrom(65535)[0])
            if msg.method == "BYE":
                callee.sendto(
                    (
                        "SIP/2.0 200 OK\r\n"
                        + "".join(f"Via: {v}\r\n" for v in msg.get_all("Via"))
                        + f"From: {msg.get('From')}\r\nTo: {msg.get('To')}\r\n"
                        f"Call-ID: {msg.call_id}\r\nCSeq: {msg.get('CSeq')}\r\n"
                        "Content-Length: 0\r\n\r\n"
                    ).encode(),
                    ("127.0.0.1", phone.port),
                )
                return

    t = threading.Thread(target=answer_twice, daemon=True)
    t.start()
    try:
        result = SipDialer(phone).place(
            f"sip:13800138000@127.0.0.1:{port}", lambda session, r: time.sleep(1.5)
        )
    finally:
        t.join(10)
        phone.stop()
        callee.close()
        media.close()
    assert result.outcome == "answered"
    assert len(acks) == 2 and acks[0] == acks[1]


def test_via_is_stamped_as_rfc3581_says() -> None:
    from ivr.transports.sip.message import stamp_via

    src = ("203.0.113.7", 40123)
    # Behind NAT, asking for rport: both filled in; the response goes to the source.
    nat = stamp_via("SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKa;rport", src)
    assert nat == "SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKa;rport=40123;received=203.0.113.7"
    assert via_sent_by(nat) == src
    # No rport: received only (RFC 3261 18.2.1), and the port stays the sent-by port.
    plain = stamp_via("SIP/2.0/UDP 10.0.0.9:5070;branch=z9hG4bKb", src)
    assert via_sent_by(plain) == ("203.0.113.7", 5070)
    # Sent-by is the source already: nothing to add. Only the top Via value is touched.
    same = "SIP/2.0/UDP 203.0.113.7:40123;branch=z9hG4bKc, SIP/2.0/UDP 10.1.1.1;rport"
    assert stamp_via(same, src) == same
