"""Recordings: fetched from Twilio with the account credentials, stored, then transcribed.

The recording status callback fetches the audio while Twilio waits (a few hundred
milliseconds), so the audio is on disk and a Recording row exists before the
webhook answers; transcription is a job. A fetch that fails is retried as a job.
Credentials are only ever sent to the configured REST API host.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ivr.calls.recordings import find_recording, store_recording
from ivr.calls.service import UnknownCall
from ivr.calls.transcription import TRANSCRIBE_JOB
from ivr.config import TwilioConfig
from ivr.jobs.protocol import Jobs, RetryJob
from ivr.store.models import RecordingStatus, Ticket
from ivr.transports.twilio import PROVIDER
from ivr.transports.twilio.credentials import Credentials

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ivr.app import Hotline

log = logging.getLogger(__name__)

FETCH_JOB = "twilio.fetch_recording"
FETCH_RETRY_S = 5.0


class FetchError(Exception):
    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class RecordingEvent:
    account_sid: str
    call_sid: str
    recording_sid: str
    recording_url: str | None
    status: str
    duration_s: float | None = None

    def payload(self) -> dict[str, Any]:
        return {
            "account_sid": self.account_sid,
            "call_sid": self.call_sid,
            "recording_sid": self.recording_sid,
            "recording_url": self.recording_url,
            "status": self.status,
            "duration_s": self.duration_s,
        }


class RecordingFetcher:
    """GET a recording's media from the REST API with HTTP Basic auth.

    Without explicit credentials they are read from the environment at each fetch.
    """

    def __init__(
        self,
        cfg: TwilioConfig,
        credentials: Credentials | None = None,
        http: requests.Session | None = None,
    ) -> None:
        self.cfg = cfg
        self.credentials = credentials
        self.http = http or requests.Session()

    def media_url(self, account_sid: str, recording_sid: str, recording_url: str | None) -> str:
        base = self.cfg.api_base_url
        url = f"{base}/2010-04-01/Accounts/{account_sid}/Recordings/{recording_sid}"
        if recording_url:
            given, ours = urlsplit(recording_url), urlsplit(base)
            if (given.scheme, given.netloc) == (ours.scheme, ours.netloc):
                url = recording_url.split("?")[0]
                for ext in (".wav", ".mp3", ".json"):
                    url = url.removesuffix(ext)
            else:
                log.warning(
                    "RecordingUrl host %s is not the configured API %s: fetching from the API",
                    given.netloc,
                    ours.netloc,
                )
        return f"{url}.{self.cfg.recording_format}"

    def fetch(self, url: str) -> bytes:
        sid, token = (self.credentials or Credentials.from_env()).require()
        try:
            r = self.http.get(url, auth=(sid, token), timeout=(3.0, self.cfg.fetch_timeout_s))
        except requests.RequestException as exc:
            raise FetchError(f"fetching {url} failed: {type(exc).__name__}", True) from exc
        if r.status_code == 200 and r.content:
            return r.content
        retryable = r.status_code in (404, 408, 429) or r.status_code >= 500
        raise FetchError(f"fetching {url}: HTTP {r.status_code}", retryable)


class RecordingIntake:
    """What the recording status callback and its jobs do."""

    def __init__(
        self, app: Hotline, cfg: TwilioConfig, fetcher: RecordingFetcher, jobs: Jobs
    ) -> None:
        self.app, self.cfg, self.fetcher, self.jobs = app, cfg, fetcher, jobs

    def on_callback(self, ev: RecordingEvent) -> str:
        """'stored', 'duplicate', 'retrying' or 'ignored'; UnknownCall for a call never seen."""
        with self.app.db.session() as s:
            call = self.app.calls.find(s, PROVIDER, ev.call_sid)
            if call is None:
                raise UnknownCall(f"no call {PROVIDER}/{ev.call_sid}")
            if ev.status != "completed":
                log.warning(
                    "recording %s of call %s is %s: nothing to store",
                    ev.recording_sid,
                    ev.call_sid,
                    ev.status,
                )
                return "ignored"
            existing = find_recording(s, PROVIDER, ev.recording_sid)
            if existing is not None:
                if existing.status == RecordingStatus.PENDING:
                    self._transcribe(existing.id)
                return "duplicate"
        try:
            data = self._fetch(ev)
        except FetchError as exc:
            if not exc.retryable:
                log.error("recording %s cannot be fetched: %s", ev.recording_sid, exc)
                return "ignored"
            log.warning("recording %s: %s; retrying as a job", ev.recording_sid, exc)
            self.jobs.submit(
                FETCH_JOB, ev.payload(), key=f"fetch:{ev.recording_sid}", delay_s=FETCH_RETRY_S
            )
            return "retrying"
        rec_id = self.store(ev, data)
        self._transcribe(rec_id)
        return "stored"

    def fetch_job(self, payload: Mapping[str, Any]) -> None:
        ev = RecordingEvent(**payload)
        with self.app.db.session() as s:
            if find_recording(s, PROVIDER, ev.recording_sid) is not None:
                return
        try:
            data = self._fetch(ev)
        except FetchError as exc:
            if exc.retryable:
                raise RetryJob(str(exc), FETCH_RETRY_S) from exc
            log.error("recording %s cannot be fetched: %s", ev.recording_sid, exc)
            return
        self._transcribe(self.store(ev, data))

    def _fetch(self, ev: RecordingEvent) -> bytes:
        url = self.fetcher.media_url(ev.account_sid, ev.recording_sid, ev.recording_url)
        return self.fetcher.fetch(url)

    def store(self, ev: RecordingEvent, data: bytes) -> int:
        """Audio on disk and its row, once per RecordingSid; the draft shows it is pending."""
        app = self.app
        try:
            with app.db.session() as s:
                call = app.calls.find(s, PROVIDER, ev.call_sid)
                if call is None:
                    raise UnknownCall(f"no call {PROVIDER}/{ev.call_sid}")
                rec = store_recording(
                    app,
                    s,
                    call,
                    ev.recording_sid,
                    data=data,
                    audio_format=self.cfg.recording_format,
                    duration_s=ev.duration_s,
                )
                ticket = s.scalars(select(Ticket).where(Ticket.call_id == call.id)).first()
                if ticket is not None and ticket.transcription == "none":
                    ticket.transcription = "pending"
                log.info(
                    "recording %s of call %s stored (%d bytes)",
                    ev.recording_sid,
                    ev.call_sid,
                    len(data),
                )
                return rec.id
        except IntegrityError:  # a duplicate callback on another worker stored it first
            with app.db.session() as s:
                found = find_recording(s, PROVIDER, ev.recording_sid)
                assert found is not None
                return found.id

    def _transcribe(self, recording_id: int) -> None:
        self.jobs.submit(
            TRANSCRIBE_JOB, {"recording_id": recording_id}, key=f"transcribe:{recording_id}"
        )
