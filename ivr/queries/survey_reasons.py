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

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.store.models import Recording, SurveyAttempt, Transcript


@dataclass(frozen=True)
class Reason:
    ticket_id: int
    campaign_id: int
    at: datetime
    text: str  # "" while the recording waits for transcription


def unsatisfied_reasons(session: Session, ticket_ids: Collection[int]) -> dict[int, list[Reason]]:
    """The recorded reasons of the unsatisfied answers about these tickets, newest first."""
    if not ticket_ids:
        return {}
    rows = session.execute(
        select(SurveyAttempt, Recording, Transcript)
        .join(Recording, Recording.call_id == SurveyAttempt.call_id)
        .outerjoin(Transcript, Transcript.recording_id == Recording.id)
        .where(SurveyAttempt.ticket_id.in_(list(ticket_ids)), SurveyAttempt.score == "unsatisfied")
        .order_by(Recording.id.desc())
    ).all()
    found: dict[int, list[Reason]] = defaultdict(list)
    for attempt, recording, transcript in rows:
        text = (transcript.normalized_text or transcript.text) if transcript else ""
        found[attempt.ticket_id].append(
            Reason(attempt.ticket_id, attempt.campaign_id, recording.created_at, text)
        )
    return dict(found)
