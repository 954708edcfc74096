"""Completed tickets to survey, and a scripted dialer for time-controlled policy tests.

The scripted dialer stands in for the transport only where the test needs to
control time (the real SIP dialer against SIPp callees is in
test_survey_campaign_sip.py); it records the survey score through the same
`record_score` the survey flow calls.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from ivr.app import Hotline
from ivr.store import Ticket, TicketStatus
from ivr.surveys.dialer import DialResult
from ivr.surveys.outcomes import record_score


def completed_tickets(
    app: Hotline, phones: list[str], completed_at: datetime, **fields: Any
) -> list[int]:
    ids = []
    with app.db.session() as s:
        for i, phone in enumerate(phones, start=1):
            t = Ticket(
                number=f"12345-{completed_at:%Y%m%d}-{i:05d}",
                status=TicketStatus.COMPLETED,
                line_number=fields.get("line", "12315"),
                caller_number=phone,
                category=fields.get("category", "投诉"),
                category_source="menu",
                department=fields.get("department", "市场监督管理局"),
                department_source="keywords",
                contact_due=date(2026, 11, 24),
                due_date=date(2026, 12, 11),
                created_at=completed_at,
                updated_at=completed_at,
                completed_at=completed_at,
            )
            s.add(t)
            s.flush()
            ids.append(t.id)
    return ids


class ScriptedDialer:
    """Outcome per number (answered with a key, busy, ...); counts concurrency and notes
    when each call starts (monotonic seconds)."""

    def __init__(self, app: Hotline, script: Mapping[str, str], hold_s: float = 0.0) -> None:
        self.app, self.script, self.hold_s = app, dict(script), hold_s
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.starts: list[float] = []
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def dial(
        self,
        number_or_uri: str,
        *,
        flow: str = "survey",
        variables: Mapping[str, Any] | None = None,
        ring_timeout: float | None = None,
    ) -> DialResult:
        with self._lock:
            self.starts.append(time.monotonic())
            self.calls.append((number_or_uri, dict(variables or {})))
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            time.sleep(self.hold_s)
            what = self.script.get(number_or_uri, "busy")
            if what in ("satisfied", "basically_satisfied", "unsatisfied", "no_response"):
                with self.app.db.session() as s:
                    record_score(s, {**(variables or {}), "score": what}, datetime.now(UTC))
                return DialResult("answered", 200, vars={"score": what})
            return DialResult(what)  # type: ignore[arg-type]
        finally:
            with self._lock:
                self.active -= 1
