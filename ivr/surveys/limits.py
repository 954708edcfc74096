"""Survey call limits shared by every dialing process: concurrent calls and call starts per second.

Concurrency: `max_concurrent` slots, each a Dramatiq ConcurrentRateLimiter mutex
(Redis SET NX with a TTL), so a slot a killed worker held frees itself after
`jobs.call_slot_ttl_s` instead of shrinking the cap for good.

Pace: Dramatiq's window and bucket limiters count starts per calendar second, which
lets 2 x rate starts through around a second boundary; starts are instead spaced
at least (1 + guard) / rate apart on one Redis timeline (a Lua script reserving the
next start on the server's clock), the distributed twin of `policy.Pacer`. The
guard absorbs the delay between a granted start and the dialer's INVITE, so that
no one-second window ever holds more than `calls_per_second` dialer starts.

Without Redis both run in process (Dramatiq's StubBackend and `Pacer`), with the
same guard, so that a start the dialer notes a little late (a busy thread) cannot
put one start too many into a window.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import redis
from dramatiq.rate_limits import ConcurrentRateLimiter
from dramatiq.rate_limits.backends import RedisBackend, StubBackend

from ivr.config import JobsConfig, SurveyConfig
from ivr.surveys.policy import Pacer

log = logging.getLogger(__name__)

PACE_GUARD_S = 0.1

_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local spacing = tonumber(ARGV[1])
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = now
if last + spacing > now then slot = last + spacing end
redis.call('SET', KEYS[1], string.format('%.0f', slot), 'PX', ARGV[2])
return string.format('%.0f', slot - now)
"""


class RedisPacer:
    """Call starts at least `spacing` apart across all processes sharing the key."""

    def __init__(self, client: redis.Redis, key: str, rate: float, guard_s: float) -> None:
        self.key = key
        self.spacing_us = round((1.0 + guard_s) / rate * 1_000_000)
        self._reserve = client.register_script(_RESERVE)

    def acquire(self) -> float:
        """Block until this caller's reserved start; returns it (monotonic seconds)."""
        wait_us = int(self._reserve(keys=[self.key], args=[self.spacing_us, 60_000]))
        if wait_us > 0:
            time.sleep(wait_us / 1_000_000)
        return time.monotonic()


class CallSlots:
    """At most `limit` calls at once; `hold()` blocks until a slot is free."""

    def __init__(
        self,
        backend: RedisBackend | StubBackend,
        namespace: str,
        limit: int,
        ttl_s: int,
        poll_s: float = 0.05,
    ) -> None:
        self.poll_s = poll_s
        self.limiters = [
            ConcurrentRateLimiter(backend, f"{namespace}:call-slot:{i}", limit=1, ttl=ttl_s * 1000)
            for i in range(limit)
        ]

    @contextmanager
    def hold(self, stop: threading.Event | None = None) -> Iterator[None]:
        while True:
            for limiter in random.sample(self.limiters, len(self.limiters)):
                with ExitStack() as stack:
                    if stack.enter_context(limiter.acquire(raise_on_failure=False)):
                        yield
                        return
            if stop is not None and stop.is_set():
                raise InterruptedError("stopping: no call slot taken")
            time.sleep(self.poll_s)


class CallLimits:
    """The pacer and the concurrent-call slots for survey dialing, global when on Redis."""

    def __init__(self, surveys: SurveyConfig, jobs: JobsConfig, client: redis.Redis | None) -> None:
        ttl = jobs.call_slot_ttl_s
        self.pacer: Pacer | RedisPacer
        if client is None:
            self.pacer = Pacer(surveys.calls_per_second / (1.0 + PACE_GUARD_S))
            backend: RedisBackend | StubBackend = StubBackend()
        else:
            self.pacer = RedisPacer(
                client, f"{jobs.namespace}:call-pace", surveys.calls_per_second, PACE_GUARD_S
            )
            backend = RedisBackend(client=client)
        self.slots = CallSlots(backend, jobs.namespace, surveys.max_concurrent, ttl)
