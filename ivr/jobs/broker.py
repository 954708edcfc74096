"""Dramatiq brokers from the `jobs:` config: Redis when a URL is set, else in-process."""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from dramatiq import Broker, Middleware
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Retries

from ivr.config import JobsConfig

log = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    """The configured broker cannot be used (bad URL, Redis down)."""


class KeySet:
    """Keys of jobs queued or running: a job with a key is queued once at a time.

    In Redis (shared by every process) when there is a client, else in memory.
    A key outlives a crashed process by at most `ttl_s`.
    """

    def __init__(self, client: redis.Redis | None, namespace: str, ttl_s: int = 86_400) -> None:
        self.client, self.prefix, self.ttl_s = client, f"{namespace}:jobkey:", ttl_s
        self._local: set[str] = set()

    def take(self, key: str) -> bool:
        if self.client is not None:
            return bool(self.client.set(self.prefix + key, 1, nx=True, ex=self.ttl_s))
        if key in self._local:
            return False
        self._local.add(key)
        return True

    def release(self, key: str) -> None:
        if self.client is not None:
            self.client.delete(self.prefix + key)
        else:
            self._local.discard(key)


class ReleaseKeys(Middleware):
    """Frees a job's key once it succeeded or was dead-lettered (not while it is retried)."""

    def __init__(self, keys: KeySet) -> None:
        self.keys = keys

    def after_process_message(
        self, broker: Broker, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        key = message.options.get("job_key")
        if key and (exception is None or message.failed):
            self.keys.release(key)

    def after_skip_message(self, broker: Broker, message: Any) -> None:
        key = message.options.get("job_key")
        if key:
            self.keys.release(key)


class NoteGivenUp(Middleware):
    """Keeps the reason of a job that gave up (GiveUp) for its dead letter: Dramatiq's
    Retries notes a traceback only for the jobs it retries."""

    def after_process_message(
        self, broker: Broker, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        if exception is not None and message.failed and "traceback" not in message.options:
            message.options["traceback"] = f"{type(exception).__name__}: {exception}"
            message.options["requeue_timestamp"] = int(time.time() * 1000)


def redis_client(cfg: JobsConfig) -> redis.Redis | None:
    if not cfg.broker_url:
        return None
    try:
        return redis.Redis.from_url(cfg.broker_url, socket_connect_timeout=5)
    except ValueError as exc:
        raise BrokerError(f"jobs.broker_url {cfg.broker_url!r} is not a Redis URL: {exc}") from exc


def make_broker(cfg: JobsConfig, client: redis.Redis | None, keys: KeySet) -> Broker:
    broker: Broker
    if client is not None:
        broker = RedisBroker(
            client=client,
            namespace=cfg.namespace,
            heartbeat_timeout=cfg.heartbeat_timeout_ms,
            # Check for dead workers often: requeueing their jobs is what makes a crash cheap.
            maintenance_chance=100_000,
        )
    else:
        broker = StubBroker()
        broker.emit_after("process_boot")
    for m in broker.middleware:
        if isinstance(m, Retries):
            m.max_retries = cfg.max_retries
            m.min_backoff, m.max_backoff = cfg.min_backoff_ms, cfg.max_backoff_ms
    # Hooks run in reverse order after processing: placed before Retries, this one
    # sees whether Retries gave the message up.
    broker.add_middleware(ReleaseKeys(keys), before=Retries)
    broker.add_middleware(NoteGivenUp(), before=Retries)
    return broker


def ping(client: redis.Redis) -> None:
    try:
        client.ping()
    except redis.RedisError as exc:
        raise BrokerError(f"Redis is not reachable: {exc}") from exc
