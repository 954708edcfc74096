"""Satisfaction callbacks over Twilio: the REST dialer, a fake API, and callees the driver plays."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from harness.twiliokit import Callee, Speak
from harness.twiliokit.driver import DriverCall
from ivr.app import Hotline
from ivr.services import Actor
from ivr.services.campaigns import create_campaign
from ivr.store import SurveyAttempt, Ticket
from ivr.surveys.run import run_campaign
from ivr.transports.twilio.dialer import TwilioDialer, e164

from .asr_fixtures import speech_file
from .scaleout import most_in_any_window
from .surveykit import completed_tickets
from .twilio_rig import CALLER_ID, Rig, twilio_rig

MONDAY_9 = datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
H02 = "hotline/h02_8k_ulaw.wav"


@pytest.fixture
def rig(hotline: Hotline, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    with twilio_rig(hotline, monkeypatch) as rig:
        yield rig


def dialer(rig: Rig, callees: dict[str, Callee]) -> tuple[TwilioDialer, list[float]]:
    rig.driver.answer_calls(rig.api, lambda to: callees[to])
    d = TwilioDialer.from_settings(rig.hotline)
    waits: list[float] = []
    d.sleep = lambda s: waits.append(s) if s > 0.2 else None  # backoff noted, polls kept
    d.poll_s = 0.02
    return d, waits


def driven_calls(rig: Rig) -> list[DriverCall]:
    """The calls the driver played, once it is done with them (the dialer may return first:
    it sees the final status the moment the driver posts it)."""
    rig.api.join_calls()
    return rig.driver.outbound_calls


def attempt_vars(rig: Rig, phone: str = "13800138000") -> tuple[int, dict[str, object]]:
    (ticket_id,) = completed_tickets(rig.hotline, [phone], MONDAY_9)
    _, n = create_campaign(rig.hotline, Actor.system("test"), "twilio")
    assert n == 1
    with rig.hotline.db.session() as s:
        a = s.scalars(select(SurveyAttempt).where(SurveyAttempt.ticket_id == ticket_id)).one()
        t = s.get(Ticket, ticket_id)
        assert t is not None
        line = rig.hotline.settings.line(t.line_number)
        assert line is not None
        return ticket_id, {
            "attempt_id": a.id,
            "line_number": line.number,
            "line_name": line.name,
            "ticket_no": t.number,
            "ticket_no_spoken": "幺二三四五",
        }


@pytest.mark.parametrize(
    ("key", "score", "status", "solved", "resolved"),
    [
        ("1", "satisfied", "surveyed", "1", "resolved"),
        ("2", "basically_satisfied", "surveyed", "2", "unresolved"),
        ("3", "unsatisfied", "review", "2", "unresolved"),
        ("1", "satisfied", "surveyed", None, None),  # no key for the second question
    ],
)
def test_answered_survey_scores_by_keypress(
    rig: Rig, key: str, score: str, status: str, solved: str | None, resolved: str | None
) -> None:
    ticket_id, variables = attempt_vars(rig)
    second: list[object] = [solved] if solved else [None, None]  # asked twice
    script: list[object] = [key, *second] + ([Speak(speech_file(H02))] if key == "3" else [])
    d, _ = dialer(rig, {"+8613800138000": Callee("human", script)})  # type: ignore[arg-type]
    result = d.dial("13800138000", variables=variables, ring_timeout=20)
    assert (result.outcome, result.status, result.score) == ("answered", "completed", score)
    (created,) = rig.api.calls
    p = created.params
    assert (p["To"], p["From"], p["Timeout"], p["MachineDetection"]) == (
        "+8613800138000",
        CALLER_ID,
        "20",
        "Enable",
    )
    assert p["Url"].startswith("https://ivr.example.org/twilio/survey?ctx=")
    assert p["StatusCallback"].startswith("https://ivr.example.org/twilio/status?ctx=")
    assert set(p.getlist("StatusCallbackEvent")) == {
        "initiated",
        "ringing",
        "answered",
        "completed",
    }
    (call,) = driven_calls(rig)
    assert call.errors == [] and call.ended_by == "ivr"
    with rig.hotline.db.session() as s:
        t = s.get(Ticket, ticket_id)
        assert t is not None and (t.status, t.survey_outcome) == (status, score)
        assert t.survey_resolved == resolved
        a = s.scalars(select(SurveyAttempt).where(SurveyAttempt.ticket_id == ticket_id)).one()
        assert (a.score, a.resolved) == (score, resolved)
    if key == "3":  # the reason for 不满意 is recorded too
        assert len(rig.recordings(result.call_id or "")) == 1


def test_no_key_counts_as_no_response(rig: Rig) -> None:
    ticket_id, variables = attempt_vars(rig)
    d, _ = dialer(rig, {"+8613800138000": Callee("human", [None, None, None])})
    result = d.dial("13800138000", variables=variables)
    assert (result.outcome, result.score) == ("answered", "no_response")
    (call,) = driven_calls(rig)
    assert len(call.documents) == 4  # asked three times, then thanked
    with rig.hotline.db.session() as s:
        t = s.get(Ticket, ticket_id)
        assert t is not None and t.status == "completed" and t.survey_outcome is None


def test_answering_machine_is_hung_up_on_and_reported(rig: Rig) -> None:
    ticket_id, variables = attempt_vars(rig)
    d, _ = dialer(rig, {"+8613800138000": Callee("machine")})
    result = d.dial("13800138000", variables=variables)
    assert (result.outcome, result.status, result.score) == ("machine", "completed", None)
    (call,) = driven_calls(rig)
    assert call.documents == [call.documents[0]] and "<Hangup />" in call.documents[0]
    assert call.heard == []  # the survey is never played to a machine
    with rig.hotline.db.session() as s:
        t = s.get(Ticket, ticket_id)
        assert t is not None and t.status == "completed"


@pytest.mark.parametrize("kind", ["busy", "no-answer", "failed"])
def test_unanswered_calls_report_their_status(rig: Rig, kind: str) -> None:
    _, variables = attempt_vars(rig)
    d, _ = dialer(rig, {"+8613800138000": Callee(kind)})  # type: ignore[arg-type]
    result = d.dial("13800138000", variables=variables)
    assert (result.outcome, result.status) == (kind, kind)
    row = rig.call(result.call_id or "")
    assert (row.status, row.direction, row.line_number) == (kind, "outbound", "12315")


def test_rate_limit_and_server_errors_are_retried_with_backoff(rig: Rig) -> None:
    _, variables = attempt_vars(rig)
    rig.api.fail_next = [429, 503, 500]
    d, waits = dialer(rig, {"+8613800138000": Callee("human", ["1"])})
    d.cfg = d.cfg.model_copy(update={"api_backoff_s": 0.5})
    result = d.dial("13800138000", variables=variables)
    assert result.outcome == "answered" and result.score == "satisfied"
    assert rig.api.create_attempts == 4 and len(rig.api.calls) == 1
    assert waits == [0.5, 1.0, 2.0]


def test_rejected_request_is_not_retried_and_bad_numbers_are_not_dialed(rig: Rig) -> None:
    d, waits = dialer(rig, {})
    rig.api.fail_next = [400]  # e.g. Twilio refusing a To it cannot call
    result = d.dial("13800138000")
    assert (result.outcome, result.call_id) == ("failed", None)
    assert rig.api.create_attempts == 1 and waits == []
    assert d.dial("not a number").outcome == "unreachable"
    assert rig.api.create_attempts == 1


def test_campaign_run_dials_through_twilio(rig: Rig) -> None:
    phones = {"13900000001": Callee("human", ["2"]), "13900000002": Callee("machine")}
    ids = dict(zip(phones, completed_tickets(rig.hotline, list(phones), MONDAY_9), strict=True))
    cid, planned = create_campaign(rig.hotline, Actor.system("test"), "twilio campaign")
    assert planned == 2
    d, _ = dialer(rig, {e164(p): c for p, c in phones.items()})
    summary = run_campaign(rig.hotline, d, cid)
    assert dict(summary.outcomes) == {"answered": 1, "machine": 1}
    with rig.hotline.db.session() as s:
        outcomes = {
            p: s.scalars(select(SurveyAttempt).where(SurveyAttempt.ticket_id == i)).first()
            for p, i in ids.items()
        }
        assert outcomes["13900000001"].outcome == "answered"  # type: ignore[union-attr]
        assert outcomes["13900000001"].score == "basically_satisfied"  # type: ignore[union-attr]
        assert outcomes["13900000002"].outcome == "machine"  # type: ignore[union-attr]


def test_e164() -> None:
    assert e164("13800138000") == "+8613800138000"
    assert e164("0871-6555-1234") == "+8687165551234"
    assert e164("+86 138 0013 8000") == "+8613800138000"
    assert e164("sip:alice@example.org") == "sip:alice@example.org"


def test_dialer_says_what_is_missing(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    from ivr.transports.twilio.credentials import AUTH_TOKEN_ENV
    from ivr.transports.twilio.dialer import DialerError

    s = rig.hotline.settings
    rig.hotline.settings = s.model_copy(
        update={"twilio": s.twilio.model_copy(update={"caller_id": None})}
    )
    with pytest.raises(DialerError, match=r"twilio\.caller_id is not set"):
        TwilioDialer.from_settings(rig.hotline)
    rig.hotline.settings = s.model_copy(
        update={"http": s.http.model_copy(update={"public_base_url": None})}
    )
    with pytest.raises(DialerError, match=r"http\.public_base_url is not set"):
        TwilioDialer.from_settings(rig.hotline)
    monkeypatch.delenv(AUTH_TOKEN_ENV)
    with pytest.raises(DialerError, match="set TWILIO_AUTH_TOKEN"):
        TwilioDialer.from_settings(rig.hotline)


def twilio_settings(rig: Rig, **changes: object) -> None:
    s = rig.hotline.settings
    rig.hotline.settings = s.model_copy(update={"twilio": s.twilio.model_copy(update=changes)})


def test_without_status_callbacks_an_answered_survey_is_scored_not_failed(rig: Rig) -> None:
    ticket_id, variables = attempt_vars(rig)
    twilio_settings(rig, status_callback=False)
    d, _ = dialer(rig, {"+8613800138000": Callee("human", ["1"])})
    result = d.dial("13800138000", variables=variables)
    assert (result.outcome, result.status, result.score) == ("answered", "completed", "satisfied")
    (created,) = rig.api.calls
    assert "StatusCallback" not in created.params
    (call,) = driven_calls(rig)
    assert call.errors == [] and call.ended_by == "ivr"
    row = rig.call(result.call_id or "")
    assert row.status == "completed" and row.ended_at is not None  # not left open
    with rig.hotline.db.session() as s:
        t = s.get(Ticket, ticket_id)
        assert t is not None and (t.status, t.survey_outcome) == ("surveyed", "satisfied")


def test_without_status_callbacks_a_machine_is_reported_as_one(rig: Rig) -> None:
    _, variables = attempt_vars(rig)
    twilio_settings(rig, status_callback=False)
    d, _ = dialer(rig, {"+8613800138000": Callee("machine")})
    assert d.dial("13800138000", variables=variables).outcome == "machine"


def test_a_hung_calls_create_is_given_up_after_the_api_timeout(rig: Rig) -> None:
    twilio_settings(rig, api_timeout_s=0.5)
    # Released after the dialer gave up, the API still places the call: nobody answers it.
    d, waits = dialer(rig, {e164("13800138000"): Callee("no-answer")})
    rig.api.hold_create = threading.Event()
    try:
        result = d.dial("13800138000")
    finally:
        rig.api.hold_create.set()
    assert (result.outcome, result.call_id) == ("failed", None)
    assert rig.api.create_attempts == 1 and waits == []  # the call may exist: never again


def test_a_start_retried_after_429_keeps_the_calls_per_second_pace(rig: Rig) -> None:
    surveys = rig.hotline.settings.surveys.model_copy(update={"calls_per_second": 2.0})
    rig.hotline.settings = rig.hotline.settings.model_copy(update={"surveys": surveys})
    phones = [f"1390000000{i}" for i in range(1, 4)]
    completed_tickets(rig.hotline, phones, MONDAY_9)
    cid, planned = create_campaign(rig.hotline, Actor.system("test"), "paced")
    assert planned == 3
    rig.api.fail_next = [429]
    d, _ = dialer(rig, {e164(p): Callee("human", ["1"]) for p in phones})
    d.sleep = time.sleep  # the dial job's real pace
    summary = run_campaign(rig.hotline, d, cid)
    assert dict(summary.outcomes) == {"answered": 3}
    assert rig.api.create_attempts == 4
    # Every calls.create, the retried one included, is a start the pacer granted.
    assert most_in_any_window(rig.api.create_times) <= 2
