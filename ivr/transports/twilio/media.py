"""Recordings: fetched from Twilio with the account credentials, stored, then transcribed.

The recording status callback never waits on the outside world: it writes the
Recording row (status `fetching`, so the draft shows 转写中) and queues the fetch
as a job. The job fetches the media, writes it to disk and queues transcription;
a fetch that fails is tried again with backoff (`twilio.fetch_attempts`), and
after the last attempt the recording is `fetch_failed`: the draft shows
录音获取失败, a log line names the call, the job is a dead letter and
`ivr_recordings_lost` counts it. The row outlives a restart: start-up queues the
fetch of every recording still `fetching` again (`requeue_fetches`).
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
from sqlalchemy.orm import Session

from ivr.calls.recordings import find_recording, write_audio
from ivr.calls.service import UnknownCall
from ivr.calls.transcription import TRANSCRIBE_JOB
from ivr.config import TwilioConfig
from ivr.jobs.protocol import GiveUp, Jobs
from ivr.phones import mask_number
from ivr.store.models import Call, Recording, RecordingStatus, Ticket
from ivr.transports.twilio import PROVIDER
from ivr.transports.twilio.credentials import Credentials

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ivr.app import Hotline

log = logging.getLogger(__name__)

FETCH_JOB = "twilio.fetch_recording"
MAX_FETCH_BACKOFF_S = 300.0


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

    @classmethod
    def of(cls, payload: Mapping[str, Any]) -> RecordingEvent:
        return cls(**{k: payload.get(k) for k in cls.__dataclass_fields__})  # type: ignore[arg-type]

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
    """What the recording status callback and its fetch job do."""

    def __init__(
        self, app: Hotline, cfg: TwilioConfig, fetcher: RecordingFetcher, jobs: Jobs
    ) -> None:
        self.app, self.cfg, self.fetcher, self.jobs = app, cfg, fetcher, jobs

    # -- the webhook: a row and a job, no network ----------------------------------
    def on_callback(self, ev: RecordingEvent) -> str:
        """'queued', 'duplicate' or 'ignored'; UnknownCall for a call never seen."""
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
            if existing is None:
                try:
                    with s.begin_nested():
                        s.add(self._row(call, ev))
                except IntegrityError:  # a duplicate callback on another worker was first
                    existing = find_recording(s, PROVIDER, ev.recording_sid)
                else:
                    _mark_draft(s, call, "pending", only_from="none")
        if existing is not None:
            if existing.status == RecordingStatus.PENDING:
                self._transcribe(existing.id)
            elif existing.status == RecordingStatus.FETCHING:
                self._queue_fetch(ev.payload(), attempt=1)  # no-op while one is queued
            return "duplicate"
        self._queue_fetch(ev.payload(), attempt=1)
        return "queued"

    def _row(self, call: Call, ev: RecordingEvent) -> Recording:
        return Recording(
            call_id=call.id,
            provider=PROVIDER,
            provider_recording_id=ev.recording_sid,
            path=None,
            audio_format=self.cfg.recording_format,
            duration_s=ev.duration_s,
            status=RecordingStatus.FETCHING,
            created_at=self.app.clock.now(),
        )

    def _queue_fetch(self, payload: Mapping[str, Any], attempt: int, delay_s: float = 0) -> None:
        sid = payload["recording_sid"]
        self.jobs.submit(
            FETCH_JOB,
            {**payload, "attempt": attempt},
            key=f"fetch:{sid}:{attempt}",
            delay_s=delay_s,
        )

    # -- the job ---------------------------------------------------------------------
    def fetch_job(self, payload: Mapping[str, Any]) -> None:
        ev = RecordingEvent.of(payload)
        attempt = int(payload.get("attempt") or 1)
        with self.app.db.read() as s:
            rec = find_recording(s, PROVIDER, ev.recording_sid)
            # A lost recording is fetched again only when its dead job is retried.
            if rec is None or rec.status not in (RecordingStatus.FETCHING, RecordingStatus.LOST):
                return
        try:
            data = self._fetch(ev)
        except FetchError as exc:
            if exc.retryable and attempt < self.cfg.fetch_attempts:
                delay = min(MAX_FETCH_BACKOFF_S, self.cfg.fetch_retry_s * 2 ** (attempt - 1))
                log.warning(
                    "recording %s of call %s (attempt %d of %d): %s; again in %.0f s",
                    ev.recording_sid,
                    ev.call_sid,
                    attempt,
                    self.cfg.fetch_attempts,
                    exc,
                    delay,
                )
                self._queue_fetch(payload, attempt + 1, delay)
                return
            self._lost(ev, attempt, str(exc))
            raise GiveUp(f"recording {ev.recording_sid} of call {ev.call_sid} lost: {exc}") from exc
        self._transcribe(self.store(ev, data))

    def _fetch(self, ev: RecordingEvent) -> bytes:
        url = self.fetcher.media_url(ev.account_sid, ev.recording_sid, ev.recording_url)
        return self.fetcher.fetch(url)

    def store(self, ev: RecordingEvent, data: bytes) -> int:
        """Audio on disk and its row pending transcription; the draft shows it is pending.

        The audio is written (and fsynced) before the write unit: SQLite's write lock,
        which every webhook step takes, is never held while the disk syncs. Its name is
        the call's and the recording's, so a duplicate writes the same file."""
        app = self.app
        with app.db.read() as s:
            call = app.calls.find(s, PROVIDER, ev.call_sid)
            if call is None:
                raise UnknownCall(f"no call {PROVIDER}/{ev.call_sid}")
            rec = find_recording(s, PROVIDER, ev.recording_sid)
            wanted = rec is None or rec.status in (RecordingStatus.FETCHING, RecordingStatus.LOST)
        if wanted:
            path = write_audio(app, call, ev.recording_sid, data, self.cfg.recording_format)
        with app.db.session() as s:
            call = app.calls.find(s, PROVIDER, ev.call_sid)
            assert call is not None  # calls are never deleted
            rec = find_recording(s, PROVIDER, ev.recording_sid)
            if rec is None:
                rec = self._row(call, ev)
                s.add(rec)
            if wanted and rec.status in (RecordingStatus.FETCHING, RecordingStatus.LOST):
                rec.path, rec.status, rec.error = str(path), RecordingStatus.PENDING, None
                _mark_draft(s, call, "pending")
                log.info(
                    "recording %s of call %s stored (%d bytes)",
                    ev.recording_sid,
                    ev.call_sid,
                    len(data),
                )
            s.flush()
            return rec.id

    def _lost(self, ev: RecordingEvent, attempts: int, reason: str) -> None:
        with self.app.db.session() as s:
            call = self.app.calls.find(s, PROVIDER, ev.call_sid)
            rec = find_recording(s, PROVIDER, ev.recording_sid)
            if call is None or rec is None:
                return
            rec.status, rec.error = RecordingStatus.LOST, reason[:2000]
            _mark_draft(s, call, "fetch_failed")
            log.error(
                "recording %s of call %s/%s from %s on line %s lost after %d attempt(s): %s",
                ev.recording_sid,
                PROVIDER,
                ev.call_sid,
                mask_number(call.from_number) or "anonymous",
                call.line_number,
                attempts,
                reason,
            )

    def requeue_fetches(self) -> int:
        """Queue again the fetch of every recording still `fetching` (after a restart)."""
        account = (self.fetcher.credentials or Credentials.from_env()).account_sid
        with self.app.db.read() as s:
            rows = s.execute(
                select(Recording.provider_recording_id, Recording.duration_s, Call.provider_call_id)
                .join(Call, Recording.call_id == Call.id)
                .where(Recording.provider == PROVIDER, Recording.status == RecordingStatus.FETCHING)
            ).all()
        if rows and not account:
            log.error("%d recording(s) to fetch but TWILIO_ACCOUNT_SID is not set", len(rows))
            return 0
        for rec_sid, duration, call_sid in rows:
            ev = RecordingEvent(str(account), call_sid, rec_sid, None, "completed", duration)
            self._queue_fetch(ev.payload(), attempt=1)
        if rows:
            log.info("%d recording fetch(es) queued again at start-up", len(rows))
        return len(rows)

    def retry_lost(self, recording_id: int) -> RecordingEvent | None:
        """Fetch a lost recording once more (`ivr jobs retry recording:ID`); None if there
        is no such lost recording."""
        account = (self.fetcher.credentials or Credentials.from_env()).account_sid
        with self.app.db.read() as s:
            row = s.execute(
                select(Recording, Call.provider_call_id)
                .join(Call, Recording.call_id == Call.id)
                .where(Recording.id == recording_id, Recording.status == RecordingStatus.LOST)
            ).first()
        if row is None or not account:
            return None
        rec, call_sid = row
        ev = RecordingEvent(
            account, call_sid, rec.provider_recording_id, None, "completed", rec.duration_s
        )
        self._queue_fetch(ev.payload(), attempt=self.cfg.fetch_attempts)  # one more try
        return ev

    def _transcribe(self, recording_id: int) -> None:
        self.jobs.submit(
            TRANSCRIBE_JOB, {"recording_id": recording_id}, key=f"transcribe:{recording_id}"
        )


def _mark_draft(s: Session, call: Call, state: str, only_from: str | None = None) -> None:
    """The draft's transcription state (转写中 / 录音获取失败), once the draft exists."""
    ticket = s.scalars(select(Ticket).where(Ticket.call_id == call.id)).first()
    if ticket is None or ticket.transcription == "done":
        return
    if only_from is None or ticket.transcription == only_from:
        ticket.transcription = state
