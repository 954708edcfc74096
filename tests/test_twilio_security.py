"""Only Twilio gets in: signatures, the public URL behind a proxy, 503 without a token, 400s."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server

from harness.twiliokit import ACCOUNT_SID, HttpTransport, Speak, TwilioDriver, new_sid
from ivr.app import Hotline
from ivr.transports.twilio.credentials import AUTH_TOKEN_ENV

from .asr_fixtures import speech_file
from .twilio_rig import Rig, twilio_rig

H01 = "hotline/h01_8k_ulaw.wav"


@pytest.fixture
def rig(hotline: Hotline, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    with twilio_rig(hotline, monkeypatch) as rig:
        yield rig


def voice_params(sid: str | None = None) -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT_SID,
        "CallSid": sid or new_sid("CA"),
        "CallStatus": "ringing",
        "Direction": "inbound",
        "From": "+8613800138000",
        "To": "+8687112345",
    }


def test_signed_request_is_answered(rig: Rig) -> None:
    d = rig.driver
    r = d.post(d.public("/twilio/voice"), voice_params())
    assert r.status == 200 and r.twiml().find("Gather") is not None


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        (None, "missing X-Twilio-Signature"),
        ("", "missing X-Twilio-Signature"),
        ("bm90IGEgc2lnbmF0dXJl", "does not match"),
    ],
)
def test_missing_or_forged_signature_is_403_and_stores_nothing(
    rig: Rig, caplog: pytest.LogCaptureFixture, signature: str | None, reason: str
) -> None:
    d = rig.driver
    before = rig.counts()
    with caplog.at_level(logging.WARNING, logger="webhooks.twilio"):
        r = d.post(d.public("/twilio/voice"), voice_params(), signature=signature)
    assert r.status == 403 and reason in r.text
    assert rig.counts() == before
    assert any("403 /twilio/voice" in m for m in caplog.messages)


def test_signature_from_another_auth_token_is_403(rig: Rig) -> None:
    d = rig.driver
    params = voice_params()
    other = TwilioDriver(d.transport, auth_token="another-accounts-token")
    r = d.post(
        d.public("/twilio/voice"), params, signature=other.sign(d.public("/twilio/voice"), params)
    )
    assert r.status == 403 and rig.counts()["calls"] == 0


def test_replayed_signature_with_a_changed_parameter_is_403(rig: Rig) -> None:
    d = rig.driver
    call = d.inbound(script=[None, None])  # no key twice, says nothing
    base = {**call.base, "CallStatus": "in-progress"}
    url = d.public("/twilio/record?seq=3")
    before = rig.counts()
    signed_for = d.sign(d.public("/twilio/gather?seq=1"), {**base, "Digits": "1"})
    # The same signature with another key pressed, or sent to another step URL.
    r1 = d.post(d.public("/twilio/gather?seq=1"), {**base, "Digits": "5"}, signature=signed_for)
    r2 = d.post(d.public("/twilio/gather?seq=2"), {**base, "Digits": "1"}, signature=signed_for)
    r3 = d.post(
        url, {**base, "Digits": "#", "Extra": "x"}, signature=d.sign(url, {**base, "Digits": "#"})
    )
    assert [r1.status, r2.status, r3.status] == [403, 403, 403]
    assert rig.counts() == before


def test_signature_is_checked_against_the_public_url_behind_a_tls_proxy(
    hotline: Hotline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app listens on http://127.0.0.1:PORT; Twilio called https://ivr.example.org."""
    with twilio_rig(hotline, monkeypatch, public_base="https://ivr.example.org") as rig:
        server = make_server("127.0.0.1", 0, rig.app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            seen = f"http://127.0.0.1:{server.server_port}"
            proxied = TwilioDriver(
                HttpTransport(seen), rig.api, public_base="https://ivr.example.org"
            )
            call = proxied.inbound(script=["2", Speak(speech_file(H01))])
            assert call.errors == [] and rig.ticket(call.sid) is not None
            # Signed over the URL the app itself sees: not what Twilio signs, refused.
            params = voice_params()
            wrong = proxied.sign(f"{seen}/twilio/voice", params)
            r = proxied.post("https://ivr.example.org/twilio/voice", params, signature=wrong)
            assert r.status == 403
        finally:
            server.shutdown()
            server.server_close()


def test_without_public_base_url_the_url_the_app_sees_is_signed(
    hotline: Hotline, monkeypatch: pytest.MonkeyPatch
) -> None:
    with twilio_rig(hotline, monkeypatch, public_base=None, seen_as="http://10.1.2.3:8080") as rig:
        call = rig.driver.inbound(script=["1", Speak(speech_file(H01))])
        assert call.errors == []
        assert call.documents[0].count("http://10.1.2.3:8080/twilio/") >= 2


def test_without_auth_token_every_twilio_endpoint_is_503(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(AUTH_TOKEN_ENV)
    d = rig.driver
    with caplog.at_level(logging.ERROR, logger="webhooks.twilio"):
        for path in (
            "/twilio/voice",
            "/twilio/gather?seq=1",
            "/twilio/status",
            "/twilio/recording",
        ):
            r = d.post(d.public(path), voice_params())
            assert r.status == 503 and "set TWILIO_AUTH_TOKEN" in r.text
    assert rig.counts()["calls"] == 0
    assert any("TWILIO_AUTH_TOKEN is not set" in m for m in caplog.messages)
    assert d.transport.request("GET", "/healthz", [], {}).status == 200


def test_other_account_is_403(rig: Rig) -> None:
    d = rig.driver
    params = {**voice_params(), "AccountSid": "AC" + "0" * 32}
    assert d.post(d.public("/twilio/voice"), params).status == 403


@pytest.mark.parametrize(
    ("path", "change", "reason"),
    [
        ("/twilio/voice", {"CallSid": "CA123"}, "CallSid 'CA123' is not a Twilio CA SID"),
        ("/twilio/voice", {"CallSid": ""}, "CallSid is missing"),
        ("/twilio/gather?seq=1", {"Digits": "1x"}, "Digits '1x' are not keypresses"),
        ("/twilio/gather?seq=one", {"Digits": "1"}, "seq 'one' is not a step number"),
        ("/twilio/status", {"CallStatus": "exploded"}, "CallStatus 'exploded' is not"),
        ("/twilio/status", {"CallStatus": "completed", "CallDuration": "soon"}, "CallDuration"),
        ("/twilio/survey?ctx=%%%", {"AnsweredBy": "human"}, "ctx is not a call context"),
        ("/twilio/survey", {"AnsweredBy": "human"}, "ctx is missing"),
        ("/twilio/recording", {"RecordingSid": "RE1"}, "RecordingSid 'RE1' is not"),
    ],
)
def test_malformed_parameters_are_400_with_the_reason(
    rig: Rig, path: str, change: dict[str, str], reason: str
) -> None:
    d = rig.driver
    call = d.inbound(script=[None, None])
    before = rig.counts()
    params = {**call.base, "CallStatus": "in-progress", **change}
    r = d.post(d.public(path), params)
    assert r.status == 400 and reason in r.text, r.text
    assert rig.counts() == before


def test_step_out_of_order_and_unknown_call(rig: Rig) -> None:
    d = rig.driver
    call = d.inbound(script=[None, None])
    base = {**call.base, "CallStatus": "in-progress"}
    before = rig.counts()
    r = d.post(d.public("/twilio/gather?seq=9"), {**base, "Digits": "1"})
    assert r.status == 409 and "expected 4" in r.text
    r = d.post(d.public("/twilio/gather?seq=1"), {**base, "CallSid": new_sid("CA"), "Digits": "1"})
    assert r.status == 404
    assert rig.counts() == before
