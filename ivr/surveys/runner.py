"""Run a campaign: claim attempts in the database, pace and limit calls, record outcomes.

Crash safety: an attempt is claimed (a committed row update) before its number
is dialed. A runner that starts after a crash marks the dead runner's claimed
attempts "interrupted" and plans a new attempt where the rules allow; it never
dials a claimed attempt again. Scores are written by the survey flow itself
the moment the key is pressed, so nothing recorded is lost.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from ivr.store.models import Campaign, SurveyAttempt
from ivr.surveys.attempts import AttemptBook, Claimed, RunSummary
from ivr.surveys.campaigns import CampaignError, policy_for
from ivr.surveys.dialer import Dialer, DialResult
from ivr.surveys.policy import Pacer

if TYPE_CHECKING:
    from ivr.app import Hotline

log = logging.getLogger(__name__)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _holder_dead(holder: str) -> bool:
    """True when the lease holder is a process on this host that no longer exists."""
    host, _, rest = holder.partition(":")
    pid = rest.split(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class CampaignRunner:
    def __init__(
        self,
        app: Hotline,
        dialer: Dialer,
        *,
        worker: str | None = None,
        pacer: Pacer | None = None,
        heartbeat_stale_s: float = 30.0,
        poll_s: float = 0.2,
        on_progress: Callable[[RunSummary], None] | None = None,
    ) -> None:
        cfg = app.settings.surveys
        self.app, self.dialer, self.cfg = app, dialer, cfg
        self.worker = worker or worker_id()
        self.pacer = pacer or Pacer(cfg.calls_per_second)
        self.policy = policy_for(app)
        self.heartbeat_stale = timedelta(seconds=heartbeat_stale_s)
        self.poll_s = poll_s
        self.on_progress = on_progress
        self.book = AttemptBook(app, self.worker)

    # -- the loop --------------------------------------------------------------
    def run(
        self, campaign_id: int, *, max_seconds: float | None = None, stop_when_idle: bool = True
    ) -> RunSummary:
        summary = RunSummary()
        self._take_lease(campaign_id)
        summary.recovered = self._recover(campaign_id)
        started = time.monotonic()
        in_flight: set[Future[None]] = set()
        pool = ThreadPoolExecutor(self.cfg.max_concurrent, thread_name_prefix="survey-call")
        last_beat = 0.0
        try:
            while True:
                if time.monotonic() - last_beat >= 1.0:
                    status = self._heartbeat(campaign_id)
                    last_beat = time.monotonic()
                    if status == "paused":
                        summary.state = "paused"
                        break
                in_flight = {f for f in in_flight if not f.done()}
                if max_seconds is not None and time.monotonic() - started > max_seconds:
                    summary.state = "time-limit"
                    break
                if len(in_flight) < self.cfg.max_concurrent:
                    claimed = self.claim_next(campaign_id, summary)
                    if claimed is not None:
                        summary.dialed += 1
                        in_flight.add(pool.submit(self._call, claimed, summary))
                        continue
                if not in_flight:
                    next_due = self._next_due(campaign_id)
                    if next_due is None:
                        summary.state = "done"
                        break
                    if stop_when_idle and next_due > self.app.clock.now():
                        summary.state, summary.next_due = "waiting", next_due
                        break
                time.sleep(self.poll_s)
        finally:
            pool.shutdown(wait=True)
            self._release(campaign_id, summary.state)
        return summary

    # -- lease -------------------------------------------------------------------
    def _take_lease(self, campaign_id: int) -> None:
        now = self.app.clock.now()
        with self.app.db.session() as s:
            c = s.get(Campaign, campaign_id, with_for_update=True)
            if c is None:
                raise CampaignError(f"no campaign {campaign_id}")
            if c.status == "done":
                raise CampaignError(f"campaign {campaign_id} is done")
            if c.status == "paused":
                raise CampaignError(f"campaign {campaign_id} is paused: resume it first")
            holder = c.runner
            fresh = c.heartbeat_at is not None and now - c.heartbeat_at < self.heartbeat_stale
            if holder and holder != self.worker and fresh and not _holder_dead(holder):
                raise CampaignError(f"campaign {campaign_id} is being run by {holder}")
            c.runner, c.heartbeat_at, c.status, c.updated_at = self.worker, now, "running", now

    def _heartbeat(self, campaign_id: int) -> str:
        now = self.app.clock.now()
        with self.app.db.session() as s:
            c = s.get(Campaign, campaign_id)
            assert c is not None
            c.heartbeat_at = now
            return c.status

    def _release(self, campaign_id: int, state: str) -> None:
        with self.app.db.session() as s:
            c = s.get(Campaign, campaign_id)
            if c is not None and c.runner == self.worker:
                c.runner = None
                if state == "done":
                    c.status = "done"
                c.updated_at = self.app.clock.now()

    # -- attempts ----------------------------------------------------------------
    def _recover(self, campaign_id: int) -> int:
        """Attempts a crashed runner had claimed: interrupted, never dialed again."""
        now = self.app.clock.now()
        with self.app.db.session() as s:
            orphans = s.scalars(
                select(SurveyAttempt).where(
                    SurveyAttempt.campaign_id == campaign_id,
                    SurveyAttempt.status.in_(("claimed", "dialing")),
                    SurveyAttempt.claimed_by != self.worker,
                )
            ).all()
            for a in orphans:
                self.book.interrupted(s, a, now)
            return len(orphans)

    def _next_due(self, campaign_id: int) -> datetime | None:
        with self.app.db.session() as s:
            return s.scalar(
                select(SurveyAttempt.not_before)
                .where(SurveyAttempt.campaign_id == campaign_id, SurveyAttempt.status == "planned")
                .order_by(SurveyAttempt.not_before)
                .limit(1)
            )

    def claim_next(self, campaign_id: int, summary: RunSummary) -> Claimed | None:
        now = self.app.clock.now()
        if not self.policy.may_call(now):
            return None
        with self.app.db.session() as s:
            candidates = s.scalars(
                select(SurveyAttempt)
                .where(
                    SurveyAttempt.campaign_id == campaign_id,
                    SurveyAttempt.status == "planned",
                    SurveyAttempt.not_before <= now,
                )
                .order_by(SurveyAttempt.not_before, SurveyAttempt.id)
                .limit(20)
                .with_for_update(skip_locked=True)
            ).all()
            for a in candidates:
                claimed = self.book.try_claim(s, a, now, summary)
                if claimed is not None:
                    return claimed
        return None

    def _call(self, claimed: Claimed, summary: RunSummary) -> None:
        with self.app.db.session() as s:
            s.execute(
                update(SurveyAttempt)
                .where(SurveyAttempt.id == claimed.attempt_id)
                .values(status="dialing")
            )
        # Paced here, right before the INVITE or REST request: a start is a start.
        summary.starts.append(self.pacer.acquire())
        try:
            result = self.dialer.dial(
                claimed.phone,
                flow="survey",
                variables=claimed.variables,
                ring_timeout=self.cfg.ring_timeout_s,
            )
        except Exception:
            log.exception("dialing attempt %d failed", claimed.attempt_id)
            result = DialResult("failed")
        outcome = self.book.finish(claimed.attempt_id, result)
        summary.outcomes[outcome] += 1
        if self.on_progress is not None:
            self.on_progress(summary)
