"""人工回访: a person called the caller back and records what they said, as a survey
attempt of the ticket's current round, so the survey reports count it like an
automatic one and the ticket follows the answer as it would after a keypress."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import func, select

from ivr.services.tickets import lock_ticket, record_survey_outcome
from ivr.services.unit import Actor, IllegalTransition, Invalid, audit, unit_of_work
from ivr.store.models import SurveyAttempt, TicketStatus
from ivr.surveys.outcomes import RESOLVED

if TYPE_CHECKING:
    from ivr.app import Hotline

S = TicketStatus
# The answers a person records: a score, or that the caller could not be reached.
CALLBACK_SCORES = ("satisfied", "basically_satisfied", "unsatisfied", "unreached")
NOTE_MAX = 2000


def record_callback(
    app: Hotline,
    actor: Actor,
    ref: str | int,
    score: str,
    resolved: str | None,
    note: str,
) -> int:
    """Record one manual callback; the attempt's id. `score` is one of CALLBACK_SCORES,
    `resolved` resolved / unresolved / None (not asked)."""
    if score not in CALLBACK_SCORES:
        raise Invalid(f"score must be one of {', '.join(CALLBACK_SCORES)}", field="score")
    if resolved is not None and resolved not in RESOLVED:
        raise Invalid(f"resolved must be one of {', '.join(RESOLVED)}", field="resolved")
    note = note.strip()
    if len(note) > NOTE_MAX:
        raise Invalid(f"note is longer than {NOTE_MAX} characters", field="note")
    reached = score != "unreached"
    at = app.clock.now()
    with unit_of_work(app) as s:
        ticket = lock_ticket(s, ref)
        if ticket.status in (S.DRAFT, S.REJECTED):
            raise IllegalTransition(f"ticket {ticket.number} is {ticket.status}; no callback")
        if not ticket.caller_number:
            raise IllegalTransition(f"ticket {ticket.number} has no caller number to call back")
        done = s.scalar(
            select(func.count()).where(
                SurveyAttempt.ticket_id == ticket.id, SurveyAttempt.manual.is_(True)
            )
        )
        attempt = SurveyAttempt(
            campaign_id=None,
            ticket_id=ticket.id,
            attempt_no=(done or 0) + 1,
            phone=ticket.caller_number,
            status="done",
            outcome="answered" if reached else "no_answer",
            score=score if reached else None,
            resolved=resolved if reached else None,
            manual=True,
            note=note or None,
            recorded_by=str(actor),
            finished_at=at,
            round=ticket.survey_round,
        )
        s.add(attempt)
        s.flush()
        if reached and ticket.first_contact_at is None:
            ticket.first_contact_at = at
        detail = {
            "attempt": attempt.id,
            "score": score,
            "resolved": attempt.resolved,
            "note": note or None,
        }
        audit(s, actor, "ticket.callback", ticket, detail, at)
        if reached:
            record_survey_outcome(s, actor, ticket.id, score, at, attempt.resolved)
        return attempt.id
