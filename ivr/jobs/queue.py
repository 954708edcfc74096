"""`submit()` / `register()` on Dramatiq: one interface for Redis and in-process workers."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import dramatiq
from dramatiq import Broker, Message, Worker
from dramatiq.brokers.stub import StubBroker

from ivr.config import JobsConfig, Settings
from ivr.jobs.broker import KeySet, make_broker, ping, redis_client
from ivr.jobs.protocol import GiveUp, Handler, RetryJob, UnknownJob

log = logging.getLogger(__name__)

# Queues by job: a worker process may be started for some of them only.
QUEUES = {"transcribe": "asr", "survey.dial": "calls", "twilio.fetch_recording": "fetch"}
# Queues with threads of their own (`jobs.fetch_threads`): a fetch waits on a media host
# outside, and stalled hosts must not take the threads transcription and dialing need.
OWN_THREADS = {"fetch"}
# Every job this code base submits; a process may submit one it does not run.
KNOWN_JOBS = {"transcribe", "twilio.fetch_recording", "survey.dial"}
# How often idle worker threads poll (ms): in process, and on Redis (Dramatiq's default).
EMBEDDED_POLL_MS = 100
WORKER_POLL_MS = 1000


def queue_for(name: str) -> str:
    return QUEUES.get(name, "default")


class DramatiqJobs:
    """Jobs by name on a Dramatiq broker.

    Embedded (no Redis): a StubBroker and a worker in this process, started on the
    first submit (so each pre-forked web worker gets its own). With Redis: jobs
    run wherever `start_worker()` was called (`ivr serve --role worker`).
    """

    def __init__(self, cfg: JobsConfig) -> None:
        self.cfg = cfg
        self.client = redis_client(cfg)
        if self.client is not None:
            ping(self.client)
        self.keys = KeySet(self.client, cfg.namespace)
        self.broker: Broker = make_broker(cfg, self.client, self.keys)
        self.embedded = self.client is None
        self._handlers: dict[str, Handler] = {}
        self._workers: list[Worker] = []
        self._lock = threading.Lock()
        for name in KNOWN_JOBS:
            self._declare(name)

    # -- the interface callers see -------------------------------------------------
    def register(self, name: str, handler: Handler) -> None:
        self._handlers[name] = handler
        self._declare(name)

    def submit(
        self,
        name: str,
        payload: Mapping[str, Any],
        *,
        key: str | None = None,
        delay_s: float = 0.0,
    ) -> bool:
        """Queue a job; False when one with the same key is already queued or running."""
        if name not in self._handlers and (self.embedded or name not in KNOWN_JOBS):
            raise UnknownJob(f"no handler registered for job {name!r}")
        if key is not None and not self.keys.take(key):
            return False
        message = Message(
            queue_name=queue_for(name),
            actor_name=name,
            args=(dict(payload),),
            kwargs={},
            options={"job_key": key} if key else {},
        )
        try:
            self.broker.enqueue(message, delay=int(delay_s * 1000) or None)
        except Exception:
            if key is not None:
                self.keys.release(key)
            raise
        if self.embedded:
            self.start_worker()
        return True

    # -- workers -------------------------------------------------------------------
    def start_worker(self, queues: set[str] | None = None) -> None:
        """Run this process's jobs (of `queues`, default all): `jobs.fetch_threads` threads
        for the recording fetches, `jobs.worker_threads` for the others."""
        every = {queue_for(n) for n in KNOWN_JOBS | set(self._handlers)} | {"default"}
        wanted = every if queues is None else set(queues)
        pools = [(wanted - OWN_THREADS, self.cfg.worker_threads)]
        pools += [({q}, self.cfg.fetch_threads) for q in sorted(wanted & OWN_THREADS)]
        with self._lock:
            if self._workers:
                return
            # Each Worker adds its own queue-declaration hook to the broker, which Dramatiq
            # warns about from the second on: two pools of threads are meant here.
            self.broker.logger.addFilter(SECOND_WORKER_HOOK)
            for pool, threads in pools:
                if not pool:
                    continue
                worker = Worker(
                    self.broker,
                    queues=pool,
                    worker_threads=threads,
                    # Idle threads look for work and for a stop this often. Dramatiq's 1 s
                    # made close() take 2 s (workers, then consumers); in process the
                    # poll is a queue wait, so a short one costs next to nothing.
                    worker_timeout=EMBEDDED_POLL_MS if self.embedded else WORKER_POLL_MS,
                )
                worker.start()
                self._workers.append(worker)

    def depth(self) -> dict[str, int]:
        """Jobs queued, delayed or running, by queue."""
        out = {}
        for q in sorted({queue_for(n) for n in KNOWN_JOBS | set(self._handlers)}):
            if isinstance(self.broker, StubBroker):
                # Unfinished: queued, or taken by the worker and not yet acknowledged.
                n = sum(self.broker.queues[name].unfinished_tasks for name in (q, f"{q}.DQ"))
            else:
                assert self.client is not None
                ns = self.cfg.namespace
                n = int(self.client.hlen(f"{ns}:{q}.msgs")) + int(
                    self.client.hlen(f"{ns}:{q}.DQ.msgs")
                )
            out[q] = n
        return out

    def pending(self) -> int:
        return sum(self.depth().values())

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no job is queued or running; False if `timeout` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.pending():
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def close(self, wait: bool = True, timeout: float | None = 30.0) -> None:
        if wait:
            self.wait_idle(timeout)
        with self._lock:
            workers, self._workers = self._workers, []
        for worker in workers:
            worker.stop(timeout=int((timeout or 30.0) * 1000))
        self.broker.close()

    # -- actors --------------------------------------------------------------------
    def _declare(self, name: str) -> None:
        if name in self.broker.actors:
            return
        handlers = self._handlers

        def run(payload: dict[str, Any]) -> None:
            handler = handlers.get(name)
            if handler is None:
                raise UnknownJob(f"this worker has no handler for job {name!r}")
            try:
                handler(payload)
            except RetryJob as again:
                log.info("job %s: %s; again in %.1f s", name, again, again.delay_s)
                raise dramatiq.Retry(str(again), delay=int(again.delay_s * 1000)) from again

        run.__name__ = name.replace(".", "_")
        dramatiq.Actor(
            run,
            broker=self.broker,
            actor_name=name,
            queue_name=queue_for(name),
            priority=0,
            options={"throws": (GiveUp,)},
        )


class _SecondWorkerHook(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        hook = record.args[0] if isinstance(record.args, tuple) and record.args else None
        return type(hook).__name__ != "_WorkerMiddleware"


SECOND_WORKER_HOOK = _SecondWorkerHook()


def open_jobs(settings: Settings) -> DramatiqJobs:
    return DramatiqJobs(settings.jobs)
