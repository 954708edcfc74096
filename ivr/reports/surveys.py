"""Survey reports: 满意率, response rate and attempts by department, line, category or week.

满意率 = (满意 + 基本满意) / valid responses; response rate = valid responses /
tickets surveyed. A ticket's result is its last valid score (or no response).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import select

from ivr.reports.csv_cells import csv_text
from ivr.store.models import SurveyAttempt, Ticket

if TYPE_CHECKING:
    from ivr.app import Hotline

Dimension = Literal["department", "line", "category", "week", "campaign"]
VALID = ("satisfied", "basically_satisfied", "unsatisfied")


@dataclass
class Row:
    group: str
    tickets: int = 0
    attempts: int = 0
    satisfied: int = 0
    basically_satisfied: int = 0
    unsatisfied: int = 0
    no_response: int = 0

    @property
    def responses(self) -> int:
        return self.satisfied + self.basically_satisfied + self.unsatisfied

    @property
    def satisfaction_rate(self) -> float | None:
        return (
            (self.satisfied + self.basically_satisfied) / self.responses if self.responses else None
        )

    @property
    def response_rate(self) -> float | None:
        return self.responses / self.tickets if self.tickets else None


GroupKey = Callable[[SurveyAttempt, Ticket], str]


def week_of(ticket: Ticket, tz: ZoneInfo) -> str:
    """The ISO week (local time) a ticket was completed in, e.g. 2026-W48."""
    when = ticket.completed_at or ticket.created_at
    year, week, _ = when.astimezone(tz).isocalendar()
    return f"{year}-W{week:02d}"


def group_key(by: Dimension, tz: ZoneInfo) -> GroupKey:
    if by == "department":
        return lambda _a, t: t.department
    if by == "line":
        return lambda _a, t: t.line_number
    if by == "category":
        return lambda _a, t: t.category
    if by == "campaign":
        return lambda a, _t: "人工回访" if a.campaign_id is None else str(a.campaign_id)
    return lambda _a, t: week_of(t, tz)


def report(app: Hotline, by: Dimension = "department", campaign_id: int | None = None) -> list[Row]:
    return report_by(app, group_key(by, app.settings.tz), campaign_id)


def report_by(app: Hotline, key: GroupKey, campaign_id: int | None = None) -> list[Row]:
    """Rows grouped by any key of (attempt, ticket), e.g. department and week together."""
    q = select(SurveyAttempt, Ticket).join(Ticket, Ticket.id == SurveyAttempt.ticket_id)
    if campaign_id is not None:
        q = q.where(SurveyAttempt.campaign_id == campaign_id)
    per_ticket: dict[int, tuple[str, int, str | None]] = {}
    with app.db.read() as s:
        for attempt, ticket in s.execute(q.order_by(SurveyAttempt.id)):
            group = key(attempt, ticket)
            _, attempts, result = per_ticket.get(ticket.id, (group, 0, None))
            dialed = attempt.status == "done" and attempt.outcome not in (None, "interrupted")
            if attempt.score in VALID:
                result = attempt.score
            elif attempt.outcome == "no_response" and result is None:
                result = "no_response"
            per_ticket[ticket.id] = (group, attempts + (1 if dialed else 0), result)
    rows: dict[str, Row] = defaultdict(lambda: Row(""))
    for group, attempts, result in per_ticket.values():
        row = rows[group]
        row.group = group
        row.tickets += 1
        row.attempts += attempts
        if result is not None:
            setattr(row, result, getattr(row, result) + 1)
    return sorted(rows.values(), key=lambda r: r.group)


def total(rows: list[Row]) -> Row:
    t = Row("合计")
    for r in rows:
        for f in (
            "tickets",
            "attempts",
            "satisfied",
            "basically_satisfied",
            "unsatisfied",
            "no_response",
        ):
            setattr(t, f, getattr(t, f) + getattr(r, f))
    return t


HEADER = [
    "分组",
    "回访工单",
    "呼叫次数",
    "满意",
    "基本满意",
    "不满意",
    "未评价",
    "满意率",
    "回复率",
]


def _pct(x: float | None) -> str:
    return "" if x is None else f"{x:.4f}"


def to_csv(rows: list[Row]) -> str:
    return csv_text(
        HEADER,
        (
            [
                r.group,
                r.tickets,
                r.attempts,
                r.satisfied,
                r.basically_satisfied,
                r.unsatisfied,
                r.no_response,
                _pct(r.satisfaction_rate),
                _pct(r.response_rate),
            ]
            for r in [*rows, total(rows)]
        ),
    )
