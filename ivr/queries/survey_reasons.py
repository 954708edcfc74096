"""不满意原因: what an unsatisfied citizen said after pressing 3 on a survey call.

The survey flow records the reason on the survey call; transcription turns the
recording into a Transcript like any statement. These are the transcripts, per
ticket, newest first (empty text while a recording is not transcribed yet).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.store.models import Recording, SurveyAttempt, Ticket, Transcript


@dataclass(frozen=True)
class Reason:
    ticket_id: int
    ticket_number: str
    campaign_id: int
    at: datetime
    text: str  # "" while the recording waits for transcription


def _reasons(session: Session, where: Any) -> list[Reason]:
    rows = session.execute(
        select(SurveyAttempt, Ticket.number, Recording, Transcript)
        .join(Ticket, Ticket.id == SurveyAttempt.ticket_id)
        .join(Recording, Recording.call_id == SurveyAttempt.call_id)
        .outerjoin(Transcript, Transcript.recording_id == Recording.id)
        .where(where, SurveyAttempt.score == "unsatisfied")
        .order_by(Recording.id.desc())
    ).all()
    return [
        Reason(
            attempt.ticket_id,
            number,
            attempt.campaign_id,
            recording.created_at,
            (transcript.normalized_text or transcript.text) if transcript else "",
        )
        for attempt, number, recording, transcript in rows
    ]


def unsatisfied_reasons(session: Session, ticket_ids: Collection[int]) -> dict[int, list[Reason]]:
    """The recorded reasons of the unsatisfied answers about these tickets, newest first."""
    found: dict[int, list[Reason]] = defaultdict(list)
    if ticket_ids:
        for r in _reasons(session, SurveyAttempt.ticket_id.in_(list(ticket_ids))):
            found[r.ticket_id].append(r)
    return dict(found)


def campaign_reasons(session: Session, campaign_ids: Collection[int]) -> dict[int, list[Reason]]:
    """The same, per campaign: what a campaign's unsatisfied citizens said."""
    found: dict[int, list[Reason]] = defaultdict(list)
    if campaign_ids:
        for r in _reasons(session, SurveyAttempt.campaign_id.in_(list(campaign_ids))):
            found[r.campaign_id].append(r)
    return dict(found)
