"""Survey calls through Twilio's REST API (the survey engine's Dialer).

`dial` creates the call (Url: the survey webhook, StatusCallback: the status
webhook, Timeout: ring time, MachineDetection when configured), retries HTTP 429
and 5xx with exponential backoff, then waits until the final status callback has
landed in the database (or a deadline passes) and reports the outcome. The
webhooks, served by any worker, run the survey flow and record the score.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import requests
from sqlalchemy import select
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from ivr.config import TwilioConfig
from ivr.flow import CallState
from ivr.phones import PhoneNumberError, WithheldNumber, is_withheld, mask_text
from ivr.phones import e164 as phone_e164
from ivr.store.models import Call, CallEvent
from ivr.surveys.dialer import DialResult, Outcome, StartPacer
from ivr.transports.twilio import PROVIDER
from ivr.transports.twilio.context import OutboundContext
from ivr.transports.twilio.credentials import Credentials
from ivr.transports.twilio.steps import ANSWERED_BY_NOTE, FINAL_STATUSES, STATUS_NOTE, is_machine
from ivr.transports.twilio.twiml import Links

if TYPE_CHECKING:
    from ivr.app import Hotline

log = logging.getLogger(__name__)

OUTCOMES: dict[str, Outcome] = {
    "completed": "answered",
    "busy": "busy",
    "no-answer": "no-answer",
    "failed": "failed",
    "canceled": "cancelled",
}
MAX_BACKOFF_S = 30.0


class DialerError(RuntimeError):
    pass


def e164(number_or_uri: str) -> str:
    """What Twilio's To takes: E.164 numbers (+86... at home); SIP and client URIs unchanged.

    A withheld caller ID raises PhoneNumberError: it is never dialed."""
    if is_withheld(number_or_uri):
        raise WithheldNumber(f"withheld caller ID {mask_text(number_or_uri)!r}")
    if number_or_uri.startswith(("sip:", "sips:", "client:")):
        return number_or_uri
    return phone_e164(number_or_uri)


def rest_client(cfg: TwilioConfig, sid: str, token: str) -> Client:
    """The REST client for the configured API; every request gives up after api_timeout_s
    (a hung calls.create must not hold a survey slot)."""
    client = Client(sid, token, http_client=TwilioHttpClient(timeout=cfg.api_timeout_s))
    client.api.base_url = cfg.api_base_url
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
    return client


class TwilioDialer:
    def __init__(
        self,
        app: Hotline,
        client: Client,
        *,
        public_base_url: str,
        caller_id: str,
        sleep: Callable[[float], None] = time.sleep,
        poll_s: float = 0.2,
    ) -> None:
        self.app = app
        self.cfg = app.settings.twilio
        self.client = client
        self.links = Links(public_base_url)
        self.caller_id = caller_id
        self.sleep = sleep
        self.poll_s = poll_s
        self.pacer: StartPacer | None = None

    def use_pacer(self, pacer: StartPacer) -> None:
        """Retried starts (after 429/5xx) wait for the survey pacer like first ones."""
        self.pacer = pacer

    @classmethod
    def from_settings(cls, app: Hotline, credentials: Credentials | None = None) -> TwilioDialer:
        """The dialer for the configured account; DialerError says what is missing."""
        cfg = app.settings.twilio
        creds = credentials or Credentials.from_env()
        try:
            sid, token = creds.require()
        except Exception as exc:
            raise DialerError(str(exc)) from None
        if not app.settings.http.public_base_url:
            raise DialerError(
                "http.public_base_url is not set: Twilio needs it to reach the survey webhook"
            )
        if not cfg.caller_id:
            raise DialerError("twilio.caller_id is not set: the number survey calls come from")
        client = rest_client(cfg, sid, token)
        return cls(
            app, client, public_base_url=app.settings.http.public_base_url, caller_id=cfg.caller_id
        )

    # -- Dialer --------------------------------------------------------------------
    def dial(
        self,
        number_or_uri: str,
        *,
        flow: str = "survey",
        variables: Mapping[str, Any] | None = None,
        ring_timeout: float | None = None,
    ) -> DialResult:
        started = time.monotonic()
        timeline: list[tuple[float, str]] = []

        def note(what: str) -> None:
            timeline.append((round(time.monotonic() - started, 3), what))

        ring = int(ring_timeout or self.cfg.ring_timeout_s)
        try:
            to = e164(number_or_uri)
        except PhoneNumberError:
            log.warning("not dialing %s: not a phone number", mask_text(number_or_uri))
            return DialResult("unreachable", None, None, timeline=timeline)
        ctx = OutboundContext(flow, dict(variables or {})).encode()
        sid = self._create(to, ctx, ring, note)
        if sid is None:
            return DialResult("failed", "failed", None, timeline=timeline)
        note(f"call {sid} created")
        log.info("survey call %s to %s placed", sid, mask_text(to))
        result = self._await_end(sid, started + ring + self.cfg.max_call_s, note)
        result.timeline = timeline + result.timeline
        return result

    def _create(self, to: str, ctx: str, ring: int, note: Callable[[str], None]) -> str | None:
        kwargs: dict[str, Any] = {
            "to": to,
            "from_": self.caller_id,
            "url": self.links.survey(ctx),
            "method": "POST",
            "timeout": ring,
        }
        if self.cfg.status_callback:
            kwargs.update(
                status_callback=self.links.status(ctx),
                status_callback_method="POST",
                status_callback_event=["initiated", "ringing", "answered", "completed"],
            )
        if self.cfg.machine_detection:
            kwargs["machine_detection"] = "Enable"
        for attempt in range(self.cfg.api_retries + 1):
            try:
                call = self.client.calls.create(**kwargs)
                return str(call.sid)
            except TwilioRestException as exc:
                retryable = exc.status == 429 or exc.status >= 500
                note(f"calls.create: HTTP {exc.status}")
                if not retryable or attempt == self.cfg.api_retries:
                    log.error(
                        "Twilio refused the call to %s: HTTP %s %s",
                        mask_text(to),
                        exc.status,
                        mask_text(str(exc.msg)),
                    )
                    return None
            except requests.ConnectionError as exc:  # never reached Twilio: safe to repeat
                note(f"calls.create: {type(exc).__name__}")
                if attempt == self.cfg.api_retries:
                    log.error("Twilio API unreachable: %s", type(exc).__name__)
                    return None
            except requests.RequestException as exc:  # the call may exist: never dial twice
                log.error(
                    "calls.create for %s got no answer (%s)", mask_text(to), type(exc).__name__
                )
                return None
            delay = min(MAX_BACKOFF_S, self.cfg.api_backoff_s * 2**attempt)
            log.warning("Twilio API busy; calls.create again in %.1f s", delay)
            self.sleep(delay)
            if self.pacer is not None:
                self.pacer.acquire()
        return None

    def _await_end(self, sid: str, deadline: float, note: Callable[[str], None]) -> DialResult:
        while True:
            result = call_result(self.app, sid, flow_ends=not self.cfg.status_callback)
            if result is not None:
                note(f"final status {result.status}")
                return result
            if time.monotonic() > deadline:
                log.warning("survey call %s: no final status by the deadline", sid)
                note("deadline passed")
                return DialResult("failed", None, sid)
            self.sleep(self.poll_s)


def call_result(app: Hotline, sid: str, *, flow_ends: bool = False) -> DialResult | None:
    """The outcome of a Twilio call once its final status is stored; None before.

    `flow_ends` (no status callbacks asked for): a call whose survey flow ended, or
    that was hung up on as an answering machine, is over too; its status is `completed`.
    """
    with app.db.session() as s:
        # The notes first, then the call: on PostgreSQL each statement sees what was
        # committed when it began, and the final status commits after the call's last
        # step, so a call row read after the final status is seen carries that step.
        notes = s.scalars(
            select(CallEvent)
            .join(Call, CallEvent.call_id == Call.id)
            .where(Call.provider == PROVIDER, Call.provider_call_id == sid)
            .where(CallEvent.kind == "note")
            .order_by(CallEvent.id)
        ).all()
        statuses = [
            str(n.data.get("status"))
            for n in notes
            if n.name == STATUS_NOTE and (n.data or {}).get("source") == PROVIDER
        ]
        final = next((st for st in statuses if st in FINAL_STATUSES), None)
        if final is None and not flow_ends:
            return None
        call = s.scalars(
            select(Call).where(Call.provider == PROVIDER, Call.provider_call_id == sid)
        ).first()
        if call is None:
            return None
        answered_by = next(
            (n.data.get("answered_by") for n in notes if n.name == ANSWERED_BY_NOTE), None
        )
        state = CallState.from_dict(call.flow_state.get("state", {}))
        if final is None:
            if not (state.ended or is_machine(answered_by)):
                return None
            final = "completed"
            if call.ended_at is None:  # no status callback will close the call's row
                call.status, call.ended_at = final, app.clock.now()
        outcome: Outcome = OUTCOMES[final]
        if is_machine(answered_by):
            outcome = "machine"
        t0 = call.started_at
        timeline = [
            (round((n.at - t0).total_seconds(), 3), f"status {n.data.get('status')}")
            for n in notes
            if n.name == STATUS_NOTE
        ]
        return DialResult(outcome, final, sid, vars=dict(state.vars), timeline=timeline)
