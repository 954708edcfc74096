"""Several processes on PostgreSQL and Redis: two workers, two schedulers, kill -9,
and `ivr campaign run` beside a worker.

The acceptance of issue 8: every target is called at most once per attempt, the
global calls-per-second and the concurrent-call cap hold across processes (as
measured from the dialer's own start and end times), and a worker killed in the
middle of a call or of a transcription loses nothing and duplicates nothing.
Issue 12: `ivr campaign run` dials through the same jobs and limits, so run
beside workers it keeps the same global limits.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select

from ivr.app import Hotline
from ivr.calls.simulate import simulate_inbound
from ivr.calls.transcription import TRANSCRIBE_JOB
from ivr.clock import FixedClock
from ivr.config import Settings
from ivr.jobs import DramatiqJobs, dead_letters
from ivr.services import Actor
from ivr.services.campaigns import create_campaign, resume_campaign
from ivr.store import Campaign, Recording, SurveyAttempt, Ticket, Transcript, upgrade

from .asr_fixtures import ffmpeg, ko_asr_config, speech_file
from .conftest import REDIS_URL, ROOT
from .scaleout import (
    Child,
    most_at_once,
    most_in_any_window,
    read_calls,
    scaleout_settings,
    spawn,
    wait_until,
)
from .surveykit import completed_tickets

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
COMPLETED = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
CPS, CAP = 4.0, 3  # the global limits under test

pytestmark = pytest.mark.postgres


def _campaign(settings: Settings, n: int) -> tuple[Hotline, int, list[str]]:
    upgrade(settings.resolved_database_url)
    app = Hotline.open(settings, FixedClock(NOW))
    phones = [f"139{i:08d}" for i in range(n)]
    completed_tickets(app, phones, COMPLETED)
    cid, planned = create_campaign(app, Actor.system("test"), "scale-out")
    assert planned == n
    resume_campaign(app, Actor.system("test"), cid)
    return app, cid, phones


def _limited_campaign(
    base: Settings, tmp: Path, database_url: str, namespace: str, n: int
) -> tuple[Settings, Hotline, int, list[str]]:
    """A running campaign of n targets under the limits CPS and CAP."""
    settings = scaleout_settings(
        base, tmp, database_url, namespace, calls_per_second=CPS, max_concurrent=CAP
    )
    return (settings, *_campaign(settings, n))


def _first_attempts_done(app: Hotline, cid: int) -> bool:
    with app.db.session() as s:
        open_ = s.scalar(
            select(func.count()).where(
                SurveyAttempt.campaign_id == cid,
                SurveyAttempt.attempt_no == 1,
                SurveyAttempt.status != "done",
            )
        )
    return open_ == 0


def _stop_all(children: list[Child]) -> None:
    for c in children:
        c.stop()


def test_two_workers_two_schedulers_call_each_target_once_within_global_limits(
    base_settings: Settings, tmp_path: Path, postgres_url: str, redis_namespace: str
) -> None:
    cps, cap, hold = CPS, CAP, 0.8
    settings, app, cid, phones = _limited_campaign(
        base_settings, tmp_path, postgres_url, redis_namespace, 36
    )
    calls_log = tmp_path / "calls.jsonl"
    at = NOW.isoformat()
    children: list[Child] = []
    try:
        for n in (1, 2):
            children.append(spawn("worker", settings, tmp_path, at, calls_log, hold, n))
        schedulers = [spawn("scheduler", settings, tmp_path, at, calls_log, 0, n) for n in (1, 2)]
        children += schedulers

        def leaders() -> list[Child]:
            return [c for c in schedulers if "lease scheduler taken" in c.text()]

        wait_until("a scheduler to lead", lambda: bool(leaders()), 30, children)
        wait_until("10 calls", lambda: len(read_calls(calls_log)) >= 20, 60, children)
        assert len(leaders()) == 1, "two schedulers were active at once"
        leader = leaders()[0]
        leader.kill9()  # the other scheduler takes over the rest of the campaign
        wait_until("every first attempt", lambda: _first_attempts_done(app, cid), 120, children)
        # Awaited: under load the killed leader may have queued the last attempts already.
        wait_until("the other scheduler to lead", lambda: len(leaders()) == 2, 30, children)
    finally:
        _stop_all(children)

    calls = read_calls(calls_log)
    starts = [c for c in calls if c["event"] == "start"]
    ends = {c["attempt_id"]: c["t"] for c in calls if c["event"] == "end"}
    # Each target called exactly once, each attempt dialed once.
    assert sorted(c["phone"] for c in starts) == sorted(phones)
    assert len({c["attempt_id"] for c in starts}) == len(starts)
    # Both workers dialed; together they kept the global limits.
    assert len({c["pid"] for c in starts}) == 2
    assert most_in_any_window([c["t"] for c in starts]) <= cps
    assert most_at_once([(c["t"], ends[c["attempt_id"]]) for c in starts]) <= cap
    with app.db.session() as s:
        outcomes = Counter(s.scalars(select(Ticket.survey_outcome)))
        assert outcomes == {"satisfied": len(phones)}
        assert s.get(Campaign, cid).status == "done"  # type: ignore[union-attr]
    app.close()


def test_campaign_run_beside_a_busy_worker_keeps_the_global_limits(
    base_settings: Settings, tmp_path: Path, postgres_url: str, redis_namespace: str
) -> None:
    """A worker and the scheduler are surveying one campaign when `ivr campaign run`
    starts on another: every call of both counts against one pace and one cap.
    (The former CampaignRunner paced and capped its own calls only: together with
    the worker's it went up to twice the rate and twice the cap.)"""
    cps, cap, hold = CPS, CAP, 0.8
    settings, app, busy_cid, busy_phones = _limited_campaign(
        base_settings, tmp_path, postgres_url, redis_namespace, 30
    )
    phones = [f"138{i:08d}" for i in range(30)]
    completed_tickets(app, phones, COMPLETED - timedelta(days=1))
    cid, planned = create_campaign(app, Actor.system("test"), "campaign run")
    assert planned == len(phones)
    calls_log = tmp_path / "calls.jsonl"
    at = NOW.isoformat()
    children = [
        spawn(role, settings, tmp_path, at, calls_log, hold, 1) for role in ("worker", "scheduler")
    ]
    worker = children[0]
    out = tmp_path / "campaign-run.log"
    cmd = [sys.executable, "-m", "tests.campaign_cli_child", str(tmp_path / "settings.json")]
    try:
        wait_until("the worker's first call", lambda: bool(read_calls(calls_log)), 60, children)
        with out.open("wb") as f:
            run = subprocess.Popen(
                [*cmd, at, str(calls_log), str(hold), "campaign", "run", str(cid)],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdout=f,
                stderr=subprocess.STDOUT,
            )
        try:
            run.wait(180)
        finally:
            if run.poll() is None:
                run.kill()
                run.wait(10)
        wait_until("the busy campaign", lambda: _first_attempts_done(app, busy_cid), 120, children)
    finally:
        _stop_all(children)
    text = out.read_text(errors="replace")
    assert run.returncode == 0, text
    assert f"done: dialed {len(phones)}; answered {len(phones)}" in text

    calls = read_calls(calls_log)
    starts = [c for c in calls if c["event"] == "start"]
    ends = {c["attempt_id"]: c["t"] for c in calls if c["event"] == "end"}
    # Every target of both campaigns called once.
    assert sorted(c["phone"] for c in starts) == sorted(busy_phones + phones)
    assert len({c["attempt_id"] for c in starts}) == len(starts)
    # One pace and one cap over every call, whichever process placed it.
    assert most_in_any_window([c["t"] for c in starts]) <= cps
    assert most_at_once([(c["t"], ends[c["attempt_id"]]) for c in starts]) <= cap
    with app.db.session() as s:
        run_attempts = set(
            s.scalars(select(SurveyAttempt.id).where(SurveyAttempt.campaign_id == cid))
        )
        assert Counter(s.scalars(select(Ticket.survey_outcome))) == {"satisfied": 60}
        assert s.get(Campaign, cid).status == "done"  # type: ignore[union-attr]
    # The campaign's calls are jobs like any other: `campaign run` and the worker shared them.
    run_pids = {c["pid"] for c in starts if c["attempt_id"] in run_attempts}
    assert run_pids == {run.pid, worker.proc.pid}
    app.close()


def test_worker_killed_mid_call_attempt_is_interrupted_not_dialed_twice(
    base_settings: Settings, tmp_path: Path, postgres_url: str, redis_namespace: str
) -> None:
    settings = scaleout_settings(
        base_settings, tmp_path, postgres_url, redis_namespace,
        calls_per_second=4.0, max_concurrent=3,
    )  # fmt: skip
    app, cid, _ = _campaign(settings, 8)
    calls_log = tmp_path / "calls.jsonl"
    at = NOW.isoformat()
    children: list[Child] = []
    try:
        workers = [spawn("worker", settings, tmp_path, at, calls_log, 3.0, n) for n in (1, 2)]
        children += workers
        children.append(spawn("scheduler", settings, tmp_path, at, calls_log, 0, 1))
        wait_until("a call", lambda: bool(read_calls(calls_log)), 30, children)
        first = read_calls(calls_log)[0]
        victim = next(w for w in workers if w.proc.pid == first["pid"])
        victim.kill9()
        wait_until("every first attempt", lambda: _first_attempts_done(app, cid), 90, children)
    finally:
        _stop_all(children)

    calls = read_calls(calls_log)
    starts = [c for c in calls if c["event"] == "start"]
    ended = {c["attempt_id"] for c in calls if c["event"] == "end"}
    cut = {c["attempt_id"] for c in starts if c["attempt_id"] not in ended}
    assert first["attempt_id"] in cut and all(
        c["pid"] == victim.proc.pid for c in starts if c["attempt_id"] in cut
    )
    # No attempt was dialed twice.
    assert len({c["attempt_id"] for c in starts}) == len(starts)
    with app.db.session() as s:
        attempts = list(s.scalars(select(SurveyAttempt).where(SurveyAttempt.campaign_id == cid)))
    first_attempts = [a for a in attempts if a.attempt_no == 1]
    interrupted = {a.id for a in first_attempts if a.outcome == "interrupted"}
    # The calls cut by the kill were finished by the redelivered jobs on the other
    # worker (interrupted, not lost); at most the victim's own calls were cut.
    assert cut <= interrupted
    assert len(interrupted) <= 3
    for a in first_attempts:
        assert a.status == "done"
        if a.id in interrupted:
            follow_ups = [b for b in attempts if b.ticket_id == a.ticket_id and b.attempt_no == 2]
            assert [b.status for b in follow_ups] == ["planned"]
        else:
            assert a.outcome == "answered"
            assert [c["attempt_id"] for c in starts].count(a.id) == 1
    jobs = DramatiqJobs(settings.jobs)
    assert dead_letters(jobs) == [] and jobs.pending() == 0
    jobs.close(wait=False)
    app.close()


def test_worker_killed_mid_transcription_job_is_retried_elsewhere_once(
    base_settings: Settings, tmp_path: Path, postgres_url: str, redis_namespace: str
) -> None:
    model = ko_asr_config().model
    long_audio = tmp_path / "long.wav"
    h01 = speech_file("hotline/h01_8k_ulaw.wav")
    ffmpeg("-stream_loop", "11", "-i", str(h01), "-ar", "8000", "-ac", "1", str(long_audio))
    settings = scaleout_settings(base_settings, tmp_path, postgres_url, redis_namespace)
    upgrade(settings.resolved_database_url)
    # The recording arrives while no model is installed here: its draft waits.
    waiting = settings.model_copy(
        update={"asr": settings.asr.model_copy(update={"model": "vosk-model-small-cn-0.22"})}
    )
    app = Hotline.open(waiting, FixedClock(NOW))
    sim = simulate_inbound(app, line="12345", caller="13800138000", digits="2", audio=long_audio)
    assert sim.ticket is not None and sim.ticket["transcription"] == "pending"
    with app.db.session() as s:
        rec_id = s.scalars(select(Recording.id)).one()
    with_model = settings.model_copy(
        update={"asr": settings.asr.model_copy(update={"model": model})}
    )
    calls_log = tmp_path / "unused.jsonl"
    at = NOW.isoformat()
    client = redis.Redis.from_url(REDIS_URL)
    children: list[Child] = []
    jobs = DramatiqJobs(settings.jobs)
    try:
        workers = [spawn("worker", with_model, tmp_path, at, calls_log, 0, n) for n in (1, 2)]
        children += workers
        assert jobs.submit(TRANSCRIBE_JOB, {"recording_id": rec_id}, key=f"transcribe:{rec_id}")

        def holder() -> Child | None:
            for w in workers:
                acks = f"{redis_namespace}:__acks__.{w.info['broker_id']}.asr"
                if client.scard(acks):
                    return w
            return None

        wait_until("a worker to take the job", lambda: holder() is not None, 30, children)
        victim = holder()
        assert victim is not None
        time.sleep(1.0)  # inside the transcription (model load + decoding take seconds)
        with app.db.session() as s:
            assert s.scalar(select(func.count()).select_from(Transcript)) == 0
        victim.kill9()

        def transcribed() -> bool:
            with app.db.session() as s:
                return s.scalar(select(func.count()).select_from(Transcript)) == 1

        wait_until("the transcript", transcribed, 180, children)
        survivor = next(w for w in workers if w is not victim)
        assert survivor.proc.poll() is None
        wait_until("an empty queue", lambda: jobs.pending() == 0, 30, children)
    finally:
        _stop_all(children)
        client.close()
    with app.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Transcript)) == 1
        ticket = s.scalars(select(Ticket)).one()
        assert ticket.transcription == "done" and ticket.statement
    assert dead_letters(jobs) == []
    jobs.close(wait=False)
    app.close()
