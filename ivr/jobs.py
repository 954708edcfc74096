"""An in-process job queue: a few worker threads for slow work a request must not wait for.

Webhooks submit jobs (transcribe a recording, fetch one again later) and answer at
once. `submit(name, payload)` is the whole interface the callers see, so a
distributed queue can replace this one without touching them. Jobs live in
memory: what a restart loses is caught up from the database (recordings left
`transcription_pending` are picked up by `ivr transcribe --pending`).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[[Mapping[str, Any]], None]


class RetryJob(Exception):
    """Raised by a handler to run the same job again after `delay_s` (up to its attempt limit)."""

    def __init__(self, reason: str, delay_s: float = 1.0) -> None:
        super().__init__(reason)
        self.delay_s = delay_s


class UnknownJob(LookupError):
    pass


@dataclass(order=True)
class _Job:
    run_at: float
    seq: int
    name: str = field(compare=False)
    payload: Mapping[str, Any] = field(compare=False)
    key: str | None = field(compare=False, default=None)
    attempt: int = field(compare=False, default=1)


class JobQueue:
    """Jobs by name, run by `workers` threads; a job with a key runs once at a time."""

    def __init__(self, workers: int = 2, *, max_attempts: int = 5, name: str = "jobs") -> None:
        if workers < 1:
            raise ValueError("a job queue needs at least one worker")
        self.workers = workers
        self.max_attempts = max_attempts
        self.name = name
        self._handlers: dict[str, Handler] = {}
        self._heap: list[_Job] = []
        self._keys: set[str] = set()
        self._running = 0
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self.done = 0
        self.failed = 0

    def register(self, name: str, handler: Handler) -> None:
        self._handlers[name] = handler

    def submit(
        self,
        name: str,
        payload: Mapping[str, Any],
        *,
        key: str | None = None,
        delay_s: float = 0.0,
    ) -> bool:
        """Queue a job; False when one with the same key is already queued or running."""
        if name not in self._handlers:
            raise UnknownJob(f"no handler registered for job {name!r}")
        with self._cond:
            if self._closed:
                log.warning("job %s not queued: the queue is shut down", name)
                return False
            if key is not None:
                if key in self._keys:
                    return False
                self._keys.add(key)
            job = _Job(time.monotonic() + delay_s, next(self._seq), name, dict(payload), key)
            heapq.heappush(self._heap, job)
            self._start_workers()
            self._cond.notify()
        return True

    def _start_workers(self) -> None:
        # Started on first use, so a pre-forking server's workers each get their own threads.
        self._threads = [t for t in self._threads if t.is_alive()]
        while len(self._threads) < self.workers:
            t = threading.Thread(
                target=self._work, name=f"{self.name}-{len(self._threads) + 1}", daemon=True
            )
            self._threads.append(t)
            t.start()

    def _next(self) -> _Job | None:
        with self._cond:
            while True:
                if self._closed and not self._heap:
                    return None
                if self._heap:
                    wait = self._heap[0].run_at - time.monotonic()
                    if wait <= 0:
                        self._running += 1
                        return heapq.heappop(self._heap)
                    self._cond.wait(wait)
                else:
                    self._cond.wait()

    def _work(self) -> None:
        while (job := self._next()) is not None:
            retry: _Job | None = None
            try:
                self._handlers[job.name](job.payload)
                self.done += 1
            except RetryJob as again:
                if job.attempt < self.max_attempts:
                    log.info(
                        "job %s attempt %d: %s; again in %.1f s",
                        job.name,
                        job.attempt,
                        again,
                        again.delay_s,
                    )
                    retry = _Job(
                        time.monotonic() + again.delay_s,
                        next(self._seq),
                        job.name,
                        job.payload,
                        job.key,
                        job.attempt + 1,
                    )
                else:
                    self.failed += 1
                    log.error("job %s gave up after %d attempts: %s", job.name, job.attempt, again)
            except Exception:
                self.failed += 1
                log.exception("job %s failed", job.name)
            with self._cond:
                self._running -= 1
                if retry is not None and not self._closed:
                    heapq.heappush(self._heap, retry)
                elif job.key is not None:
                    self._keys.discard(job.key)
                self._cond.notify_all()

    def pending(self) -> int:
        with self._cond:
            return len(self._heap) + self._running

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no job is queued or running; False if `timeout` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._heap or self._running:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left if left is None else min(left, 0.5))
        return True

    def close(self, wait: bool = True, timeout: float | None = 30.0) -> None:
        """Stop taking jobs; with `wait`, let the queued ones finish first."""
        with self._cond:
            self._closed = True
            if not wait:
                self._heap.clear()
            self._cond.notify_all()
        if wait:
            for t in self._threads:
                t.join(timeout)
