"""Transcribe stored recordings (file ASR) and fill in their drafts.

Used for recordings that arrive as files (Twilio, `ivr simulate --audio`) and for
those that waited while no model was installed (`ivr transcribe --pending`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ivr.asr.audio import AudioError
from ivr.asr.files import transcribe_file
from ivr.asr.models import LoadedModel
from ivr.calls.recordings import add_transcript
from ivr.runtime import metrics
from ivr.store.models import Recording, RecordingStatus

if TYPE_CHECKING:
    from ivr.app import Hotline

log = logging.getLogger(__name__)

TRANSCRIBE_JOB = "transcribe"


def transcribe_recording(app: Hotline, recording_id: int, model: LoadedModel) -> bool:
    """Transcribe one recording once; False (and status failed) when its audio is broken."""
    with app.db.session() as s:
        rec = s.get(Recording, recording_id)
        if rec is None or rec.transcript is not None or not rec.path:
            return rec is not None
        path = Path(rec.path)
    try:
        result = transcribe_file(path, model, end_of_speech_ms=app.settings.asr.end_of_speech_ms)
    except AudioError as exc:
        log.warning("recording %d cannot be transcribed: %s", recording_id, exc)
        with app.db.session() as s:
            rec = s.get(Recording, recording_id)
            if rec is not None:
                rec.status, rec.error = RecordingStatus.FAILED, str(exc)
        return False
    if result.rtf is not None:
        metrics.ASR_RTF.observe(result.rtf)
    data = result.to_dict()
    with app.db.session() as s:
        rec = s.get(Recording, recording_id)
        assert rec is not None
        add_transcript(
            app,
            s,
            rec,
            text=result.text,
            model=result.model_name,
            words=data["words"],
            confidence=result.confidence,
            rtf=result.rtf,
        )
    return True


def pending_recordings(app: Hotline) -> list[int]:
    with app.db.session() as s:
        return list(
            s.scalars(
                select(Recording.id)
                .where(Recording.status == RecordingStatus.PENDING)
                .order_by(Recording.id)
            )
        )


def transcribe_pending(app: Hotline, model: LoadedModel) -> tuple[int, int]:
    done = failed = 0
    for rid in pending_recordings(app):
        if transcribe_recording(app, rid, model):
            done += 1
        else:
            failed += 1
    return done, failed


def transcribe_job(app: Hotline) -> Any:
    """The transcription job: file ASR into the transcript and the draft; once per recording."""
    from ivr.asr.models import ModelError, get_model

    def run(payload: Mapping[str, Any]) -> None:
        recording_id = int(payload["recording_id"])
        try:
            model = get_model(app.settings.asr, app.settings.base_dir)
        except ModelError as exc:
            log.warning("recording %d waits for `ivr transcribe --pending`: %s", recording_id, exc)
            return
        try:
            transcribe_recording(app, recording_id, model)
        except IntegrityError:
            log.info("recording %d was transcribed by another worker", recording_id)

    return run
