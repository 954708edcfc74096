"""Caller numbers as Twilio sends them: foreign numbers keep their country, withheld callers
are anonymous and never called back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.twiliokit import Callee, Speak
from ivr.app import Hotline
from ivr.phones import caller_id, display_number, e164, normalize_number
from ivr.services import Actor
from ivr.services import tickets as ticket_service
from ivr.services.campaigns import create_campaign
from ivr.surveys.run import run_campaign
from ivr.transports.twilio.dialer import TwilioDialer

from .asr_fixtures import speech_file
from .twilio_rig import Rig, twilio_rig

H01 = "hotline/h01_8k_ulaw.wav"
CLERK = Actor.system("test")


@pytest.fixture
def rig(hotline: Hotline, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    with twilio_rig(hotline, monkeypatch) as rig:
        yield rig


def _complete_draft_of(rig: Rig, call_sid: str) -> None:
    ticket = rig.ticket(call_sid)
    assert ticket is not None
    ticket_service.complete(rig.hotline, CLERK, ticket["number"], "已办结")


def _campaign(rig: Rig) -> tuple[int, int, TwilioDialer]:
    rig.driver.answer_calls(rig.api, lambda to: Callee("human", ["1"]))
    cid, planned = create_campaign(rig.hotline, CLERK, "回访")
    d = TwilioDialer.from_settings(rig.hotline)
    d.sleep = lambda s: None
    return cid, planned, d


def test_foreign_caller_keeps_country_code_and_is_called_back_there(rig: Rig) -> None:
    call = rig.driver.inbound(caller="+85291234567", script=["2", Speak(speech_file(H01))])
    assert call.errors == []
    assert rig.call(call.sid).from_number == "+85291234567"
    ticket = rig.ticket(call.sid)
    assert ticket is not None and ticket["caller"] == "+85*****4567"
    _complete_draft_of(rig, call.sid)
    cid, planned, d = _campaign(rig)
    assert planned == 1
    run_campaign(rig.hotline, d, cid)
    assert [c.params["To"] for c in rig.api.calls] == ["+85291234567"]


@pytest.mark.parametrize(
    "withheld",
    ["ANONYMOUS", "UNAVAILABLE", "RESTRICTED", "+266696687", "+86282452253", "+7378742833", ""],
)
def test_withheld_caller_is_anonymous_and_never_dialed(rig: Rig, withheld: str) -> None:
    call = rig.driver.inbound(caller=withheld, script=["2", Speak(speech_file(H01))])
    assert call.errors == [] and call.ended_by == "ivr"
    assert rig.call(call.sid).from_number is None
    ticket = rig.ticket(call.sid)
    assert ticket is not None and not ticket["caller"]
    _complete_draft_of(rig, call.sid)
    _, planned, _ = _campaign(rig)
    assert planned == 0
    assert rig.api.calls == []


def test_the_dialer_never_dials_a_withheld_marker(rig: Rig) -> None:
    _, _, d = _campaign(rig)
    for marker in ("+266696687", "anonymous", "sip:anonymous@anonymous.invalid"):
        assert d.dial(marker).outcome == "unreachable"
    assert rig.api.create_attempts == 0


@pytest.mark.parametrize(
    ("raw", "stored", "shown", "dialed"),
    [
        ("+85291234567", "+85291234567", "+852 9123 4567", "+85291234567"),
        ("0085291234567", "+85291234567", "+852 9123 4567", "+85291234567"),
        ("+1 415 555 0100", "+14155550100", "+1 415-555-0100", "+14155550100"),
        ("+8613800138000", "13800138000", "138 0013 8000", "+8613800138000"),
        ("+86 871 6555 1234", "087165551234", "0871 6555 1234", "+8687165551234"),
        ("12345", "12345", "12345", "+8612345"),
    ],
)
def test_numbers_stored_shown_and_dialed(raw: str, stored: str, shown: str, dialed: str) -> None:
    assert normalize_number(raw) == stored
    assert display_number(stored) == shown
    assert e164(stored) == dialed


@pytest.mark.parametrize(
    "sip_from",
    [
        '"Anonymous" <sip:anonymous@anonymous.invalid>',
        "<sip:anonymous@10.0.0.1;user=phone>",
        "sip:Restricted@carrier.example",
        "<tel:+266696687>",
    ],
)
def test_sip_withheld_from_users_are_anonymous(sip_from: str) -> None:
    from ivr.transports.sip.message import addr_uri, uri_user

    assert caller_id(uri_user(addr_uri(sip_from))) is None
    assert caller_id(uri_user(addr_uri("<sip:+85291234567@10.0.0.1>"))) == "+85291234567"
