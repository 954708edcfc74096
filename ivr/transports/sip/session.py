"""One answered SIP call running a flow: shared by inbound calls and survey callbacks."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from ivr.calls.recordings import StatementSpool, add_transcript, spool_path, store_recording
from ivr.calls.service import StepResult
from ivr.flow import (
    CallerHangup,
    EmergencyHeard,
    Event,
    Gather,
    Hangup,
    Play,
    Record,
    RecordingFinished,
    Say,
    Timeout,
    Transfer,
)
from ivr.intake.live import emergency_in
from ivr.phones import mask_number
from ivr.store.models import Recording
from ivr.transports.sip.dialog import Dialog
from ivr.transports.sip.dtmf import with_inband_keys
from ivr.transports.sip.endpoint import T1
from ivr.transports.sip.media import RATE, CallMedia, Recorded
from ivr.transports.sip.message import uri_user
from ivr.transports.sip.rtp import RtpStream
from ivr.transports.sip.sdp import LocalSdp, MediaOffer

if TYPE_CHECKING:
    from ivr.transports.sip.phone import SipPhone

log = logging.getLogger(__name__)


class CallSession:
    """Media and signalling of one established dialog, driving the flow engine."""

    def __init__(
        self,
        phone: SipPhone,
        dialog: Dialog,
        offer: MediaOffer,
        codec: int,
        rtp_port: int,
        flow: str,
    ) -> None:
        self.phone, self.dialog, self.flow = phone, dialog, flow
        self.rtp_port = rtp_port
        self.remote_bye = threading.Event()
        self.aborted: str | None = None
        self.ended = threading.Event()
        self.started_at = time.monotonic()
        self.timeline: list[tuple[float, str]] = []
        # Our SDP for this call; the phone or dialer hands over the one of its first answer.
        self.local_sdp = LocalSdp(phone.settings.sip.advertised_host)
        self.media = CallMedia(
            lambda m: RtpStream(
                (phone.settings.sip.bind_host, rtp_port),
                (offer.host, offer.port),
                codec,
                offer.event_pt,
                # Without telephone-event the keys are tones in the audio.
                on_audio=m.on_audio
                if offer.event_pt is not None
                else with_inband_keys(m.on_audio, m.on_digit),
                on_digit=m.on_digit,
                sock=phone.ports.take(rtp_port),
                on_failure=self.media_failed,
                label=dialog.call_id,
            )
        )

    @property
    def call_id(self) -> str:
        return self.dialog.call_id

    def note(self, what: str) -> None:
        self.timeline.append((time.monotonic() - self.started_at, what))

    def caller_hung_up(self) -> None:
        self.remote_bye.set()
        self.media.hung_up.set()

    def abort(self, reason: str) -> None:
        """The dialog never came up (no ACK): the flow stops where it is, without a
        draft; the call is recorded as failed and we send BYE (RFC 3261 13.3.1.4)."""
        log.warning("call %s: %s; ending it", self.call_id, reason)
        self.note(reason)
        self.aborted = reason
        self.media.hung_up.set()

    def media_failed(self, exc: BaseException) -> None:
        """Our RTP for this call failed: the flow ends as if the caller had hung up (what
        was said is kept and drafted) and we send BYE. Runs on the RTP thread: quick."""
        log.error(
            "call %s from %s: media failed (%s); ending the call",
            self.call_id,
            mask_number(uri_user(self.dialog.remote_uri)),
            type(exc).__name__,
        )
        self.note("media failed")
        self.media.hung_up.set()

    # -- the flow --------------------------------------------------------------
    def run(self, first: StepResult) -> StepResult:
        self.media.stream.start()
        step = first
        try:
            while True:
                event = self._perform(step)
                if self.aborted is not None:
                    self.phone.app.calls.set_status(
                        "sip", self.call_id, "failed", note=self.aborted
                    )
                    return step
                if step.ended:
                    return step
                if event is None:
                    event = CallerHangup() if self.media.hung_up.is_set() else Timeout()
                step = self.phone.app.calls.handle("sip", self.call_id, event)
        finally:
            if not self.remote_bye.is_set():
                self.hang_up()
            self.close()
            try:
                self.phone.app.calls.hung_up("sip", self.call_id)
            except Exception:  # the call's outcome is stored; only its end time is not
                log.exception("call %s: end time not stored", self.call_id)

    def _perform(self, step: StepResult) -> Event | None:
        flow = self.phone.app.flows[self.flow]
        for verb in step.verbs:
            if self.media.hung_up.is_set():
                return CallerHangup()
            if isinstance(verb, Say):
                self.note(f"say {verb.prompt}")
                self.media.play(self.phone.prompt_audio(flow, verb, step.vars))
            elif isinstance(verb, Play):
                self.note(f"play {verb.url}")
                self.media.play(self.phone.file_audio(verb.url))
            elif isinstance(verb, Gather):
                prompts = [self.phone.prompt_audio(flow, p, step.vars) for p in verb.prompts]
                event = self.media.gather(verb, prompts)
                self.note(f"gather -> {event}")
                return event if event is not None else CallerHangup()
            elif isinstance(verb, Record):
                return self._record(verb)
            elif isinstance(verb, Transfer):
                self.note(f"transfer {verb.target}")
                self.transfer(verb.target)
            elif isinstance(verb, Hangup):
                self.note("hangup")
        return None

    def _record(self, verb: Record) -> Event:
        recognizer = self.phone.new_recognizer()
        settings = self.phone.app.settings
        flow = self.phone.app.flows[self.flow]
        # Only flows that say where an emergency goes (inbound.yaml) are interrupted.
        watch = (lambda text: emergency_in(settings, text)) if flow.handles_emergencies() else None
        spool = self._spool()
        recorded = self.media.record(verb, recognizer, watch, spool)
        self.note(f"recorded {recorded.duration_s:.1f}s ({recorded.reason})")
        if self.aborted is not None:
            if spool is not None:
                spool.discard()
            return CallerHangup()  # never a call: nothing to keep
        ref = self.store(recorded)
        if spool is not None:
            spool.discard()
        if recognizer is not None and recorded.transcript is None:
            rid = int(ref["recording_id"])  # type: ignore[call-overload]
            recognizer.when_late(lambda t: self._late_transcript(rid, t))
        if recorded.heard is not None:
            flag = recorded.heard
            log.warning("call %s: emergency (%s) heard while recording", self.call_id, flag.rule)
            return EmergencyHeard(
                flag.rule, flag.advice, recognizer.heard() if recognizer else "", ref
            )
        return RecordingFinished(ref, recorded.reason)  # type: ignore[arg-type]

    def _spool(self) -> StatementSpool | None:
        try:
            return StatementSpool(spool_path(self.phone.app, "sip", self.call_id), RATE)
        except OSError:
            log.exception("call %s: statement not spooled to disk", self.call_id)
            return None

    def store(self, recorded: Recorded) -> dict[str, object]:
        app = self.phone.app
        with app.db.session() as s:
            call = app.calls.find(s, "sip", self.call_id)
            assert call is not None
            rec = store_recording(
                app,
                s,
                call,
                f"{self.call_id}-{len(call.recordings) + 1}",
                data=recorded.wav(),
                audio_format="wav",
                duration_s=recorded.duration_s,
            )
            if recorded.transcript is not None:
                self._add_transcript(s, rec, recorded.transcript)
            return {"recording_id": rec.id, "speech": recorded.speech}

    def _late_transcript(self, recording_id: int, t: dict[str, object]) -> None:
        with self.phone.app.db.session() as s:
            rec = s.get(Recording, recording_id)
            if rec is not None and rec.transcript is None:
                self._add_transcript(s, rec, t)
        log.info("late transcript stored for recording %d", recording_id)

    def _add_transcript(self, s: Session, rec: Recording, t: dict[str, object]) -> None:
        add_transcript(
            self.phone.app,
            s,
            rec,
            text=str(t.get("text", "")),
            model=str(t.get("model", "")),
            words=list(t.get("words", [])),  # type: ignore[call-overload]
            confidence=t.get("confidence"),  # type: ignore[arg-type]
            rtf=t.get("rtf"),  # type: ignore[arg-type]
        )

    # -- signalling ------------------------------------------------------------
    def hang_up(self) -> None:
        if self.ended.is_set() or self.remote_bye.is_set():
            return
        bye, dest = self.dialog.request(self.phone.endpoint, "BYE")
        tx = self.phone.endpoint.request(bye, dest, retransmit_until=8 * T1)
        tx.final.wait(4)
        self.phone.endpoint.forget(tx)
        self.note("bye sent")

    def transfer(self, target: str) -> None:
        refer, dest = self.dialog.request(
            self.phone.endpoint,
            "REFER",
            headers=[("Refer-To", f"<{target}>"), ("Referred-By", f"<{self.dialog.local_uri}>")],
        )
        tx = self.phone.endpoint.request(refer, dest, retransmit_until=8 * T1)
        tx.final.wait(4)
        self.phone.endpoint.forget(tx)

    def close(self) -> None:
        if self.ended.is_set():
            return
        self.ended.set()
        self.media.stream.close()
        self.phone.release(self)
        self.note("closed")
