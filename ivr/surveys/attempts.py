"""Survey attempts: claiming one for a call, recording how it ended, planning the next.

The dispatcher claims (`try_claim`) and the survey dial job finishes (`finish`), so
every dialing process applies the same rules: one claim per attempt (a committed
row update before the number is dialed), never a second dial of an attempt, a
follow-up attempt when the outcome allows one.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ivr.phones import mask_number
from ivr.spoken import digits_spoken
from ivr.store.models import SurveyAttempt, Ticket, TicketStatus
from ivr.surveys.campaigns import is_do_not_call, policy_for
from ivr.surveys.dialer import DialResult
from ivr.surveys.outcomes import SCORES
from ivr.surveys.policy import RETRYABLE

if TYPE_CHECKING:
    from ivr.app import Hotline

log = logging.getLogger(__name__)

VALID_SCORES = {"satisfied", "basically_satisfied", "unsatisfied"}


def worker_id() -> str:
    """Who claims or dials: host:pid:nonce (stored in `claimed_by` and `Campaign.runner`)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def holder_dead(holder: str) -> bool:
    """True when `holder` (a worker_id) is a process on this host that no longer exists."""
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


@dataclass
class RunSummary:
    dialed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    skipped: int = 0
    expired: int = 0
    postponed: int = 0
    recovered: int = 0
    state: str = "running"  # done | paused | waiting | time-limit
    next_due: datetime | None = None


class AttemptBook:
    """The attempt rules, for one claiming worker."""

    def __init__(self, app: Hotline, worker: str) -> None:
        self.app, self.worker = app, worker
        self.cfg = app.settings.surveys
        self.policy = policy_for(app)

    def interrupted(self, s: Session, a: SurveyAttempt, now: datetime) -> None:
        """An attempt whose dialer died: done, never dialed again; a follow-up if allowed."""
        answered = a.score in VALID_SCORES
        a.status, a.finished_at = "done", a.finished_at or now
        a.outcome = "answered" if answered else a.outcome or "interrupted"
        log.warning(
            "attempt %d (%s) was interrupted by a crash; not dialed again",
            a.id,
            mask_number(a.phone),
        )
        if not answered:
            self.follow_up(s, a, now)

    def try_claim(self, s: Session, a: SurveyAttempt, now: datetime, summary: RunSummary) -> bool:
        """Claim a due attempt for a call, or settle it (skipped, expired, postponed)."""
        ticket = s.get(Ticket, a.ticket_id)
        assert ticket is not None
        if ticket.status != TicketStatus.COMPLETED or ticket.survey_outcome is not None:
            a.status, a.outcome, a.finished_at = "skipped", "already_surveyed", now
            summary.skipped += 1
            return False
        if ticket.no_callback or is_do_not_call(self.app, s, a.phone):
            a.status, a.outcome, a.finished_at = "skipped", "do_not_call", now
            summary.skipped += 1
            return False
        if ticket.completed_at and now > self.policy.deadline(ticket.completed_at):
            a.status, a.outcome, a.finished_at = "expired", "deadline", now
            summary.expired += 1
            return False
        if self.called_today(s, a, now):
            a.not_before = self.policy.next_day(now)
            summary.postponed += 1
            return False
        won = s.execute(
            update(SurveyAttempt)
            .where(SurveyAttempt.id == a.id, SurveyAttempt.status == "planned")
            .values(status="claimed", claimed_by=self.worker, claimed_at=now)
        ).rowcount
        return won == 1  # 0: another process claimed it first

    def variables(self, ticket: Ticket, attempt_id: int) -> dict[str, Any]:
        """What the survey flow says and records: the line, the ticket number, the attempt."""
        settings = self.app.settings
        line = settings.line(ticket.line_number) or settings.line(settings.hotline)
        assert line is not None
        return {
            "attempt_id": attempt_id,
            "line_number": line.number,
            "line_name": line.name,
            "ticket_no": ticket.number,
            "ticket_no_spoken": digits_spoken(ticket.number),
        }

    def called_today(self, s: Session, a: SurveyAttempt, now: datetime) -> bool:
        """One survey call per number per (local) day, across campaigns."""
        today = self.policy.local_day(now)
        start = datetime.combine(today, datetime.min.time(), self.app.settings.tz)
        other = SurveyAttempt.__table__.alias("other")
        return bool(
            s.scalar(
                select(
                    exists().where(
                        and_(
                            other.c.phone == a.phone,
                            other.c.id != a.id,
                            other.c.claimed_at >= start,
                            other.c.claimed_at < start + timedelta(days=1),
                        )
                    )
                )
            )
        )

    def finish(self, attempt_id: int, result: DialResult) -> str:
        now = self.app.clock.now()
        with self.app.db.session() as s:
            a = s.get(SurveyAttempt, attempt_id)
            assert a is not None
            if result.outcome == "answered":
                # The survey flow already stored the score (record_score) when the key came.
                score = a.score or result.score
                outcome = "answered" if score in VALID_SCORES else "no_response"
                a.score = score if score in SCORES else "no_response"
            else:
                outcome = result.outcome
            a.status, a.outcome, a.finished_at = "done", outcome, now
            if outcome in RETRYABLE:
                self.follow_up(s, a, now)
            return outcome

    def follow_up(self, s: Session, a: SurveyAttempt, now: datetime) -> None:
        if a.attempt_no >= self.cfg.max_attempts:
            return
        ticket = s.get(Ticket, a.ticket_id)
        when = self.policy.retry_at(now)
        if ticket and ticket.completed_at and when > self.policy.deadline(ticket.completed_at):
            return
        try:
            with s.begin_nested():
                s.add(
                    SurveyAttempt(
                        campaign_id=a.campaign_id,
                        ticket_id=a.ticket_id,
                        attempt_no=a.attempt_no + 1,
                        phone=a.phone,
                        status="planned",
                        not_before=when,
                        round=a.round,
                    )
                )
        except IntegrityError:
            pass  # already planned (a replayed finish)
