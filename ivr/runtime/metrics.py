"""Prometheus metrics: calls, ASR speed, queue depth, webhook latency, survey results.

Counters live in this process; under gunicorn (several processes) set
PROMETHEUS_MULTIPROC_DIR to an empty folder and every worker's values are added
up at scrape time. Queue depth and survey results are read when scraped (from
the broker and the database), so they are right whichever process answers.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from ivr.store.models import Call, Recording, RecordingStatus, SurveyAttempt

if TYPE_CHECKING:
    from ivr.app import Hotline

CONTENT_TYPE = CONTENT_TYPE_LATEST

CALLS_IN_PROGRESS = Gauge(
    "ivr_calls_in_progress",
    "Calls connected or being dialed now.",
    ["direction"],
    multiprocess_mode="livesum",
)
CALLS = Counter(
    "ivr_calls",
    "Finished calls: inbound/outbound by telephony outcome, survey by survey outcome.",
    ["direction", "outcome"],
)
CALLS_INTERRUPTED = Counter(
    "ivr_calls_interrupted",
    "Calls cut by a crash of the process holding them, closed at its next start.",
    ["provider"],
)
RECORDINGS_LOST = Counter(
    "ivr_recordings_lost",
    "Statements being recorded when a call was cut whose audio could not be recovered.",
    ["provider"],
)
ASR_RTF = Histogram(
    "ivr_asr_real_time_factor",
    "Transcription time divided by audio duration.",
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0),
)
WEBHOOK_LATENCY = Histogram(
    "ivr_webhook_seconds",
    "Time to answer an HTTP request, by endpoint.",
    ["endpoint", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


@contextmanager
def call_in_progress(direction: str) -> Iterator[None]:
    gauge = CALLS_IN_PROGRESS.labels(direction=direction)
    gauge.inc()
    try:
        yield
    finally:
        gauge.dec()


class QueueDepth(Protocol):
    def depth(self) -> dict[str, int]: ...


class _ScrapeTime(Collector):
    """Values read at scrape time: queue depth from the broker, survey results from the DB."""

    def __init__(self, app: Hotline, jobs: QueueDepth | None) -> None:
        self.app, self.jobs = app, jobs

    def collect(self) -> Iterable[GaugeMetricFamily]:
        if self.jobs is not None:
            depth = GaugeMetricFamily(
                "ivr_queue_depth", "Jobs queued, delayed or running, by queue.", labels=["queue"]
            )
            for queue, n in self.jobs.depth().items():
                depth.add_metric([queue], n)
            yield depth
        open_calls = GaugeMetricFamily(
            "ivr_calls_open",
            "Calls started in the last hour and not ended, on every node (from the database).",
            labels=["direction"],
        )
        since = datetime.now(UTC) - timedelta(hours=1)
        with self.app.db.read() as s:
            rows = s.execute(
                select(Call.direction, func.count())
                .where(Call.ended_at.is_(None), Call.started_at >= since)
                .group_by(Call.direction)
            ).all()
        for direction, n in rows:
            open_calls.add_metric([str(direction)], n)
        yield open_calls
        lost = GaugeMetricFamily(
            "ivr_recordings_lost",
            "Recordings whose media could not be fetched after every attempt (from the database).",
            labels=["provider"],
        )
        with self.app.db.read() as s:
            rows = s.execute(
                select(Recording.provider, func.count())
                .where(Recording.status == RecordingStatus.LOST)
                .group_by(Recording.provider)
            ).all()
        for provider, n in rows:
            lost.add_metric([str(provider)], n)
        yield lost
        results = GaugeMetricFamily(
            "ivr_survey_results", "Survey attempts answered, by score.", labels=["score"]
        )
        with self.app.db.read() as s:
            rows = s.execute(
                select(SurveyAttempt.score, func.count())
                .where(SurveyAttempt.score.is_not(None))
                .group_by(SurveyAttempt.score)
            ).all()
        for score, n in rows:
            results.add_metric([str(score)], n)
        yield results


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def render(app: Hotline, jobs: QueueDepth | None) -> bytes:
    """The text exposition of every metric, all processes' when multiprocess."""
    if multiprocess_dir():
        counted = CollectorRegistry()
        multiprocess.MultiProcessCollector(counted)  # type: ignore[no-untyped-call]
    else:
        counted = REGISTRY
    read = CollectorRegistry(auto_describe=False)
    read.register(_ScrapeTime(app, jobs))
    return generate_latest(counted) + generate_latest(read)
