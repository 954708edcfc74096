"""What job handlers and their callers share, whichever queue runs the jobs (ivr.jobs).

Webhooks submit jobs (transcribe a recording, fetch one again later) and answer at
once; `submit(name, payload)` and `register(name, handler)` are the whole interface.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

Handler = Callable[[Mapping[str, Any]], None]


class RetryJob(Exception):
    """Raised by a handler to run the same job again after `delay_s` (up to its attempt limit)."""

    def __init__(self, reason: str, delay_s: float = 1.0) -> None:
        super().__init__(reason)
        self.delay_s = delay_s


class GiveUp(Exception):
    """Raised by a handler that has retried on its own terms and stops: the job is
    dead-lettered at once (`ivr jobs dead`), with this message as its error."""


class UnknownJob(LookupError):
    pass


class Jobs(Protocol):
    """What submits jobs: the Dramatiq queue (ivr.jobs.open_jobs) or a test double."""

    def submit(
        self, name: str, payload: Mapping[str, Any], *, key: str | None = ..., delay_s: float = ...
    ) -> bool: ...
