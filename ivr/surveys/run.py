"""`ivr campaign run`: one campaign dialed now, through the production dialing path.

The same parts as `ivr serve --role scheduler` plus `--role worker`: a dispatch loop
for this one campaign (`CampaignDispatcher`: claims due attempts, queues `survey.dial`
jobs) and a job worker in this process running the dial job with the given dialer,
under the call limits of `ivr.surveys.limits`. Without Redis the queue and the
limits live in this process; with Redis (REDIS_URL or jobs.broker_url) the jobs go
to the shared queue, any worker (this one included) takes them, and the pace and
the concurrent-call cap are the global ones.

Crash safety is the dial job's: an attempt is claimed (a committed row update)
before it is queued and turns "dialing" before its number is dialed. A run that
starts after a crash marks the attempts a dead process left dialing "interrupted"
and plans the next attempt where the rules allow; it never dials them again.
Claimed attempts were never dialed and are queued again. With Redis, attempts
dialing on a worker elsewhere are left to the broker: their job is delivered again
when that worker stops heartbeating, and the dial job marks them interrupted.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select, update

from ivr.jobs import DramatiqJobs, queue_for
from ivr.jobs.registry import register_jobs
from ivr.store.models import Campaign, SurveyAttempt
from ivr.surveys.attempts import AttemptBook, RunSummary, holder_dead, worker_id
from ivr.surveys.campaigns import CampaignError, policy_for
from ivr.surveys.dialer import Dialer
from ivr.surveys.dispatch import DIAL_JOB, IN_FLIGHT, CampaignDispatcher

if TYPE_CHECKING:
    from ivr.app import Hotline


class CampaignRun:
    """Dial one campaign from this process until it is done, idle, paused or out of time."""

    def __init__(
        self,
        app: Hotline,
        dialer: Dialer,
        *,
        heartbeat_stale_s: float = 30.0,
        poll_s: float = 0.2,
        on_progress: Callable[[RunSummary], None] | None = None,
    ) -> None:
        self.app, self.dialer = app, dialer
        self.worker = worker_id()
        self.policy = policy_for(app)
        self.book = AttemptBook(app, self.worker)
        self.heartbeat_stale = timedelta(seconds=heartbeat_stale_s)
        self.poll_s = poll_s
        self.on_progress = on_progress

    def run(
        self, campaign_id: int, *, max_seconds: float | None = None, stop_when_idle: bool = True
    ) -> RunSummary:
        """Raises CampaignError when the campaign cannot run now, BrokerError when the
        configured Redis is unusable."""
        settings = self.app.settings
        # Enough job threads for the concurrent-call cap: a dial job holds one for its call.
        threads = max(settings.jobs.worker_threads, settings.surveys.max_concurrent)
        jobs = DramatiqJobs(settings.jobs.model_copy(update={"worker_threads": threads}))
        try:
            summary = RunSummary()
            self._take_lease(campaign_id)
            summary.recovered = self._recover(campaign_id, shared=not jobs.embedded)
            register_jobs(self.app, jobs, self.dialer, self.worker)
            jobs.start_worker({queue_for(DIAL_JOB)})
            dispatcher = CampaignDispatcher(self.app, jobs, self.worker)
            before = self._finished(campaign_id)
            try:
                self._loop(dispatcher, campaign_id, summary, before, max_seconds, stop_when_idle)
            finally:
                self._stop(campaign_id)
            self._count(campaign_id, summary, before)
        finally:
            jobs.close(wait=False)
        return summary

    def _loop(
        self,
        dispatcher: CampaignDispatcher,
        campaign_id: int,
        summary: RunSummary,
        before: Counter[str],
        max_seconds: float | None,
        stop_when_idle: bool,
    ) -> None:
        started = time.monotonic()
        while True:
            dispatcher.dispatch(campaign_id, summary)
            state = self._state(campaign_id, summary, stop_when_idle)
            self._count(campaign_id, summary, before)
            out_of_time = max_seconds is not None and time.monotonic() - started > max_seconds
            if state is None and out_of_time:
                state = "time-limit"
            if state is not None:
                summary.state = state
                return
            time.sleep(self.poll_s)

    # -- the campaign lease --------------------------------------------------------
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
            if holder and holder != self.worker and fresh and not holder_dead(holder):
                raise CampaignError(f"campaign {campaign_id} is being run by {holder}")
            c.runner, c.heartbeat_at, c.status, c.updated_at = self.worker, now, "running", now

    def _recover(self, campaign_id: int, *, shared: bool) -> int:
        """Attempts a dead process left dialing: interrupted, never dialed again.

        Without a shared queue nobody else can be dialing this campaign (the lease
        says so) and nothing would deliver a dead process's jobs again.
        """
        now = self.app.clock.now()
        with self.app.db.session() as s:
            dialing = s.scalars(
                select(SurveyAttempt)
                .where(SurveyAttempt.campaign_id == campaign_id, SurveyAttempt.status == "dialing")
                .with_for_update()
            ).all()
            orphans = [a for a in dialing if not shared or holder_dead(a.claimed_by or "")]
            for a in orphans:
                self.book.interrupted(s, a, now)
            return len(orphans)

    # -- progress --------------------------------------------------------------------
    def _state(self, campaign_id: int, summary: RunSummary, stop_when_idle: bool) -> str | None:
        """Why the run ends now (done, paused, waiting), or None to keep going."""
        of_campaign = SurveyAttempt.campaign_id == campaign_id
        with self.app.db.read() as s:
            status = s.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
            if status in ("done", "paused"):
                return status
            busy = s.scalar(
                select(func.count()).where(of_campaign, SurveyAttempt.status.in_(IN_FLIGHT))
            )
            next_due: datetime | None = s.scalar(
                select(func.min(SurveyAttempt.not_before)).where(
                    of_campaign, SurveyAttempt.status == "planned"
                )
            )
        if busy or next_due is None:
            return None  # calls under way, or the dispatcher marks it done at its next tick
        now = self.app.clock.now()
        callable_at = self.policy.next_allowed(max(next_due, now))
        if callable_at <= now or not stop_when_idle:
            return None
        summary.next_due = callable_at
        return "waiting"

    def _finished(self, campaign_id: int) -> Counter[str]:
        with self.app.db.read() as s:
            rows = s.execute(
                select(SurveyAttempt.outcome, func.count())
                .where(SurveyAttempt.campaign_id == campaign_id, SurveyAttempt.status == "done")
                .group_by(SurveyAttempt.outcome)
            ).all()
        return Counter({str(outcome): int(n) for outcome, n in rows})

    def _count(self, campaign_id: int, summary: RunSummary, before: Counter[str]) -> None:
        """The calls finished since the run began, whichever worker placed them."""
        outcomes = self._finished(campaign_id) - before
        if outcomes != summary.outcomes:
            summary.outcomes, summary.dialed = outcomes, outcomes.total()
            if self.on_progress is not None:
                self.on_progress(summary)

    # -- stopping --------------------------------------------------------------------
    def _stop(self, campaign_id: int) -> None:
        """Stop placing calls: claims not yet dialing go back to planned, calls this
        process has under way finish, the lease is released."""
        of_mine = (
            SurveyAttempt.campaign_id == campaign_id,
            SurveyAttempt.claimed_by == self.worker,
        )
        with self.app.db.session() as s:
            s.execute(
                update(SurveyAttempt)
                .where(*of_mine, SurveyAttempt.status == "claimed")
                .values(status="planned", claimed_by=None, claimed_at=None)
            )
        while True:
            with self.app.db.read() as s:
                dialing = s.scalar(
                    select(func.count()).where(*of_mine, SurveyAttempt.status == "dialing")
                )
            if not dialing:
                break
            time.sleep(self.poll_s)
        with self.app.db.session() as s:
            c = s.get(Campaign, campaign_id)
            if c is not None and c.runner == self.worker:
                c.runner, c.updated_at = None, self.app.clock.now()


def run_campaign(
    app: Hotline,
    dialer: Dialer,
    campaign_id: int,
    *,
    max_seconds: float | None = None,
    stop_when_idle: bool = True,
    on_progress: Callable[[RunSummary], None] | None = None,
) -> RunSummary:
    """Dial a campaign's due attempts now; see the module docstring."""
    run = CampaignRun(app, dialer, on_progress=on_progress)
    return run.run(campaign_id, max_seconds=max_seconds, stop_when_idle=stop_when_idle)
