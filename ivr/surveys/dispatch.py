"""Survey calls as jobs: the scheduler queues due attempts, any worker dials them.

The active scheduler (one at a time, see `ivr.runtime.lease`) claims due attempts of
running campaigns (a committed row update, `AttemptBook.try_claim`) and submits one
`survey.dial` job per attempt, keeping at most `jobs.dispatch_backlog` attempts of
a campaign claimed or dialing. A worker's dial job waits for a concurrent-call
slot, moves the attempt from claimed to dialing (only one delivery can), waits
for its start under the global pace, dials and records the outcome.

A job delivered again after its worker died finds the attempt dialing: it is
marked interrupted and never dialed twice; a follow-up attempt is planned where
the rules allow, and the scheduler queues it. Claimed attempts are submitted
again on every tick (the job key makes that a no-op while one is queued), so a
scheduler that died between claiming and submitting loses nothing.

`ivr campaign run` (`ivr.surveys.run`) uses the same two halves for one campaign.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update

from ivr.phones import mask_number
from ivr.runtime import metrics
from ivr.runtime.logs import log_context
from ivr.store.models import Campaign, SurveyAttempt, Ticket
from ivr.surveys.attempts import AttemptBook, RunSummary, worker_id
from ivr.surveys.dialer import Dialer, DialResult
from ivr.surveys.limits import CallLimits

if TYPE_CHECKING:
    from ivr.app import Hotline
    from ivr.jobs.protocol import Jobs

log = logging.getLogger(__name__)

DIAL_JOB = "survey.dial"
IN_FLIGHT = ("claimed", "dialing")


def dial_key(attempt_id: int) -> str:
    return f"dial:{attempt_id}"


class CampaignDispatcher:
    """The scheduler's half: due attempts claimed and queued as dial jobs."""

    def __init__(self, app: Hotline, jobs: Jobs, worker: str | None = None) -> None:
        self.app, self.jobs = app, jobs
        self.book = AttemptBook(app, worker or f"{worker_id()}:dispatch")
        self.backlog = app.settings.jobs.dispatch_backlog

    def tick(self) -> int:
        """Queue due attempts of every running campaign; the number of jobs submitted."""
        with self.app.db.session() as s:
            ids = list(s.scalars(select(Campaign.id).where(Campaign.status == "running")))
        return sum(self.dispatch(cid) for cid in ids)

    def dispatch(self, campaign_id: int, summary: RunSummary | None = None) -> int:
        """Claim and queue one campaign's due attempts; those settled without a call
        (skipped, expired, postponed) are counted in `summary`."""
        now = self.app.clock.now()
        if summary is None:
            summary = RunSummary()
        with self.app.db.session() as s:
            c = s.get(Campaign, campaign_id, with_for_update=True)
            if c is None or c.status != "running":
                return 0
            # The runner lease: `ivr campaign run` refuses a campaign being dispatched.
            c.runner, c.heartbeat_at = self.book.worker, now
            of_campaign = SurveyAttempt.campaign_id == campaign_id
            claimed = list(
                s.scalars(
                    select(SurveyAttempt.id).where(of_campaign, SurveyAttempt.status == "claimed")
                )
            )
            busy = s.scalar(
                select(func.count()).where(of_campaign, SurveyAttempt.status.in_(IN_FLIGHT))
            )
            room = self.backlog - int(busy or 0)
            if room > 0 and self.book.policy.may_call(now):
                due = s.scalars(
                    select(SurveyAttempt)
                    .where(
                        of_campaign,
                        SurveyAttempt.status == "planned",
                        SurveyAttempt.not_before <= now,
                    )
                    .order_by(SurveyAttempt.not_before, SurveyAttempt.id)
                    .limit(room)
                    .with_for_update(skip_locked=True)
                ).all()
                for a in due:
                    if self.book.try_claim(s, a, now, summary):
                        claimed.append(a.id)
            left = s.scalar(
                select(func.count()).where(
                    of_campaign, SurveyAttempt.status.in_(("planned", *IN_FLIGHT))
                )
            )
            if not left:
                c.status, c.runner, c.updated_at = "done", None, now
                log.info("campaign %d: every attempt is finished", campaign_id)
        # Submitted after the claims are committed: a job never sees an unclaimed attempt.
        return sum(
            self.jobs.submit(DIAL_JOB, {"attempt_id": aid}, key=dial_key(aid)) for aid in claimed
        )


class DialJob:
    """The worker's half: one survey call for one claimed attempt."""

    def __init__(
        self, app: Hotline, dialer: Dialer, limits: CallLimits, worker: str | None = None
    ) -> None:
        self.app, self.dialer, self.limits = app, dialer, limits
        self.book = AttemptBook(app, worker or worker_id())

    def __call__(self, payload: Mapping[str, Any]) -> None:
        try:
            attempt_id = int(payload["attempt_id"])
        except (KeyError, TypeError, ValueError):
            log.error("survey.dial job without a valid attempt_id: %r", dict(payload))
            return
        if not self._still_due(attempt_id):
            return
        with self.limits.slots.hold():
            started = self._start(attempt_id)
            if started is None:
                return
            phone, variables = started
            # Paced after the update, right before the dialer: the update can wait for
            # a lock (SQLite's write lock for tens of ms), which would bunch starts.
            # A worker killed while it waits for its start leaves the attempt dialing:
            # interrupted when its job comes again, never dialed twice.
            self.limits.pacer.acquire()
            with log_context(ticket=variables["ticket_no"], attempt_id=attempt_id):
                self._dial(attempt_id, phone, variables)

    def _dial(self, attempt_id: int, phone: str, variables: dict[str, Any]) -> None:
        with metrics.call_in_progress("survey"):
            try:
                result = self.dialer.dial(
                    phone,
                    flow="survey",
                    variables=variables,
                    ring_timeout=self.app.settings.surveys.ring_timeout_s,
                )
            except Exception:
                log.exception("dialing attempt %d failed", attempt_id)
                result = DialResult("failed")
        outcome = self.book.finish(attempt_id, result)
        metrics.CALLS.labels(direction="survey", outcome=outcome).inc()
        log.info("attempt %d (%s): %s", attempt_id, mask_number(phone), outcome)

    def _still_due(self, attempt_id: int) -> bool:
        """False for a delivery that must not dial: gone, finished, or a dead worker's call."""
        now = self.app.clock.now()
        with self.app.db.session() as s:
            a = s.get(SurveyAttempt, attempt_id, with_for_update=True)
            if a is None:
                log.error("survey.dial: no attempt %d", attempt_id)
                return False
            if a.status == "dialing":
                # Delivered again: the worker that was dialing it died mid-call.
                self.book.interrupted(s, a, now)
                return False
            if a.status != "claimed":
                return False
            if not self.book.policy.may_call(now):
                a.status, a.claimed_by, a.claimed_at = "planned", None, None
                a.not_before = self.book.policy.next_allowed(now)
                log.info("attempt %d waits for the next calling window", attempt_id)
                return False
            return True

    def _start(self, attempt_id: int) -> tuple[str, dict[str, Any]] | None:
        with self.app.db.session() as s:
            won = s.execute(
                update(SurveyAttempt)
                .where(SurveyAttempt.id == attempt_id, SurveyAttempt.status == "claimed")
                .values(status="dialing", claimed_by=self.book.worker)
            ).rowcount
            if won != 1:
                return None
            a = s.get(SurveyAttempt, attempt_id)
            assert a is not None
            ticket = s.get(Ticket, a.ticket_id)
            assert ticket is not None
            return a.phone, self.book.variables(ticket, attempt_id)
