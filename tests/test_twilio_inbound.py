"""Inbound calls over Twilio: a driver that behaves like Twilio runs the inbound flow."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.twiliokit import ACCOUNT_SID, AUTH_TOKEN, HANGUP, PUBLIC_BASE, Speak, new_sid
from ivr.app import Hotline
from ivr.prompts import clip_name
from ivr.runtime.open_calls import check_open_calls
from ivr.transports.twilio.dialer import rest_client
from ivr.transports.twilio.reconcile import close_open_calls

from .asr_fixtures import speech_file
from .twilio_rig import Rig, twilio_rig

H01 = "hotline/h01_8k_ulaw.wav"


@pytest.fixture
def rig(hotline: Hotline, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    with twilio_rig(hotline, monkeypatch) as rig:
        yield rig


def test_call_on_12345_records_statement_and_reads_back_the_draft(rig: Rig) -> None:
    audio = speech_file(H01)
    call = rig.driver.inbound(caller="+8613800138000", to="+8687112345", script=["2", Speak(audio)])
    assert call.errors == [] and call.ended_by == "ivr"
    first = call.documents[0]
    assert "<Gather" in first and 'input="dtmf"' in first and 'numDigits="1"' in first
    assert "<Record" in call.documents[1] and "recordingStatusCallback" in call.documents[1]
    # Prompts are the same clips the SIP phone plays, served by the app.
    greeting = clip_name("您好，欢迎致电12345政务服务便民热线。").removesuffix(".wav")
    assert greeting in call.played[0]
    ticket = rig.ticket(call.sid)
    assert ticket is not None
    assert (ticket["line"], ticket["category"], ticket["category_source"]) == (
        "12345",
        "投诉",
        "menu",
    )
    assert ticket["caller"] == "138****8000" and ticket["transcription"] == "pending"
    row = rig.call(call.sid)
    assert (row.line_number, row.line_source, row.status) == ("12345", "dialed", "completed")
    assert row.duration_s == call.seconds
    rig.wait_jobs()  # the fetch job
    (rec,) = rig.recordings(call.sid)
    assert rec.path and Path(rec.path).read_bytes() == audio.read_bytes()


@pytest.mark.parametrize(
    ("to", "extra", "line", "source"),
    [
        # A legacy number that is itself a Twilio number.
        ("+8687112315", {}, "12315", "dialed"),
        # A carrier forwards the legacy number to the main Twilio number.
        ("+8687112345", {"ForwardedFrom": "+8687112331"}, "12331", "forwarded_from"),
        # Twilio SIP: the trunk's Diversion header (bottom entry = originally dialed).
        (
            "sip:12345@hotline.sip.twilio.com",
            {
                "SipHeader_Diversion": "<sip:12345@10.0.0.1>;reason=unconditional,"
                " <sip:0871-12319@carrier.example>;reason=unconditional"
            },
            "12319",
            "diversion",
        ),
        # The same, when the edge copies it into an X- header (what SIP domains pass on).
        (
            "sip:12345@hotline.sip.twilio.com",
            {"SipHeader_X-Diversion": "<tel:12369>"},
            "12369",
            "diversion",
        ),
    ],
)
def test_legacy_numbers_get_their_own_greeting_and_line(
    rig: Rig, to: str, extra: dict[str, str], line: str, source: str
) -> None:
    call = rig.driver.inbound(to=to, extra=extra, script=["1", Speak(speech_file(H01))])
    assert call.errors == []
    greeting = rig.hotline.settings.line(line).greeting  # type: ignore[union-attr]
    assert clip_name(greeting).removesuffix(".wav") in call.played[0]
    row = rig.call(call.sid)
    assert (row.line_number, row.line_source) == (line, source)
    ticket = rig.ticket(call.sid)
    assert ticket is not None and ticket["line"] == line


@pytest.mark.parametrize(
    ("key", "category"), [("1", "咨询"), ("2", "投诉"), ("3", "求助"), ("4", "建议"), ("5", "举报")]
)
def test_each_menu_key_sets_the_category(rig: Rig, key: str, category: str) -> None:
    call = rig.driver.inbound(to="+8687112345", script=[key, Speak(speech_file(H01))])
    assert call.errors == [] and call.ended_by == "ivr"
    ticket = rig.ticket(call.sid)
    assert ticket is not None
    assert (ticket["category"], ticket["category_source"]) == (category, "menu")


def test_zero_transfers_to_the_operator_with_dial(rig: Rig) -> None:
    call = rig.driver.inbound(script=["0"])
    assert call.errors == []
    assert call.transfers == ["Sip:sip:operator@127.0.0.1"]
    assert "<Dial " in call.documents[-1] and rig.ticket(call.sid) is None
    assert rig.call(call.sid).status == "completed"


@pytest.mark.parametrize(
    ("dial_status", "fallback"), [("no-answer", True), ("busy", True), ("completed", False)]
)
def test_operator_transfer_reports_back_and_an_unanswered_one_is_not_silence(
    rig: Rig, dial_status: str, fallback: bool
) -> None:
    d = rig.driver
    call = d.inbound(script=["0"])
    dial = ET.fromstring(call.documents[-1]).find("Dial")
    assert dial is not None
    assert dial.get("timeout") == str(rig.hotline.settings.twilio.transfer_timeout_s)
    action = dial.get("action") or ""
    assert action.startswith(f"{PUBLIC_BASE}/twilio/dial?seq=")
    params = {**call.base, "CallStatus": "in-progress", "DialCallStatus": dial_status}
    reply = d.post(action, params)
    root = reply.twiml()
    assert [v.tag for v in root] == (["Play", "Hangup"] if fallback else ["Hangup"])
    if fallback:  # the flow's sorry prompt, as audio
        sorry = clip_name("对不起，系统暂时无法受理您的诉求，请稍后再拨。").removesuffix(".wav")
        assert sorry in (root[0].text or "")
    assert d.post(action, params).text == reply.text  # Twilio's retry: the same answer


def test_keys_pressed_during_the_greeting_count(rig: Rig) -> None:
    call = rig.driver.inbound(script=["2", Speak(speech_file(H01))])
    first = ET.fromstring(call.documents[0])
    assert first[0].tag == "Gather"  # nothing plays outside the <Gather>
    greeting = clip_name("您好，欢迎致电12345政务服务便民热线。").removesuffix(".wav")
    assert greeting in (first[0][0].text or "")


def test_record_waits_long_enough_for_a_slow_starter(rig: Rig) -> None:
    call = rig.driver.inbound(script=["2", Speak(speech_file(H01))])
    record = ET.fromstring(call.documents[1]).find("Record")
    assert record is not None
    assert int(record.get("timeout") or 0) >= rig.hotline.settings.twilio.record_timeout_s >= 5


def test_invalid_key_twice_goes_on_to_the_statement(rig: Rig) -> None:
    call = rig.driver.inbound(script=["9", "7", Speak(speech_file(H01))])
    assert call.errors == []
    assert len(call.documents) == 4  # menu, menu again, statement, read-back
    assert "menu" not in call.documents[2] and "<Record" in call.documents[2]
    ticket = rig.ticket(call.sid)
    assert ticket is not None and ticket["category_source"] != "menu"


def test_no_key_at_all_is_a_timeout_each_time(rig: Rig) -> None:
    call = rig.driver.inbound(script=[None, None, Speak(speech_file(H01))])
    assert call.errors == [] and rig.ticket(call.sid) is not None


def test_caller_hangs_up_while_speaking_still_gets_a_draft(rig: Rig) -> None:
    audio = speech_file(H01)
    call = rig.driver.inbound(script=["3", Speak(audio, end="hangup", action=False)])
    assert call.errors == [] and call.ended_by == "caller"
    ticket = rig.ticket(call.sid)
    assert ticket is not None and ticket["category"] == "求助"
    assert ticket["transcription"] == "pending"  # the audio is stored; ASR is not installed
    rig.wait_jobs()  # the fetch job
    (rec,) = rig.recordings(call.sid)
    assert rec.path and Path(rec.path).read_bytes() == audio.read_bytes()
    assert rig.call(call.sid).status == "completed"


def test_caller_hangs_up_in_the_menu(rig: Rig) -> None:
    call = rig.driver.inbound(script=[HANGUP])
    assert call.errors == []
    row = rig.call(call.sid)
    assert row.status == "completed" and row.ended_at is not None
    assert rig.ticket(call.sid) is None


def test_calls_left_open_without_a_status_callback_are_closed_by_callsid(rig: Rig) -> None:
    d = rig.driver
    gone, talking = new_sid("CA"), new_sid("CA")
    for sid in (gone, talking):  # the voice URL only: no status callback on this number
        params = {
            "AccountSid": ACCOUNT_SID,
            "CallSid": sid,
            "From": "+8613800138000",
            "To": "+8687112345",
            "Direction": "inbound",
            "CallStatus": "ringing",
        }
        assert d.post(d.public("/twilio/voice"), params).status == 200
    rig.api.call_status.update({gone: ("completed", 7), talking: ("in-progress", 0)})
    cfg = rig.hotline.settings.twilio
    client = rest_client(cfg, ACCOUNT_SID, AUTH_TOKEN)
    assert close_open_calls(rig.voice.calls, client, older_than_s=0) == 1
    assert rig.call(talking).ended_at is None  # still talking: left alone
    # The scheduler's periodic check asks again once a call is open past max_call_s:
    # the other call ended meanwhile, unnoticed (no status callback).
    rig.api.call_status[talking] = ("completed", 40)
    check = check_open_calls(rig.hotline, lambda _: None, rig.voice.calls, client)
    assert check.twilio_closed == 0  # not open long enough yet
    rig.hotline.clock.advance(seconds=cfg.max_call_s)
    check = check_open_calls(rig.hotline, lambda _: None, rig.voice.calls, client)
    assert check.twilio_closed == 1 and rig.call(talking).ended_at is not None
    row = rig.call(gone)
    assert (row.status, row.duration_s) == ("completed", 7) and row.ended_at is not None
    assert rig.ticket(gone) is None  # hung up in the menu: nothing to draft


def test_prompt_audio_is_served_as_8khz_wav(rig: Rig) -> None:
    import io
    import wave

    call = rig.driver.inbound(script=["2", Speak(speech_file(H01))])
    readback = call.played[-2]
    reply = rig.driver.get(readback)
    assert reply.status == 200 and reply.content_type == "audio/wav"
    with wave.open(io.BytesIO(reply.body)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        assert w.getnframes() > 8000  # the read-back is several seconds long
    assert rig.driver.get(rig.driver.public("/twilio/prompt/../../etc/passwd.wav")).status == 404
    assert rig.driver.get(rig.driver.public("/twilio/prompt/0123456789abcdef.wav")).status == 404


def test_say_mode_speaks_the_prompt_texts_in_mandarin(
    hotline: Hotline, monkeypatch: pytest.MonkeyPatch
) -> None:
    with twilio_rig(hotline, monkeypatch, voice="say") as rig:
        call = rig.driver.inbound(to="+8687112315", script=["2", Speak(speech_file(H01))])
    assert call.errors == []
    assert call.said[0] == "您好，您拨打的12315市场监管热线已并入12345政务服务便民热线。"
    assert 'language="cmn-CN"' in call.documents[0]
    assert any("工单号是幺二三四五" in s for s in call.said)


def test_concurrent_duplicates_of_a_step_advance_the_call_once(rig: Rig) -> None:
    from concurrent.futures import ThreadPoolExecutor

    d = rig.driver
    base = {
        "AccountSid": ACCOUNT_SID,
        "CallSid": new_sid("CA"),
        "From": "+8613800138000",
        "To": "+8687112345",
        "Direction": "inbound",
        "CallStatus": "in-progress",
    }
    assert d.post(d.public("/twilio/voice"), base).status == 200
    # The caller presses an invalid key; Twilio delivers that request four times at once.
    url = d.public("/twilio/gather?seq=1")
    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda _: d.post(url, {**base, "Digits": "9"}), range(4)))
    assert {r.status for r in replies} == {200} and len({r.text for r in replies}) == 1
    row = rig.call(base["CallSid"])
    assert row.flow_state["state"]["attempts"] == {"menu": 1}  # one invalid key, not four


def test_a_silent_caller_leaves_no_draft(rig: Rig) -> None:
    """No key, nothing recorded (a scanner, dead air): no draft; the call is `silent`."""
    call = rig.driver.inbound(script=[None, None, None])
    assert call.errors == []
    assert rig.ticket(call.sid) is None
    assert rig.call(call.sid).status == "silent"
