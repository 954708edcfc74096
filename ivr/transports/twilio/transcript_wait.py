"""Whether a Twilio statement's transcript exists yet, for the hold between `<Record>` and
the flow's next step.

Each poll is one webhook request: it waits up to POLL_S on the server (Twilio's caller
hears silence meanwhile; the webhook timeout is 15 s) and answers with a `<Redirect>` to
the next poll, so the number of polls bounds the wait: at most `asr.transcript_wait_s`.
Without an installed ASR model nothing would ever transcribe the recording, so the
caller is not held at all.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING

from ivr.asr.models import ModelError, locate
from ivr.calls.recordings import find_recording
from ivr.store.models import RecordingStatus
from ivr.transports.twilio import PROVIDER

if TYPE_CHECKING:
    from ivr.app import Hotline

log = logging.getLogger(__name__)

POLL_S = 1.0
CHECK_EVERY_S = 0.2
# Whether a model is installed is looked up again after this long (a model installed
# while serving is used from then on); the look-up parses the manifest and lists the
# model's files, milliseconds of CPU that each record step would spend.
MODEL_CHECK_S = 60.0


class TranscriptWait:
    def __init__(self, app: Hotline) -> None:
        self.app = app
        self._model: tuple[object, float, bool] | None = None  # (asr config, checked at, found)

    @property
    def max_polls(self) -> int:
        """0 (no hold) without an ASR model; else enough polls for `transcript_wait_s`."""
        settings = self.app.settings
        return math.ceil(settings.asr.transcript_wait_s / POLL_S) if self._has_model() else 0

    def _has_model(self) -> bool:
        settings, now = self.app.settings, time.monotonic()
        known = self._model
        if known is None or known[0] is not settings.asr or now - known[1] > MODEL_CHECK_S:
            try:
                locate(settings.asr, settings.base_dir)
                found = True
            except ModelError:
                found = False
            self._model = known = (settings.asr, now, found)
        return known[2]

    def ready(self, recording_sid: str) -> bool:
        """True once the recording is transcribed (or cannot be), waiting up to POLL_S."""
        deadline = time.monotonic() + POLL_S
        while True:
            if self._done(recording_sid):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(CHECK_EVERY_S)

    def _done(self, recording_sid: str) -> bool:
        with self.app.db.read() as s:
            rec = find_recording(s, PROVIDER, recording_sid)
            return rec is not None and (
                rec.transcript is not None
                or rec.status in (RecordingStatus.FAILED, RecordingStatus.LOST)
            )
