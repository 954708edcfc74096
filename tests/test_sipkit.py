"""Self-tests of harness/sipkit: real SIP peers talking to each other on loopback, no IVR."""

from __future__ import annotations

import itertools
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import data
from harness.sipkit import (
    Baresip,
    Kamailio,
    UdpCapture,
    caller_media_pcap,
    can_play_pcap,
    dtmf_pcap,
    live_processes,
    options_ping,
    probe_all,
    read_rtp_pcap,
    run_sipp,
    start_sipp,
    svmap,
    unknown_peer_ip,
    wav_to_rtp_pcap,
)
from harness.sipkit.pcap import PCMU, TELEPHONE_EVENT, shipped_dtmf_pcap, wav_to_ulaw


def need(*binaries: str) -> None:
    for b in binaries:
        if shutil.which(b) is None:
            pytest.skip(f"{b} not installed (Debian packages: see scripts/system-deps.sh)")


def need_pcap_play() -> None:
    need("sipp")
    if not can_play_pcap():
        pytest.skip("SIPp plays pcap audio through a raw socket: needs root or CAP_NET_RAW")


def statement(n: int = 1) -> Path:
    return data.statement(n)


@pytest.fixture(autouse=True)
def no_leaked_processes() -> Iterator[None]:
    before = set(live_processes())  # e.g. the module's Kamailio
    yield
    leaked = [p for p in live_processes() if p not in before]
    for p in leaked:
        p.stop()
    assert not leaked, f"processes left running: {[p.argv[0] for p in leaked]}"


@pytest.fixture(scope="module")
def kamailio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kamailio]:
    need("kamailio")
    with Kamailio(workdir=tmp_path_factory.mktemp("kamailio"), add_diversion=True) as kam:
        yield kam


# -- pcap ------------------------------------------------------------------------------------


def test_statement_pcap_is_pcmu_20ms(tmp_path: Path) -> None:
    wav = statement(1)
    samples = len(wav_to_ulaw(wav))
    info = wav_to_rtp_pcap(wav, tmp_path / "h01.pcap", trailing_silence_ms=400)
    packets = read_rtp_pcap(info.path)
    expected = -(-samples // 160) + 400 // 20
    assert info.packets == len(packets) == expected
    assert {p.payload_type for p in packets} == {PCMU}
    assert all(len(p.payload) == 160 for p in packets)
    assert len({p.ssrc for p in packets}) == 1
    for a, b in itertools.pairwise(packets):
        assert (b.seq - a.seq) & 0xFFFF == 1
        assert b.timestamp - a.timestamp == 160
        assert b.time - a.time == pytest.approx(0.020, abs=1e-5)
    assert packets[0].marker and not any(p.marker for p in packets[1:])
    assert packets[-1].payload == b"\xff" * 160  # trailing mu-law silence
    assert info.duration == pytest.approx(expected * 0.020)


def test_dtmf_pcap_matches_sipp_shipped_format(tmp_path: Path) -> None:
    ours = read_rtp_pcap(dtmf_pcap("2", tmp_path / "d.pcap", gap_ms=0).path)
    assert [p.payload_type for p in ours] == [TELEPHONE_EVENT] * len(ours)
    assert ours[0].marker and ours[0].dtmf_event == ("2", False, 160)
    assert [p.dtmf_event[1] for p in ours[-3:] if p.dtmf_event] == [True] * 3
    assert len({p.timestamp for p in ours}) == 1
    try:
        shipped = read_rtp_pcap(shipped_dtmf_pcap("2"))
    except FileNotFoundError:
        pytest.skip("sip-tester not installed")
    assert {p.payload_type for p in shipped} == {TELEPHONE_EVENT}
    assert shipped[-1].dtmf_event is not None and shipped[-1].dtmf_event[:2] == ("2", True)


# -- SIPp against SIPp -----------------------------------------------------------------------


def test_uac_calls_uas_that_presses_2(tmp_path: Path) -> None:
    """Caller: '1', statement, hangs up mid-statement; callee: answers and presses '2'."""
    need_pcap_play()
    wav = statement(1)
    caller = caller_media_pcap(tmp_path / "caller.pcap", digits_first="1", statement=wav)
    callee = dtmf_pcap("2", tmp_path / "callee.pcap", lead_silence_ms=300)
    with start_sipp(
        "uas_answer_dtmf",
        media={"media.pcap": callee.path},
        workdir=tmp_path,
        timeout=20,
        recv_timeout=10,
    ) as uas:
        ports = [uas.media_port]
        capture = None
        if shutil.which("dumpcap"):
            capture = UdpCapture(tmp_path / "rtp.pcap", ports).start()
        try:
            result = run_sipp(
                "uac_hangup_mid",
                uas.address,
                service="12345",
                media={"media.pcap": caller.path},
                variables={"hangup_after_ms": 2500},
                headers=["Diversion: <sip:12315@gov.example>;reason=unconditional"],
                workdir=tmp_path,
                timeout=15,
            )
        finally:
            if capture is not None:
                capture.stop()
        callee_result = uas.wait(10)
    assert result.ok, result.describe()
    assert callee_result.ok, callee_result.describe()
    assert result.received_statuses("INVITE") == [100, 180, 200]
    assert f"npkts {caller.packets}" in result.stderr  # SIPp read our pcap
    invite = callee_result.received("INVITE")[0]
    assert invite.header("To") is not None and "12345" in invite.header("To")
    assert invite.header_values("Diversion") == ["<sip:12315@gov.example>;reason=unconditional"]
    if capture is not None:  # the caller's RTP reached the callee's media port
        got = capture.rtp(dst_port=uas.media_port)
        events = {p.dtmf_event[0] for p in got if p.dtmf_event}
        assert events == {"1"}
        voice = [p for p in got if p.payload_type == PCMU]
        assert 2.0 / 0.020 * 0.8 < len(voice) < caller.packets


def test_uac_gets_486_from_busy_uas(tmp_path: Path) -> None:
    need("sipp")
    with start_sipp("uas_busy", workdir=tmp_path, timeout=10) as uas:
        result = run_sipp("uac_call", uas.address, workdir=tmp_path, timeout=8)
        callee = uas.wait(5)
    assert not result.ok and result.failed == 1
    assert 486 in result.received_statuses("INVITE")
    assert result.sent("ACK"), "the 486 must be ACKed"
    assert callee.ok, callee.describe()


def test_uac_cancel_against_ringing_uas(tmp_path: Path) -> None:
    need("sipp")
    with start_sipp("uas_noanswer", workdir=tmp_path, timeout=10, recv_timeout=5) as uas:
        result = run_sipp(
            "uac_cancel",
            uas.address,
            variables={"cancel_after_ms": 300},
            workdir=tmp_path,
            timeout=8,
        )
        callee = uas.wait(5)
    assert result.ok, result.describe()
    assert callee.ok, callee.describe()
    assert 487 in result.received_statuses("INVITE")
    assert 200 in result.received_statuses("CANCEL")
    assert 200 not in result.received_statuses("INVITE")  # never answered


def test_registrar_challenges_and_checks_password(tmp_path: Path) -> None:
    need("sipp")
    with start_sipp("uas_registrar", workdir=tmp_path, timeout=10, calls=2) as registrar:
        good = run_sipp("uac_register", registrar.address, workdir=tmp_path, timeout=5)
        bad = run_sipp(
            "uac_register",
            registrar.address,
            keys={"password": "wrong"},
            workdir=tmp_path,
            timeout=5,
        )
        reg = registrar.wait(5)
    assert good.ok and good.received_statuses() == [401, 200], good.describe()
    assert not bad.ok and bad.received_statuses() == [401, 403], bad.describe()
    assert (reg.successful, reg.failed) == (1, 1), reg.describe()


# -- through Kamailio ------------------------------------------------------------------------


def test_kamailio_answers_options(kamailio: Kamailio) -> None:
    assert options_ping(kamailio.address) == 200


def test_uac_options_to_baresip(tmp_path: Path) -> None:
    need("sipp", "baresip")
    with Baresip(workdir=tmp_path) as phone:  # no registrar: a UA on its own port
        result = run_sipp(
            "uac_options", (phone.host, phone.sip_port), service="caller", workdir=tmp_path
        )
    assert result.ok, result.describe()
    ok = result.received("OPTIONS", status=200)[0]
    assert "baresip" in (ok.header("Server") or "")
    assert ok.header_values("Supported") == [""]  # the empty header pyVoIP chokes on


def test_call_through_kamailio_to_registered_uas(kamailio: Kamailio, tmp_path: Path) -> None:
    """A service number (12315) reaches the UAS registered as the IVR user 12345."""
    need("sipp")
    kamailio.unregister("12345")
    with start_sipp(
        "uas_answer_hangup",
        variables={"hangup_after_ms": 500},
        workdir=tmp_path,
        timeout=15,
        recv_timeout=8,
    ) as uas:
        reg = run_sipp(
            "uac_register",
            kamailio.address,
            keys={"user": "12345", "contact": f"<sip:12345@{uas.uri_hostport}>"},
            workdir=tmp_path,
            timeout=5,
        )
        assert reg.ok, reg.describe()
        assert kamailio.contacts("12345") == [f"sip:12345@{uas.uri_hostport}"]
        result = run_sipp(
            "uac_call", kamailio.address, service="12315", workdir=tmp_path, timeout=10
        )
        callee = uas.wait(8)
    assert result.ok, result.describe()
    assert callee.ok, callee.describe()
    invite = callee.received("INVITE")[0]
    proxy = f"sip:{kamailio.hostport};lr"
    assert (invite.header("Record-Route") or "").startswith(f"<{proxy}")
    assert "12315" in (invite.header("To") or "")  # the dialed number survives
    assert invite.header_values("Diversion") == [
        f"<sip:12315@{kamailio.hostport}>;reason=unconditional"
    ]
    ok = result.received("INVITE", status=200)[0]
    assert ok.header("Record-Route") is not None
    bye = result.received("BYE")[0]  # the callee's BYE came back through the proxy
    assert len(bye.header_values("Via")) == 2


def test_kamailio_forwards_unregistered_numbers_to_a_trunk(tmp_path: Path) -> None:
    """forward_to: no registration at all (the way to reach a pyVoIP that cannot register)."""
    need("sipp", "kamailio")
    with start_sipp(
        "uas_answer_hangup",
        variables={"hangup_after_ms": 300},
        workdir=tmp_path,
        timeout=10,
        recv_timeout=5,
    ) as uas:
        trunk = f"sip:{uas.uri_hostport}"
        with Kamailio(workdir=tmp_path, auth_password=None, forward_to=trunk) as kam:
            result = run_sipp("uac_call", kam.address, service="12366", workdir=tmp_path)
            callee = uas.wait(5)
    assert result.ok, result.describe()
    assert callee.ok, callee.describe()
    invite = callee.received("INVITE")[0]
    assert invite.request_uri == f"sip:12366@{kam.hostport}"  # dialed number kept
    assert invite.header("Diversion") is None


def test_baresip_calls_sipp_through_kamailio(kamailio: Kamailio, tmp_path: Path) -> None:
    need("sipp", "baresip")
    wav = statement(2)
    kamailio.unregister("12345")
    with start_sipp("uas_answer_silent", workdir=tmp_path, timeout=20, recv_timeout=15) as uas:
        reg = run_sipp(
            "uac_register",
            kamailio.address,
            keys={"user": "12345", "contact": f"<sip:12345@{uas.uri_hostport}>"},
            workdir=tmp_path,
            timeout=5,
        )
        assert reg.ok, reg.describe()
        capture = None
        if shutil.which("dumpcap"):
            capture = UdpCapture(tmp_path / "rtp.pcap", [uas.media_port]).start()
        try:
            with Baresip(
                workdir=tmp_path, registrar=kamailio.address, audio_wav=wav, trailing_silence_s=5
            ) as phone:
                phone.dial(kamailio.uri("12345"))
                phone.wait_event("CALL_ESTABLISHED", timeout=10)
                phone.send_dtmf("1#", gap=0.2)
                time.sleep(0.5)
                phone.hangup()
                closed = phone.wait_event("CALL_CLOSED", timeout=5)
                recordings = phone.recordings()
        finally:
            if capture is not None:
                capture.stop()
        callee = uas.wait(5)
    assert callee.ok, callee.describe()
    assert closed["direction"] == "outgoing"
    invite = callee.received("INVITE")[0]
    assert "baresip" in (invite.header("User-Agent") or "")
    assert invite.header_values("Supported") == []  # Kamailio stripped the empty one
    assert "removed empty Supported header" in kamailio.log()
    assert any(r.name.endswith("-enc.wav") and r.stat().st_size > 1000 for r in recordings)
    if capture is not None:  # sndcode sends RFC 4733 events (audio keeps flowing too)
        got = capture.rtp(dst_port=uas.media_port)
        digits = [p.dtmf_event[0] for p in got if p.dtmf_event and p.marker]
        assert digits == ["1", "#"]
        assert any(p.payload_type == PCMU for p in got)


# -- hostile traffic -------------------------------------------------------------------------


def test_svmap_against_sipp_uas_is_bounded(tmp_path: Path) -> None:
    need("sipp", "svmap")
    with start_sipp("uas_answer_silent", workdir=tmp_path, timeout=20, calls=50) as uas:
        scan = svmap(*uas.address, workdir=tmp_path / "svmap", timeout=15)
    assert not scan.timed_out and scan.duration < 15
    assert scan.returncode == 0, scan.stderr


def test_malformed_datagrams_from_unknown_peer(kamailio: Kamailio) -> None:
    # 99999 is neither registered nor a service number: well-formed INVITEs get 404.
    peer = unknown_peer_ip()
    results = probe_all(kamailio.address, user="99999", local_ip=peer, timeout=0.4)
    assert results["garbage"].statuses == []
    assert results["no_callid_invite"].statuses == []
    for kind in ("compact_invite", "colon_value_invite", "empty_header_invite"):
        assert results[kind].statuses == [404], kind  # parsed, nobody registered as 12345
    assert results["oversized_invite"].sent == 65507
    assert f"from {peer}:" in kamailio.log()
