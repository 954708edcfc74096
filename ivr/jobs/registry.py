"""The jobs a process can run, registered on its job queue.

Every process registers the recording jobs (web workers submit them; embedded,
they also run them). The survey dial job is registered where a dialer exists
(`ivr serve --role worker` or `all`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ivr.calls.transcription import TRANSCRIBE_JOB, transcribe_job
from ivr.surveys.dialer import RetriesStarts
from ivr.surveys.dispatch import DIAL_JOB, DialJob
from ivr.surveys.limits import CallLimits
from ivr.transports.twilio.media import FETCH_JOB, RecordingFetcher, RecordingIntake

if TYPE_CHECKING:
    from ivr.app import Hotline
    from ivr.jobs import DramatiqJobs
    from ivr.surveys.dialer import Dialer


def register_jobs(
    app: Hotline, jobs: DramatiqJobs, dialer: Dialer | None = None, worker: str | None = None
) -> RecordingIntake:
    """Register the recording jobs (and the dial job with a dialer); the recording intake.

    `worker` names this process in the attempts it dials (default: a fresh worker id).
    """
    cfg = app.settings.twilio
    intake = RecordingIntake(app, cfg, RecordingFetcher(cfg), jobs)
    jobs.register(TRANSCRIBE_JOB, transcribe_job(app))
    jobs.register(FETCH_JOB, intake.fetch_job)
    if dialer is not None:
        limits = CallLimits(app.settings.surveys, app.settings.jobs, jobs.client)
        if isinstance(dialer, RetriesStarts):
            dialer.use_pacer(limits.pacer)
        jobs.register(DIAL_JOB, DialJob(app, dialer, limits, worker))
    return intake
