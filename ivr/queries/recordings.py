"""Recordings whose media could not be fetched: the dead fetch jobs the database remembers.

Embedded (no Redis), the job queue lives inside `ivr serve`; `ivr jobs dead` run
beside it lists these from the database instead.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.jobs.dead import DeadLetter
from ivr.jobs.queue import queue_for
from ivr.phones import mask_text
from ivr.store.models import Call, Recording, RecordingStatus
from ivr.transports.twilio.media import FETCH_JOB


def lost_fetches(session: Session, limit: int = 100) -> list[DeadLetter]:
    rows = session.execute(
        select(Recording, Call.provider_call_id)
        .join(Call, Recording.call_id == Call.id)
        .where(Recording.status == RecordingStatus.LOST)
        .order_by(Recording.id.desc())
        .limit(limit)
    ).all()
    return [
        DeadLetter(
            message_id=f"recording:{rec.id}",
            job=FETCH_JOB,
            queue=queue_for(FETCH_JOB),
            payload={"call_sid": call_sid, "recording_sid": rec.provider_recording_id},
            retries=0,
            failed_at=None,
            error=mask_text(rec.error or ""),
        )
        for rec, call_sid in rows
    ]
