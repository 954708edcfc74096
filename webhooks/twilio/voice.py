"""Twilio voice webhooks: the inbound and survey flows as TwiML.

POST /twilio/voice            the number's voice URL (inbound calls)
POST /twilio/survey?ctx=..    the answer URL of survey calls the dialer places
POST /twilio/gather?seq=N     <Gather> action (Digits; empty: no key)
POST /twilio/record?seq=N     <Record> action (holds the caller while the statement is transcribed)
POST /twilio/transcript?seq=N&poll=K&rec=RE..  <Redirect> polls of that hold
POST /twilio/timeout?seq=N    <Redirect> after a <Gather>/<Record> that got nothing
POST /twilio/dial?seq=N       <Dial> action: how the transfer ended (fallback if unanswered)
POST /twilio/status[?ctx=..]  call status callback
POST /twilio/recording        recording status callback (the row, then a fetch job)
GET  /twilio/prompt/<ids>.wav prompt audio for <Play> (public, like any static file)
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request

from ivr.app import Hotline
from ivr.flow import Digits, Event, RecordingFinished, Timeout
from ivr.jobs import DramatiqJobs
from ivr.jobs.registry import register_jobs
from ivr.phones import mask_number
from ivr.prompts import PromptLibrary
from ivr.transports.twilio.media import RecordingEvent, RecordingIntake
from ivr.transports.twilio.prompts import BadClipList, PromptAudio
from ivr.transports.twilio.steps import InboundCall, StatusUpdate, TwilioCalls
from ivr.transports.twilio.twiml import Links, TwimlRenderer
from webhooks.twilio import params as P
from webhooks.twilio.security import plain, public_base, signed

log = logging.getLogger("webhooks.twilio")

bp = Blueprint("twilio", __name__, url_prefix="/twilio")

# Twilio's webhook bodies are a few kilobytes; anything far larger is not Twilio.
MAX_BODY = 64 * 1024


@bp.before_request
def _limit_body() -> Response | None:
    request.max_content_length = MAX_BODY
    environ = request.environ
    if request.content_length is None and environ.get("wsgi.input_terminated"):
        # A chunked body (gunicorn): Werkzeug would cut it at the limit and parse the
        # rest silently; read one byte past the limit and refuse, never reading it whole.
        data = environ["wsgi.input"].read(MAX_BODY + 1)
        if len(data) > MAX_BODY:
            log.warning("413 %s from %s: chunked body over %d bytes", request.path,
                        request.remote_addr, MAX_BODY)  # fmt: skip
            return plain(413, f"request body over {MAX_BODY} bytes: not a Twilio webhook")
        environ["wsgi.input"] = io.BytesIO(data)
    return None


DIVERSION = ("SipHeader_Diversion", "SipHeader_X-Diversion")
HISTORY_INFO = ("SipHeader_History-Info", "SipHeader_X-History-Info")


@dataclass
class TwilioVoice:
    """The Twilio transport's parts for one web worker process."""

    hotline: Hotline
    calls: TwilioCalls
    intake: RecordingIntake
    prompts: PromptAudio
    jobs: DramatiqJobs


def init_twilio(app: Flask, hotline: Hotline, jobs: DramatiqJobs) -> TwilioVoice:
    cfg = hotline.settings.twilio
    prompts = PromptAudio(PromptLibrary.from_settings(hotline.settings))
    intake = register_jobs(hotline, jobs)
    voice = TwilioVoice(
        hotline, TwilioCalls(hotline, TwimlRenderer(cfg, prompts)), intake, prompts, jobs
    )
    app.extensions["twilio"] = voice
    app.register_blueprint(bp)
    return voice


def _voice() -> TwilioVoice:
    voice: TwilioVoice = current_app.extensions["twilio"]
    return voice


def _links() -> Links:
    return Links(public_base(request))


def twiml(body: str) -> Response:
    return Response(body, status=200, mimetype="application/xml")


def _call_sid() -> str:
    return P.sid(request.form, "CallSid", "CA")


@bp.post("/voice")
@signed
def voice() -> Any:
    form = request.form
    call = InboundCall(
        call_sid=_call_sid(),
        from_number=P.text(form, "From"),
        to_number=P.text(form, "To"),
        forwarded_from=P.text(form, "ForwardedFrom"),
        diversion=P.values(form, *DIVERSION),
        history_info=P.values(form, *HISTORY_INFO),
    )
    log.info(
        "twilio call %s from %s to %s%s",
        call.call_sid,
        mask_number(call.from_number),
        mask_number(call.to_number),
        f" forwarded from {mask_number(call.forwarded_from)}" if call.forwarded_from else "",
    )
    return twiml(_voice().calls.start_inbound(call, _links()))


@bp.post("/survey")
@signed
def survey() -> Any:
    form = request.form
    call_sid = _call_sid()
    ctx = P.context(request.args, required=True)
    assert ctx is not None
    body = _voice().calls.start_outbound(
        call_sid,
        from_number=P.text(form, "From"),
        to_number=P.text(form, "To"),
        context=ctx,
        answered_by=P.answered_by(form),
        links=_links(),
    )
    return twiml(body)


def _step(event: Event) -> Response:
    call_sid, seq = _call_sid(), P.seq(request.args)
    return twiml(_voice().calls.step(call_sid, seq, event, _links()))


@bp.post("/gather")
@signed
def gather() -> Any:
    keys = P.digits(request.form)
    return _step(Digits(keys) if keys else Timeout())


@bp.post("/record")
@signed
def record() -> Any:
    form = request.form
    keys = P.digits(form, allow_hangup=True)
    recording_sid = P.sid(form, "RecordingSid", "RE") if form.get("RecordingSid") else None
    duration = P.seconds(form, "RecordingDuration")
    reason = "hangup" if keys == "hangup" else ("finish-key" if keys else "silence")
    return _recorded(recording_sid, duration, reason, poll=0)


@bp.post("/transcript")
@signed
def transcript() -> Any:
    args = request.args
    recording_sid = P.sid(args, "rec", "RE") if args.get("rec") else None
    reason = P.recording_end(args)
    return _recorded(recording_sid, None, reason, poll=P.poll(args))


def _recorded(
    recording_sid: str | None, duration: float | None, reason: str, poll: int
) -> Response:
    ref = (
        {"provider": "twilio", "recording_sid": recording_sid, "duration_s": duration}
        if recording_sid
        else None
    )
    event = RecordingFinished(ref, reason)  # type: ignore[arg-type]
    call_sid, seq = _call_sid(), P.seq(request.args)
    return twiml(_voice().calls.recorded(call_sid, seq, event, _links(), poll))


@bp.post("/timeout")
@signed
def timeout() -> Any:
    return _step(Timeout())


@bp.post("/dial")
@signed
def dial() -> Any:
    status = P.dial_status(request.form)
    call_sid, seq = _call_sid(), P.seq(request.args)
    return twiml(_voice().calls.transfer_ended(call_sid, seq, status, _links()))


@bp.post("/status")
@signed
def status() -> Any:
    form = request.form
    upd = StatusUpdate(
        call_sid=_call_sid(),
        status=P.call_status(form),
        duration_s=P.seconds(form, "CallDuration"),
        answered_by=P.answered_by(form),
        direction=P.text(form, "Direction"),
        from_number=P.text(form, "From"),
        to_number=P.text(form, "To"),
        forwarded_from=P.text(form, "ForwardedFrom"),
        context=P.context(request.args, required=False),
    )
    _voice().calls.update_status(upd)
    return Response(status=204)


@bp.post("/recording")
@signed
def recording() -> Any:
    form = request.form
    ev = RecordingEvent(
        account_sid=P.sid(form, "AccountSid", "AC"),
        call_sid=_call_sid(),
        recording_sid=P.sid(form, "RecordingSid", "RE"),
        recording_url=P.text(form, "RecordingUrl"),
        status=P.recording_status(form),
        duration_s=P.seconds(form, "RecordingDuration"),
    )
    outcome = _voice().intake.on_callback(ev)
    log.info("twilio recording %s of call %s: %s", ev.recording_sid, ev.call_sid, outcome)
    return Response(status=204)


@bp.get("/prompt/<string:clips>.wav")
def prompt(clips: str) -> Any:
    audio = _voice().prompts
    try:
        data = audio.wav(audio.parse(clips))
    except (BadClipList, FileNotFoundError) as exc:
        log.warning("404 prompt audio: %s", exc)
        return plain(404, str(exc))
    resp = Response(data, status=200, mimetype="audio/wav")
    resp.headers["Cache-Control"] = "public, max-age=86400"
    return resp
