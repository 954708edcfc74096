"""The job queue on Dramatiq: in process without Redis, shared through Redis with it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from ivr.app import Hotline
from ivr.cli import main
from ivr.config import JobsConfig, Settings
from ivr.jobs import DramatiqJobs, dead_letters, requeue_dead
from ivr.jobs.broker import BrokerError
from ivr.jobs.protocol import RetryJob, UnknownJob
from ivr.jobs.registry import register_jobs
from ivr.runtime.lease import Lease
from ivr.services import Actor
from ivr.services.campaigns import create_campaign, resume_campaign
from ivr.store import Campaign, Ticket
from ivr.surveys.scheduler import DispatchScheduler

from .conftest import REDIS_URL, ROOT
from .surveykit import ScriptedDialer, completed_tickets


def quick(**kw: Any) -> JobsConfig:
    return JobsConfig(max_retries=2, min_backoff_ms=20, max_backoff_ms=50, **kw)


@pytest.fixture(params=["in-process", "redis"])
def jobs(request: pytest.FixtureRequest) -> Iterator[DramatiqJobs]:
    if request.param == "redis":
        ns = request.getfixturevalue("redis_namespace")
        q = DramatiqJobs(quick(broker_url=REDIS_URL, namespace=ns))
        q.start_worker()
    else:
        q = DramatiqJobs(quick())
    yield q
    q.close(wait=False, timeout=5)


def test_jobs_run_retry_then_succeed_and_keys_dedupe(jobs: DramatiqJobs) -> None:
    ran: list[Any] = []
    tries = {"n": 0}
    gate = threading.Event()

    def slow(p: Mapping[str, Any]) -> None:
        gate.wait(5)
        ran.append(p["x"])

    def flaky(p: Mapping[str, Any]) -> None:
        tries["n"] += 1
        if tries["n"] < 2:
            raise RetryJob("recording not there yet", 0.05)
        ran.append("fetched")

    jobs.register("transcribe", slow)
    jobs.register("twilio.fetch_recording", flaky)
    assert jobs.submit("transcribe", {"x": 1}, key="transcribe:1")
    assert not jobs.submit("transcribe", {"x": 1}, key="transcribe:1")  # queued already
    assert jobs.submit("twilio.fetch_recording", {})
    gate.set()
    assert jobs.wait_idle(20)
    assert sorted(map(str, ran)) == ["1", "fetched"] and tries["n"] == 2
    assert jobs.submit("transcribe", {"x": 2}, key="transcribe:1")  # key free once done
    assert jobs.wait_idle(20)
    assert jobs.depth() == {"asr": 0, "calls": 0, "fetch": 0}
    assert dead_letters(jobs) == []


def test_fetches_waiting_on_stalled_hosts_leave_the_other_jobs_their_threads(
    jobs: DramatiqJobs,
) -> None:
    """Every fetch thread and more hang on media hosts: transcription still runs."""
    stalled, hanging, transcribed = threading.Event(), threading.Semaphore(0), threading.Event()

    def fetch(p: Mapping[str, Any]) -> None:
        hanging.release()
        stalled.wait(30)

    jobs.register("twilio.fetch_recording", fetch)
    jobs.register("transcribe", lambda p: transcribed.set())
    n = jobs.cfg.fetch_threads + jobs.cfg.worker_threads
    try:
        for i in range(n):
            assert jobs.submit("twilio.fetch_recording", {"i": i}, key=f"fetch:{i}")
        for _ in range(jobs.cfg.fetch_threads):
            assert hanging.acquire(timeout=20)  # the fetch threads all hang
        assert jobs.submit("transcribe", {"recording_id": 1}, key="transcribe:1")
        assert transcribed.wait(20)
        assert not stalled.is_set()
    finally:
        stalled.set()
    assert jobs.wait_idle(20)


def test_failing_job_becomes_a_dead_letter_that_can_be_run_again(jobs: DramatiqJobs) -> None:
    fixed = threading.Event()

    def dial(p: Mapping[str, Any]) -> None:
        if not fixed.is_set():
            raise ValueError("carrier refused 13800138000")

    jobs.register("survey.dial", dial)
    jobs.submit("survey.dial", {"attempt_id": 7}, key="dial:7")
    assert jobs.wait_idle(20)
    [letter] = dead_letters(jobs)
    assert letter.job == "survey.dial" and letter.payload == {"attempt_id": 7}
    assert letter.retries >= 2 and letter.failed_at is not None
    assert letter.error == "ValueError: carrier refused 138****8000"  # masked
    fixed.set()
    requeue_dead(jobs, letter.message_id)
    assert jobs.wait_idle(20)
    assert dead_letters(jobs) == []


def test_unknown_job_is_refused_in_process() -> None:
    q = DramatiqJobs(quick())
    with pytest.raises(UnknownJob):
        q.submit("nonsense", {})
    q.close(wait=False)


def test_bad_broker_url_is_a_clear_error() -> None:
    with pytest.raises(BrokerError, match="not reachable"):
        DramatiqJobs(JobsConfig(broker_url="redis://127.0.0.1:1/0"))
    with pytest.raises(BrokerError, match="not a Redis URL"):
        DramatiqJobs(JobsConfig(broker_url="http://example.org"))


@pytest.mark.db  # its own database, not the `settings` fixture
def test_cli_lists_dead_jobs_from_redis(
    base_settings: Settings, tmp_path: Path, redis_namespace: str
) -> None:
    q = DramatiqJobs(quick(broker_url=REDIS_URL, namespace=redis_namespace))

    def broken(p: Mapping[str, Any]) -> None:
        raise RuntimeError("audio unreadable")

    q.register("transcribe", broken)
    q.start_worker()
    q.submit("transcribe", {"recording_id": 42})
    assert q.wait_idle(20)
    q.close(wait=False)
    cfg = tmp_path / "config.yaml"
    text = (ROOT / "config.yaml").read_text()
    cfg.write_text(text.replace("namespace: ivr ", f"namespace: {redis_namespace} "))
    runner = CliRunner()
    env = {"REDIS_URL": REDIS_URL, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}"}
    out = runner.invoke(
        main,
        ["--config", str(cfg), "jobs", "dead", "--json"],
        env=env,
    )
    assert out.exit_code == 0, out.output
    [row] = json.loads(out.output)
    assert row["job"] == "transcribe" and row["payload"] == {"recording_id": 42}
    assert row["error"] == "RuntimeError: audio unreadable"
    out = runner.invoke(
        main,
        ["--config", str(cfg), "jobs", "retry", "nope"],
        env=env,
    )
    assert out.exit_code == 1 and "no dead letter 'nope'" in out.output


def test_embedded_scheduler_and_in_process_worker_survey_a_campaign(
    hotline: Hotline, tmp_path: Path
) -> None:
    """No Redis: the same dispatch and dial job as production, inside one process."""
    phones = [f"1390000{i:04d}" for i in range(6)]
    completed_tickets(hotline, phones, datetime(2026, 11, 23, 1, 0, tzinfo=UTC))
    cid, _ = create_campaign(hotline, Actor.system("test"), "embedded")
    resume_campaign(hotline, Actor.system("test"), cid)
    jobs = DramatiqJobs(quick())
    dialer = ScriptedDialer(hotline, dict.fromkeys(phones, "satisfied"), hold_s=0.05)
    register_jobs(hotline, jobs, dialer)
    scheduler = DispatchScheduler(hotline, jobs, Lease(hotline.db, "scheduler", tmp_path), 0.1)
    assert scheduler.tick() == len(phones)
    assert jobs.wait_idle(30)
    assert scheduler.tick() == 0  # nothing left: the campaign is done
    jobs.close(wait=False)
    scheduler.lease.release()
    assert sorted(n for n, _ in dialer.calls) == phones
    assert dialer.max_active <= hotline.settings.surveys.max_concurrent
    with hotline.db.session() as s:
        assert s.get(Campaign, cid).status == "done"  # type: ignore[union-attr]
        outcomes = set(s.scalars(select(Ticket.survey_outcome)))
    assert outcomes == {"satisfied"}
