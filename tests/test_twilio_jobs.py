"""The in-process job queue the Twilio webhooks hand slow work to."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import pytest

from ivr.jobs import JobQueue, RetryJob, UnknownJob


def test_jobs_run_in_worker_threads_and_wait_idle_sees_them_done() -> None:
    q = JobQueue(2)
    seen: list[int] = []
    lock = threading.Lock()

    def work(payload: Mapping[str, Any]) -> None:
        with lock:
            seen.append(int(payload["n"]))

    q.register("work", work)
    for n in range(20):
        assert q.submit("work", {"n": n})
    assert q.wait_idle(10)
    assert sorted(seen) == list(range(20)) and q.done == 20
    q.close()


def test_same_key_runs_once_at_a_time() -> None:
    q = JobQueue(2)
    release = threading.Event()
    runs: list[str] = []
    q.register("slow", lambda p: (runs.append(p["k"]), release.wait(5)))
    assert q.submit("slow", {"k": "a"}, key="a")
    assert not q.submit("slow", {"k": "a"}, key="a")  # a duplicate while queued/running
    release.set()
    assert q.wait_idle(10)
    assert q.submit("slow", {"k": "a"}, key="a")  # done: may run again
    assert q.wait_idle(10) and runs == ["a", "a"]
    q.close()


def test_retry_then_give_up_and_failures_do_not_stop_the_queue(
    caplog: pytest.LogCaptureFixture,
) -> None:
    q = JobQueue(1, max_attempts=3)
    tries: list[int] = []

    def flaky(payload: Mapping[str, Any]) -> None:
        tries.append(1)
        if len(tries) < 2:
            raise RetryJob("not ready", 0.01)

    def never(payload: Mapping[str, Any]) -> None:
        raise RetryJob("never ready", 0.01)

    def broken(payload: Mapping[str, Any]) -> None:
        raise ValueError("bad payload")

    for name, fn in (("flaky", flaky), ("never", never), ("broken", broken)):
        q.register(name, fn)
    q.submit("flaky", {})
    q.submit("never", {})
    q.submit("broken", {})
    assert q.wait_idle(10)
    assert len(tries) == 2 and q.done == 1 and q.failed == 2
    assert any("gave up after 3 attempts" in m for m in caplog.messages)
    assert any("job broken failed" in m for m in caplog.messages)
    with pytest.raises(UnknownJob):
        q.submit("nobody", {})
    q.close()
    assert not q.submit("flaky", {})  # closed
