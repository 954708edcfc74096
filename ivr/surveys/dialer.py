"""The dialer interface the survey engine calls; SIP and Twilio implement it.

`dial` places one call, runs the survey flow on it when answered, and returns
once the call has ended: the survey dial job (`ivr.surveys.dispatch`) provides
concurrency by calling it from several job threads and processes, and enforces
the pace and the call limits itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Outcome = Literal[
    "answered", "machine", "busy", "no-answer", "rejected", "failed", "unreachable", "cancelled"
]


@dataclass
class DialResult:
    outcome: Outcome
    # The transport's final status: a SIP status code, or Twilio's call status.
    status: int | str | None = None
    call_id: str | None = None
    vars: dict[str, Any] = field(default_factory=dict)
    timeline: list[tuple[float, str]] = field(default_factory=list)

    @property
    def score(self) -> str | None:
        value = self.vars.get("score")
        return str(value) if value else None

    @property
    def sip_status(self) -> int | None:
        return self.status if isinstance(self.status, int) else None


class Dialer(Protocol):
    def dial(
        self,
        number_or_uri: str,
        *,
        flow: str = "survey",
        variables: Mapping[str, Any] | None = None,
        ring_timeout: float | None = None,
    ) -> DialResult: ...


class StartPacer(Protocol):
    def acquire(self) -> float: ...


@runtime_checkable
class RetriesStarts(Protocol):
    """A dialer that starts a call again itself (Twilio after HTTP 429): each such start
    is taken from the survey pacer too, so starts keep their 1/rate spacing."""

    def use_pacer(self, pacer: StartPacer) -> None: ...
