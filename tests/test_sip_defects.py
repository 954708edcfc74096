"""One regression test per pyVoIP 1.6.8 defect (shared/notes/telephony.md), plus bad input.

Every test talks to the IVR's SIP phone (ivr/transports/sip) through a real peer: SIPp as
caller, callee or registrar, Kamailio as registrar and Record-Routing proxy,
sipvicious scanners and raw UDP datagrams. Assertions are about what a caller,
a callee or an operator would notice (answers, call rows, recordings, audio),
never about durations: waits are bounded, nothing is timed.
"""

from __future__ import annotations

import array
import os
import re
import threading
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from harness.sipfix import (
    Ivr,
    caller_pcap,
    clip_seconds,
    flow_prompt,
    in_threads,
    need_peers,
    running_ivr,
    sip_settings,
    statement,
)
from harness.sipkit import (
    Kamailio,
    RtpStream,
    SippResult,
    UdpCapture,
    free_port_block,
    free_udp_port,
    live_processes,
    options_ping,
    probe_malformed,
    run_sipp,
    scenario_path,
    send_raw,
    start_sipp,
    svmap,
    svwar,
    unknown_peer_ip,
    wav_to_ulaw,
)
from harness.sipkit.sipmsg import build_request, pcmu_sdp
from ivr.asr.audio import alaw2lin, ulaw2lin
from ivr.config import ConfigError, Settings, SipConfig, load_config
from ivr.flow.configured import load_flows
from ivr.prompts import PromptLibrary, concat_pcm
from ivr.transports.sip.dialer import DialResult, SipDialer
from ivr.transports.sip.endpoint import SipEndpoint

ROOT = Path(__file__).resolve().parents[1]
CALLER = "13800138000"
PASSWORD_ENV = "IVR_TEST_SIP_DEFECTS_PASSWORD"
SURVEY_VARS = {"line_name": "12345政务服务便民热线", "ticket_no_spoken": "一二三"}
PCMA = 8


@pytest.fixture(autouse=True)
def no_leaked_processes() -> Iterator[None]:
    before = set(live_processes())  # e.g. the module's Kamailio
    yield
    leaked = [p for p in live_processes() if p not in before]
    for p in leaked:
        p.stop()
    assert not leaked, f"peer processes left running: {[p.argv[0] for p in leaked]}"


@pytest.fixture
def ivr(base_settings: Settings, tmp_path: Path) -> Iterator[Ivr]:
    """The IVR in trunk mode (INVITEs accepted from 127.0.0.1 only), without ASR."""
    need_peers("sipp")
    with running_ivr(sip_settings(base_settings, tmp_path), asr=False) as ivr:
        yield ivr


@pytest.fixture
def quick_ivr(base_settings: Settings, tmp_path: Path) -> Iterator[Ivr]:
    """`ivr` with its prompts cut short, for calls about signalling and the caller's audio
    (the greeting heard byte for byte is test_defect3's)."""
    need_peers("sipp")
    settings = sip_settings(base_settings, tmp_path, short_prompts=True)
    with running_ivr(settings, asr=False) as ivr:
        yield ivr


# -- helpers -----------------------------------------------------------------------------------


def full_call(
    ivr: Ivr,
    tmp: Path,
    number: str = "12345",
    *,
    remote: tuple[str, int] | None = None,
    digit: str = "2",
    n: int = 1,
) -> SippResult:
    """A SIPp caller: key, statement, '#', then waits for the IVR's BYE (readback, goodbye)."""
    pcap = caller_pcap(ivr.app.settings, tmp, number, digit=digit, n=n)
    return run_sipp(
        "uac_call",
        remote or ivr.hostport,
        service=number,
        keys={"caller": CALLER},
        media={"media.pcap": pcap},
        timeout=120,
        recv_timeout=110,
        workdir=tmp,
    )


def bounded(job: Callable[[], Any], timeout: float) -> Any:
    """Run `job` in a thread; fail if it is still running after `timeout` s (it blocked)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = job()
        except BaseException as exc:
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True, name="bounded-job")
    t.start()
    t.join(timeout)
    assert not t.is_alive(), f"still blocked after {timeout} s"
    if "error" in box:
        raise box["error"]
    return box["result"]


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def variant(tmp: Path, scenario: str, replacements: dict[str, str]) -> Path:
    """A copy of a sipkit scenario with text replaced; same file name, so same keys/defaults."""
    text = scenario_path(scenario).read_text()
    for old, new in replacements.items():
        assert old in text, f"{scenario}: {old!r} not found"
        text = text.replace(old, new)
    out = tmp / f"variant-{len(list(tmp.glob('variant-*')))}"
    out.mkdir(parents=True)
    path = out / f"{scenario}.xml"
    path.write_text(text)
    return path


def min_sample(path: str | Path) -> int:
    with wave.open(str(path)) as w:
        samples = array.array("h", w.readframes(w.getnframes()))
    return min(samples)


def longest_zero_run(path: str | Path) -> int:
    with wave.open(str(path)) as w:
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    zero = np.concatenate(([0], (samples == 0).astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(zero))
    return int((edges[1::2] - edges[::2]).max()) if len(edges) else 0


def socket_fds() -> int:
    """Sockets this process holds open (SIP, RTP, probes)."""
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                n += 1
        except OSError:
            continue
    return n


def sdp_connection(body: str) -> list[str]:
    return re.findall(r"(?m)^c=(.*?)\s*$", body)


# -- defect 1: starting without a registrar; registration --------------------------------------


def test_defect1_trunk_mode_starts_without_registrar_and_answers_options(
    ivr: Ivr, tmp_path: Path
) -> None:
    """pyVoIP blocked ~76 s in start() looking for a registrar; trunk mode just answers."""
    result = run_sipp("uac_options", ivr.hostport, service="12345", timeout=10, workdir=tmp_path)
    assert result.ok, result.describe()
    (ok,) = result.received("OPTIONS", status=200)
    assert "INVITE" in (ok.header("Allow") or "")
    assert ivr.phone.registrations == 0 and not ivr.phone.registered.is_set()
    assert result.sent("OPTIONS")[0].call_id == ok.call_id


def register_settings(base: Settings, tmp: Path, registrar: str, **kw: Any) -> Settings:
    return sip_settings(
        base,
        tmp,
        mode="register",
        registrar=registrar,
        username="12345",
        password_env=PASSWORD_ENV,
        **kw,
    )


def test_defect1_registers_at_sipp_registrar_with_digest(
    base_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need_peers("sipp")
    monkeypatch.setenv(PASSWORD_ENV, "s3cret-12345")
    # Two registrations: ours, and the un-REGISTER (Expires: 0) when the phone stops.
    with start_sipp(
        "uas_registrar",
        keys={"auth_user": "12345", "auth_password": "s3cret-12345"},
        calls=2,
        timeout=40,
        workdir=tmp_path,
        # The phone keeps its Call-ID across REGISTERs: let SIPp take it as a new call.
        extra_args=["-deadcall_wait", "0"],
    ) as registrar:
        settings = register_settings(base_settings, tmp_path, registrar.uri_hostport)
        with running_ivr(settings, asr=False) as ivr:
            assert ivr.phone.registered.wait(15), "no 200 for the REGISTER"
            assert ivr.phone.registrations == 1
            options = run_sipp(
                "uac_options", ivr.hostport, service="12345", timeout=10, workdir=tmp_path
            )
            assert options.ok, options.describe()
            time.sleep(1)  # SIPp ends the registration (a 300 ms timewait) before the next
        reg = registrar.wait(15)
    assert (reg.successful, reg.failed) == (2, 0), reg.describe()
    registers = reg.received("REGISTER")
    assert len(registers) == 4  # challenge + answer, twice
    assert registers[1].header("Authorization") is not None
    contact = registers[1].header("Contact") or ""
    assert f"@127.0.0.1:{ivr.phone.port}" in contact
    assert registers[-1].header("Expires") == "0"


def test_defect1_wrong_password_keeps_phone_running_and_retrying(
    base_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pyVoIP gave up (and took the phone down) on a refused REGISTER; ours retries."""
    need_peers("sipp")
    monkeypatch.setenv(PASSWORD_ENV, "wrong-password")
    with start_sipp(
        "uas_registrar",
        keys={"auth_user": "12345", "auth_password": "s3cret-12345"},
        calls=2,
        timeout=40,
        workdir=tmp_path,
        # The phone keeps its Call-ID across REGISTERs: let SIPp take it as a new call.
        extra_args=["-deadcall_wait", "0"],
    ) as registrar:
        settings = register_settings(base_settings, tmp_path, registrar.uri_hostport)
        with running_ivr(settings, asr=False) as ivr:
            # Two refused attempts (401, 403 each), a back-off apart: SIPp then exits.
            reg = registrar.wait(30)
            assert not ivr.phone.registered.is_set()
            options = run_sipp(
                "uac_options", ivr.hostport, service="12345", timeout=10, workdir=tmp_path
            )
            assert options.ok, options.describe()
    assert not reg.timed_out, reg.describe()
    # Two attempts, each answering the challenge: the phone retried after the 403.
    attempts = reg.received("REGISTER")
    assert len(attempts) == 4, reg.describe()
    assert [m.header("Authorization") is not None for m in attempts] == [False, True] * 2
    assert [m.status for m in reg.sent() if m.status in (401, 403)] == [401, 403, 401, 403]
    # (uas_registrar sends a stray 200 after its 403: the phone ignores it, it has its answer.)
    assert ivr.phone.registrations == 0


# -- through Kamailio: registration (defect 1) and the route set (defect 7) --------------------


@dataclass
class KamailioSetup:
    kam: Kamailio
    ivr: Ivr
    tmp: Path


@pytest.fixture(scope="module")
def via_kamailio(
    base_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KamailioSetup]:
    """Kamailio (digest auth, record-route) with the IVR registered on it as 12345."""
    need_peers("sipp", "kamailio")
    tmp = tmp_path_factory.mktemp("kamailio")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(PASSWORD_ENV, "kam-secret")
        with Kamailio(workdir=tmp / "kam", auth_password="kam-secret", ivr_user="12345") as kam:
            settings = register_settings(base_settings, tmp, kam.hostport, short_prompts=True)
            with running_ivr(settings, asr=False) as ivr:
                assert ivr.phone.registered.wait(15), kam.log()[-3000:]
                yield KamailioSetup(kam, ivr, tmp)


@dataclass
class ProxiedCall:
    result: SippResult
    rows: dict[str, list[Any]]
    log: str


@pytest.fixture(scope="module")
def kamailio_call(via_kamailio: KamailioSetup) -> ProxiedCall:
    """One full SIPp call to 12315 at Kamailio, which routes it to the IVR's registration."""
    kam, ivr = via_kamailio.kam, via_kamailio.ivr
    result = full_call(ivr, via_kamailio.tmp, "12315", remote=kam.address, digit="2", n=2)
    ivr.wait_idle()
    return ProxiedCall(result, ivr.rows(), kam.log())


def test_defect1_registered_at_kamailio_takes_calls_for_service_numbers(
    via_kamailio: KamailioSetup, kamailio_call: ProxiedCall
) -> None:
    kam, ivr = via_kamailio.kam, via_kamailio.ivr
    assert kam.contacts("12345") == [f"sip:12345@127.0.0.1:{ivr.phone.port}"]
    result = kamailio_call.result
    assert result.ok, result.describe()
    invite = result.sent("INVITE")[0]
    assert invite.request_uri == f"sip:12315@{kam.hostport}"
    (call,) = kamailio_call.rows["calls"]
    # Kamailio rewrote the Request-URI to our contact (user 12345); To kept the dialed number.
    assert call.line_number == "12315" and call.line_source == "dialed"
    assert call.status == "completed" and call.from_number == CALLER
    (ticket,) = kamailio_call.rows["tickets"]
    assert ticket.line_number == "12315" and ticket.category == "投诉"


def test_defect7_ivr_bye_follows_the_record_route_set(
    via_kamailio: KamailioSetup, kamailio_call: ProxiedCall
) -> None:
    """pyVoIP's BYE reused the INVITE's Via and ignored Route: it never reached the caller."""
    result = kamailio_call.result
    assert result.ok, result.describe()
    ok = result.received("INVITE", status=200)[0]
    assert (ok.header("Record-Route") or "").startswith(f"<sip:{via_kamailio.kam.hostport};lr")
    (bye,) = result.received("BYE")
    assert len(bye.header_values("Via")) == 2  # ours, then the proxy's: it came through Kamailio
    assert bye.header("Route") is None  # Kamailio consumed the Route it had record-routed
    assert result.sent("BYE") == []  # the IVR hung up, the caller did not
    # Kamailio's lenient path for route-less in-dialog requests (made for pyVoIP) stayed unused.
    assert "without Route" not in kamailio_call.log


def test_defect7_outbound_ack_and_bye_through_record_routing_proxy(
    via_kamailio: KamailioSetup, tmp_path: Path
) -> None:
    """The ACK for a 2xx follows the route set (pyVoIP sent it to the To-URI: it looped)."""
    kam, ivr = via_kamailio.kam, via_kamailio.ivr
    with start_sipp(
        "uas_answer_hangup",
        variables={"hangup_after_ms": 1500},
        timeout=40,
        recv_timeout=30,
        workdir=tmp_path,
    ) as callee:
        reg = run_sipp(
            "uac_register",
            kam.address,
            keys={
                "user": CALLER,
                "password": "kam-secret",
                "contact": f"<sip:{CALLER}@{callee.uri_hostport}>",
            },
            timeout=10,
            workdir=tmp_path,
        )
        assert reg.ok, reg.describe()
        dialer = SipDialer(ivr.phone, target_host=kam.hostport)
        outcome: DialResult = bounded(
            lambda: dialer.dial(CALLER, variables=SURVEY_VARS), timeout=60
        )
        got = callee.wait(30)
    kam.unregister(CALLER)
    assert outcome.outcome == "answered", outcome
    assert got.ok, got.describe()  # it got the ACK, its BYE was answered
    invite = got.received("INVITE")[0]
    assert invite.header("Record-Route") is not None
    (ack,) = got.received("ACK")
    assert len(ack.header_values("Via")) == 2  # relayed by Kamailio, not sent around it
    assert got.received("BYE") == [] and got.sent("BYE")
    # What the IVR sent to Kamailio kept the port in the Request-URI (pyVoIP dropped it).
    assert f"request INVITE sip:{CALLER}@{kam.hostport} from 127.0.0.1:{ivr.phone.port}" in (
        kam.log()
    )
    ivr.wait_idle()
    assert ivr.phone.ports.in_use == 0


# -- defect 2: CANCEL --------------------------------------------------------------------------


def test_defect2_late_cancel_is_never_answered(base_settings: Settings, tmp_path: Path) -> None:
    """pyVoIP answered a cancelled call ~1 s later; here a CANCEL late in the ringing wins."""
    need_peers("sipp")
    settings = sip_settings(base_settings, tmp_path, answer_delay_ms=1500)
    with running_ivr(settings, asr=False) as ivr:
        result = run_sipp(
            "uac_cancel",
            ivr.hostport,
            service="12345",
            variables={"cancel_after_ms": 1000},
            timeout=30,
            workdir=tmp_path,
        )
        # Longer than the answer delay: an answer that would come late comes now.
        time.sleep(1.5)
        ivr.wait_idle()
        rows = ivr.rows()
        assert ivr.phone.ports.in_use == 0
    assert result.ok, result.describe()
    assert 487 in result.received_statuses("INVITE")
    assert 200 in result.received_statuses("CANCEL")
    assert 200 not in result.received_statuses("INVITE")
    assert rows["calls"] == [] and rows["tickets"] == []


# -- defect 3: PCMA ----------------------------------------------------------------------------


def snr_db(reference: np.ndarray, got: np.ndarray) -> float:
    noise = float(np.sum((got - reference) ** 2)) or 1e-9
    return 10 * float(np.log10(float(np.sum(reference**2)) / noise))


def best_match(
    frames: dict[int, bytes], clip: np.ndarray, decode: Callable[[bytes], bytes]
) -> float:
    """SNR (dB) of `clip` against the received frames at the best frame offset."""
    n = len(clip) // 160
    ref = clip[: n * 160].reshape(n, 160)
    last = max(frames)
    decoded = {
        i: np.frombuffer(decode(p), dtype="<i2").astype(np.float64) for i, p in frames.items()
    }
    best = -np.inf
    for k in range(0, last - n + 2):
        idx = [j for j in range(n) if k + j in decoded]
        if len(idx) < n * 0.9:
            continue
        got = np.stack([decoded[k + j] for j in idx])
        best = max(best, snr_db(ref[idx], got))
    return float(best)


def test_defect3_pcma_caller_hears_alaw_prompts(ivr: Ivr, tmp_path: Path) -> None:
    """pyVoIP labelled mu-law bytes as PCMA; A-law callers heard distorted noise."""
    need_peers("dumpcap")
    settings = ivr.app.settings
    scenario = variant(
        tmp_path,
        "uac_hangup_mid",
        {
            "RTP/AVP 0 101": "RTP/AVP 8 101",
            "a=rtpmap:0 PCMU/8000": "a=rtpmap:8 PCMA/8000",
        },
    )
    line = settings.line("12345")
    assert line is not None
    greeting = clip_seconds(settings, line.greeting)
    media_port = free_port_block(4)
    capture = UdpCapture(tmp_path / "ivr-rtp.pcap", [media_port]).start()
    try:
        result = run_sipp(
            scenario,
            ivr.hostport,
            service="12345",
            media_port=media_port,
            variables={"hangup_after_ms": int(greeting * 1000) + 1500},
            timeout=30,
            workdir=tmp_path,
        )
    finally:
        capture.stop()
    assert result.ok, result.describe()
    ok = result.received("INVITE", status=200)[0]
    assert re.search(r"(?m)^m=audio \d+ RTP/AVP 8 101\s*$", ok.body), ok.body
    assert "a=rtpmap:8 PCMA/8000" in ok.body and "PCMU" not in ok.body
    packets = capture.rtp(dst_port=media_port)
    assert len(packets) > greeting / 0.020 * 0.8, "the greeting was not sent"
    assert {p.payload_type for p in packets} == {PCMA}
    # Frames by sequence number (the greeting starts on a frame boundary).
    seq0 = packets[0].seq
    frames = {(p.seq - seq0) & 0xFFFF: p.payload for p in packets}
    flow = load_flows(settings)["inbound"]
    library = PromptLibrary.from_settings(settings)
    clip_pcm = concat_pcm(library.clips_for(flow.prompts["greeting"], {"greeting": line.greeting}))
    clip = np.frombuffer(clip_pcm, dtype="<i2").astype(np.float64)[: 160 * 100]  # first 2 s
    assert np.abs(clip).max() > 3000, "the greeting clip is silent"
    as_alaw = best_match(frames, clip, alaw2lin)
    as_ulaw = best_match(frames, clip, ulaw2lin)
    # A-law quantisation keeps ~38 dB SNR; A-law bytes read as mu-law are noise (< 0 dB).
    assert as_alaw > 25, (as_alaw, as_ulaw)
    assert as_ulaw < 10, (as_alaw, as_ulaw)


# -- defect 4: gaps during DTMF events ---------------------------------------------------------


def test_defect4_dtmf_gap_in_statement_is_silence(quick_ivr: Ivr, tmp_path: Path) -> None:
    """pyVoIP filled audio gaps (the caller presses a key mid-sentence) with full-scale -1."""
    ivr = quick_ivr
    settings = ivr.app.settings
    line = settings.line("12345")
    assert line is not None
    greeting = clip_seconds(settings, line.greeting)
    ask = clip_seconds(settings, flow_prompt(settings, "inbound", "statement"))
    wait_ms = int((greeting + ask + 0.25 + 1.5) * 1000) - 1000
    speech = wav_to_ulaw(statement(4))
    half = len(speech) // 2 // 160 * 160
    stream = RtpStream().silence(1000).dtmf("2", gap_ms=0).silence(wait_ms)
    stream.audio(speech[:half])
    # A key mid-sentence: the audio stops for the event (160 ms) and 300 ms more,
    # then resumes with a timestamp 460 ms (3680 samples) on.
    stream.dtmf("5", gap_ms=0).gap(300)
    stream.audio(speech[half:]).silence(300).dtmf("#", gap_ms=0).silence(500)
    pcap = stream.write(tmp_path / "statement-with-key.pcap")
    result = run_sipp(
        "uac_call",
        ivr.hostport,
        service="12345",
        keys={"caller": CALLER},
        media={"media.pcap": pcap.path},
        timeout=120,
        recv_timeout=110,
        workdir=tmp_path,
    )
    assert result.ok, result.describe()
    ivr.wait_idle()
    rows = ivr.rows()
    (ticket,) = rows["tickets"]
    assert ticket.category == "投诉"
    (rec,) = rows["recordings"]
    assert rec.path and rec.duration_s and rec.duration_s > len(speech) / 8000
    assert min_sample(rec.path) > -30000  # no full-scale negative samples
    assert longest_zero_run(rec.path) >= 3200  # the 460 ms gap is there, as silence


# -- defect 5: outbound calls never block ------------------------------------------------------


def test_defect5_outbound_outcomes_never_block(ivr: Ivr, tmp_path: Path) -> None:
    """486 without 100, 100 then 486, ringing past the timeout, nobody there: all end."""
    dialer = SipDialer(ivr.phone)
    dead_port = free_udp_port()

    with (
        start_sipp(
            "uas_busy", variables={"trying": 0}, timeout=40, workdir=tmp_path / "b0"
        ) as busy0,
        start_sipp(
            "uas_busy", variables={"trying": 1}, timeout=40, workdir=tmp_path / "b1"
        ) as busy1,
        start_sipp("uas_noanswer", timeout=40, recv_timeout=30, workdir=tmp_path / "na") as ringer,
    ):
        jobs: list[Callable[[], DialResult]] = [
            lambda: dialer.dial(f"sip:10086@{busy0.uri_hostport}", variables=SURVEY_VARS),
            lambda: dialer.dial(f"sip:10087@{busy1.uri_hostport}", variables=SURVEY_VARS),
            lambda: dialer.dial(
                f"sip:10088@{ringer.uri_hostport}", variables=SURVEY_VARS, ring_timeout=3
            ),
            lambda: dialer.dial(f"sip:10089@127.0.0.1:{dead_port}", variables=SURVEY_VARS),
        ]
        outcomes: list[DialResult] = bounded(lambda: in_threads(jobs), timeout=60)
        b0, b1, na = busy0.wait(15), busy1.wait(15), ringer.wait(15)
    assert [o.outcome for o in outcomes] == ["busy", "busy", "no-answer", "unreachable"]
    assert [o.sip_status for o in outcomes] == [486, 486, 487, None]
    for got in (b0, b1, na):
        assert got.ok, got.describe()  # each callee got the ACK of its final response
    assert b0.sent("INVITE", status=100) == [] and b1.sent("INVITE", status=100)
    assert na.received("CANCEL") and na.received("ACK")
    # The Request-URI keeps its port (pyVoIP dropped it).
    assert b0.received("INVITE")[0].request_uri == f"sip:10086@{busy0.uri_hostport}"
    assert ivr.phone.ports.in_use == 0 and ivr.phone.active_calls == 0


# -- defect 6: the parser ----------------------------------------------------------------------

TOLERABLE = ("empty_header_invite", "compact_invite", "colon_value_invite", "no_space_to_invite")
HOSTILE = ("garbage", "truncated_invite", "no_callid_invite", "oversized_invite")


def test_defect6_odd_but_valid_invites_are_answered_bad_ones_dropped(
    ivr: Ivr, tmp_path: Path
) -> None:
    """pyVoIP dropped INVITEs with an empty header, compact names, `To:<`, values with ': '."""
    malformed_before = ivr.phone.endpoint.stats.malformed
    tolerated = {
        kind: probe_malformed(ivr.hostport, kind, user="12345", timeout=8) for kind in TOLERABLE
    }
    hostile = {kind: probe_malformed(ivr.hostport, kind, timeout=1) for kind in HOSTILE}
    for kind, probe in tolerated.items():
        assert probe.statuses[:2] == [100, 180], (kind, probe.statuses)
        assert probe.statuses[-1] == 200, (kind, probe.statuses)
        ok = probe.replies[-1]
        assert ok.call_id, kind
    colon_ok = tolerated["colon_value_invite"].replies[-1]
    assert '"Zhang: San" <sip:' in (colon_ok.header("From") or "")  # not cut at ": "
    assert hostile["garbage"].statuses == []
    # Requests with a Via can be answered: 400 with what is wrong (issue 14 item 14).
    assert hostile["truncated_invite"].statuses == [400]
    assert "CSeq" in hostile["truncated_invite"].replies[0].start_line
    assert hostile["no_callid_invite"].statuses == [400]
    assert "Call-ID" in hostile["no_callid_invite"].replies[0].start_line
    # The largest UDP datagram: a well-formed INVITE padded with headers. It may be
    # taken as a call (it is valid SIP) or refused; either way it gets a final answer.
    oversized = hostile["oversized_invite"]
    assert oversized.sent == 65507 and oversized.send_error is None
    assert not oversized.statuses or oversized.statuses[-1] in (200, 413, 513), oversized.statuses
    assert ivr.phone.endpoint.stats.malformed >= malformed_before + 3
    # The probes ACKed and BYEd what was answered: those calls ended, each with its row.
    ivr.wait_idle()
    rows = ivr.rows()
    by_id = {c.provider_call_id: c for c in rows["calls"]}
    for kind, probe in tolerated.items():
        call = by_id.get(probe.replies[-1].call_id or "")
        assert call is not None, kind
        assert call.line_number == "12345" and call.from_number == CALLER, kind
    # Still a phone: OPTIONS and a real call with a statement.
    assert options_ping(ivr.hostport, timeout=3) == 200
    result = full_call(ivr, tmp_path, "12345", digit="3", n=3)
    assert result.ok, result.describe()
    assert result.received("BYE")
    ivr.wait_idle()
    tickets = ivr.rows()["tickets"]
    assert [t.category for t in tickets] == ["求助"]
    assert ivr.phone.ports.in_use == 0


# -- defect 9: 0.0.0.0 -------------------------------------------------------------------------


def test_defect9_no_wildcard_address_on_the_wire(ivr: Ivr, tmp_path: Path) -> None:
    """pyVoIP wrote 0.0.0.0 into Via/Contact/SDP unless myIP was set."""
    with start_sipp(
        "uas_answer_hangup",
        variables={"hangup_after_ms": 1000},
        timeout=40,
        recv_timeout=30,
        workdir=tmp_path / "callee",
    ) as callee:
        dialer = SipDialer(ivr.phone)

        def inbound() -> SippResult:
            return run_sipp(
                "uac_hangup_mid",
                ivr.hostport,
                service="12345",
                variables={"hangup_after_ms": 2000},
                timeout=30,
                workdir=tmp_path / "caller",
            )

        def outbound() -> DialResult:
            return dialer.dial(f"sip:{CALLER}@{callee.uri_hostport}", variables=SURVEY_VARS)

        caller, dialed = bounded(lambda: in_threads([inbound, outbound]), timeout=60)
        got = callee.wait(30)
    assert caller.ok, caller.describe()
    assert got.ok, got.describe()
    assert dialed.outcome == "answered"
    from_ivr = [*caller.received(), *got.received()]
    assert len(from_ivr) >= 6
    for msg in from_ivr:
        assert "0.0.0.0" not in msg.raw, msg.raw
        for name in ("Via", "Contact"):
            for value in msg.header_values(name):
                assert "127.0.0.1" in value, (name, value)
    # Our answer to the caller and our offer to the callee (retransmissions included).
    bodies = [m.body for m in from_ivr if m.body.strip()]
    assert caller.received("INVITE", status=200)[0].body.strip()
    assert got.received("INVITE")[0].body.strip()
    for body in bodies:
        assert sdp_connection(body) == ["IN IP4 127.0.0.1"], body
        assert re.search(r"(?m)^o=\S+ \d+ \d+ IN IP4 127\.0\.0\.1\s*$", body), body
    ivr.wait_idle()


def test_defect9_config_refuses_wildcard_public_host(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data.setdefault("sip", {})["public_host"] = "0.0.0.0"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    message = str(err.value)
    assert "sip.public_host" in message and "0.0.0.0" in message, message
    with pytest.raises(ValidationError):
        SipConfig(public_host="0.0.0.0")
    with pytest.raises(ValueError, match=r"0\.0\.0\.0"):
        SipEndpoint("127.0.0.1", 0, "0.0.0.0", lambda msg, addr: None)


# -- bad input ---------------------------------------------------------------------------------


def test_bad_input_unknown_peers_and_scans_then_real_calls_nothing_leaks(
    quick_ivr: Ivr, tmp_path: Path
) -> None:
    ivr = quick_ivr
    need_peers("svmap", "svwar")
    before_threads = {t.ident for t in threading.enumerate()}
    before_sockets = socket_fds()
    phone = ivr.phone
    peer = unknown_peer_ip()
    target = ivr.hostport

    def request(method: str) -> Callable[[tuple[str, int]], bytes]:
        def build(local: tuple[str, int]) -> bytes:
            uri = f"sip:12345@{target[0]}:{target[1]}"
            body = pcmu_sdp(local[0], 40000) if method == "INVITE" else ""
            return build_request(method, uri, local=local, from_user=CALLER, body=body)

        return build

    invite = send_raw(target, request("INVITE"), name="invite", local_ip=peer, timeout=3)
    assert invite.statuses == [403], invite.statuses
    assert (peer, 403) in phone.rejected
    options = send_raw(target, request("OPTIONS"), name="options", local_ip=peer, timeout=3)
    assert options.statuses == [200], options.statuses

    def scan_map() -> Any:
        return svmap(*target, workdir=tmp_path / "svmap", timeout=30, bind_ip=peer)

    def scan_register() -> Any:
        return svwar(
            *target, workdir=tmp_path / "svwar", extensions="12340-12350", timeout=40, bind_ip=peer
        )

    def scan_invite() -> Any:
        return svwar(
            *target,
            workdir=tmp_path / "svwar-invite",
            extensions="12340-12350",
            method="INVITE",
            timeout=40,
            bind_ip=peer,
        )

    scans = in_threads([scan_map, scan_register, scan_invite])
    for scan in scans:
        assert not scan.timed_out, (scan.argv, scan.stdout[-1000:], scan.stderr[-1000:])
        assert scan.returncode == 0, (scan.argv, scan.stderr[-1000:])
    assert any("hotline-ivr" in " ".join(row) for row in scans[0].rows), scans[0].stdout
    # No scan turned into a call. (svwar 0.3.3 ignores -b and scans from 127.0.0.1, a
    # trunk peer: its INVITEs carry no SDP and get 488; svmap's OPTIONS come from `peer`.)
    assert ivr.rows()["calls"] == []
    assert options_ping(target, timeout=3) == 200

    result = full_call(ivr, tmp_path, "12345", digit="4", n=4)
    assert result.ok, result.describe()
    ivr.wait_idle()
    rows = ivr.rows()
    (call,) = rows["calls"]
    assert call.status == "completed" and call.from_number == CALLER
    (ticket,) = rows["tickets"]
    assert ticket.category == "建议"
    assert phone.ports.in_use == 0 and phone.active_calls == 0
    assert not phone.sessions and not phone.ringing

    # Threads: everything started for the calls and scans ended. The one allowed
    # newcomer is the process-wide RTP pacer (ivr.transports.sip.rtp.PACER), started by the
    # first call in this process and kept for the next ones.
    def new_threads() -> list[str]:
        return [t.name for t in threading.enumerate() if t.ident not in before_threads]

    assert wait_for(lambda: set(new_threads()) <= {"rtp-pacer"}, 15), new_threads()
    assert wait_for(lambda: socket_fds() <= before_sockets, 10), (socket_fds(), before_sockets)
