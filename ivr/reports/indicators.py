"""The hotline office's indicators (考核指标) by department, line or category and by ISO
week, month or quarter, counted in the database (README "Indicators (考核指标)").

Three GROUP BY queries over `tickets`, one per date that puts a ticket in a period:
received (created_at: 受理, 及时联系率, 直办率), completed (completed_at: 办结, 满意率,
解决率, 重办率) and due (due_date: 按期办结率, 超期率). Periods are local dates of
`settings.tz`; the period key is computed by the database (`PeriodKey`, one SQL
expression per dialect) and the few aggregated rows are merged here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Literal, get_args
from zoneinfo import ZoneInfo

from sqlalchemy import Date, String, and_, case, func, literal, not_, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from ivr.reports.operations import Table
from ivr.store.models import Ticket, TicketStatus

if TYPE_CHECKING:
    from ivr.app import Hotline

S = TicketStatus
Grouping = Literal["all", "department", "line", "category"]
PeriodKind = Literal["week", "month", "quarter"]
GROUPINGS: tuple[Grouping, ...] = get_args(Grouping)
PERIODS: tuple[PeriodKind, ...] = get_args(PeriodKind)
GROUPING_ZH = {"all": "全部", "department": "部门", "line": "热线", "category": "类别"}
PERIOD_ZH = {"week": "周", "month": "月", "quarter": "季度"}
ALL = "全部"

# 受理: a ticket the hotline accepted (not an unfinished draft, 不予受理 or 重复件).
NOT_ACCEPTED = (S.DRAFT, S.REJECTED, S.DUPLICATE)
# 办结 and not reopened: the statuses whose completed_at is the answer to the ticket.
DONE = (S.COMPLETED, S.SURVEYED, S.REVIEW, S.CLOSED)
# Still being worked on (a re-handled ticket is open again).
OPEN = (S.REGISTERED, S.RETURNED, S.REHANDLE)
SATISFIED = ("satisfied", "basically_satisfied")
SCORED = (*SATISFIED, "unsatisfied")
ANSWERED = ("resolved", "unresolved")


class PeriodKey(FunctionElement[str]):
    """The period a local day falls in, as text: the Monday (YYYY-MM-DD) of its ISO week,
    YYYY-MM, or YYYY-Qn. `value` is a UTC datetime column (its day in `tz`) or a date."""

    type = String()
    inherit_cache = True

    def __init__(self, value: Any, kind: PeriodKind, tz: str, offset_minutes: int) -> None:
        super().__init__(value)
        self.kind = kind
        self.tz = tz
        self.offset_minutes = offset_minutes
        self.is_date = isinstance(value.type, Date)


class LocalDay(FunctionElement[date]):
    """The local day (in `tz`) of a UTC datetime column, comparable with a date column."""

    type = Date()
    inherit_cache = True

    def __init__(self, value: Any, tz: str, offset_minutes: int) -> None:
        super().__init__(value)
        self.tz = tz
        self.offset_minutes = offset_minutes


def _arg(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(next(iter(element.clauses)), **kw)


_TZ_NAME = re.compile(r"^[A-Za-z0-9_+\-/]+$")


def _tz_literal(tz: str) -> str:
    if not _TZ_NAME.match(tz):
        raise ValueError(f"time zone name {tz!r}")
    return f"'{tz}'"


@compiles(LocalDay, "postgresql")
def _local_day_pg(element: LocalDay, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(({_arg(element, compiler, **kw)} AT TIME ZONE {_tz_literal(element.tz)}) AS DATE)"


@compiles(LocalDay, "sqlite")
def _local_day_sqlite(element: LocalDay, compiler: SQLCompiler, **kw: Any) -> str:
    return f"date({_arg(element, compiler, **kw)}, '{element.offset_minutes:+d} minutes')"


@compiles(PeriodKey, "postgresql")
def _period_pg(element: PeriodKey, compiler: SQLCompiler, **kw: Any) -> str:
    value = _arg(element, compiler, **kw)
    if not element.is_date:
        value = f"({value} AT TIME ZONE {_tz_literal(element.tz)})"
    if element.kind == "week":
        return f"to_char(date_trunc('week', {value}), 'YYYY-MM-DD')"
    if element.kind == "month":
        return f"to_char({value}, 'YYYY-MM')"
    return f"to_char({value}, 'YYYY-\"Q\"Q')"


@compiles(PeriodKey, "sqlite")
def _period_sqlite(element: PeriodKey, compiler: SQLCompiler, **kw: Any) -> str:
    value = _arg(element, compiler, **kw)
    shift = "" if element.is_date else f", '{element.offset_minutes:+d} minutes'"
    if element.kind == "week":
        return f"date({value}{shift}, '-6 days', 'weekday 1')"
    if element.kind == "month":
        return f"strftime('%Y-%m', {value}{shift})"
    return (
        f"(strftime('%Y', {value}{shift}) || '-Q' || "
        f"((CAST(strftime('%m', {value}{shift}) AS INTEGER) + 2) / 3))"
    )


@dataclass(frozen=True)
class Rate:
    numerator: int = 0
    denominator: int = 0

    @property
    def rate(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None


# (attribute, 中文名) in the order reports show them.
INDICATORS: tuple[tuple[str, str], ...] = (
    ("satisfaction", "满意率"),
    ("resolution", "解决率"),
    ("on_time", "按期办结率"),
    ("overdue", "超期率"),
    ("rehandle", "重办率"),
    ("contact", "及时联系率"),
    ("direct", "直办率"),
)


@dataclass
class IndicatorRow:
    group: str
    period: str  # 2026-W48, 2026-11 or 2026-Q4
    start: date
    end: date
    received: int = 0
    completed: int = 0
    due: int = 0
    satisfaction: Rate = field(default_factory=Rate)
    resolution: Rate = field(default_factory=Rate)
    on_time: Rate = field(default_factory=Rate)
    overdue: Rate = field(default_factory=Rate)
    rehandle: Rate = field(default_factory=Rate)
    contact: Rate = field(default_factory=Rate)
    direct: Rate = field(default_factory=Rate)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "group": self.group,
            "period": self.period,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "received": self.received,
            "completed": self.completed,
            "due": self.due,
        }
        for name, _ in INDICATORS:
            r: Rate = getattr(self, name)
            out[name] = {"numerator": r.numerator, "denominator": r.denominator, "rate": r.rate}
        return out


def period_bounds(kind: PeriodKind, key: str) -> tuple[str, date, date]:
    """(label, first day, last day) of the period a PeriodKey value names."""
    if kind == "week":
        monday = date.fromisoformat(key)
        year, week, _ = monday.isocalendar()
        return f"{year}-W{week:02d}", monday, monday + timedelta(days=6)
    if kind == "month":
        first = date.fromisoformat(key + "-01")
        return key, first, (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    year, quarter = int(key[:4]), int(key[-1])
    first = date(year, 3 * quarter - 2, 1)
    after = date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)
    return key, first, after - timedelta(days=1)


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.sum(case((condition, 1), else_=0))


def _group_column(by: Grouping) -> ColumnElement[str]:
    if by == "department":
        return Ticket.department
    if by == "line":
        return Ticket.line_number
    if by == "category":
        return Ticket.category
    return literal(ALL, String())


def indicators(
    app: Hotline,
    start: date,
    end: date,
    by: Grouping = "department",
    period: PeriodKind = "month",
    today: date | None = None,
) -> list[IndicatorRow]:
    """One row per group and period between the local days `start` and `end` (inclusive),
    sorted by group then period. `today` (default: the clock's) decides what is overdue."""
    if by not in GROUPINGS or period not in PERIODS:
        raise ValueError(f"by {by!r}, period {period!r}")
    tz: ZoneInfo = app.settings.tz
    today = today or app.today()
    lo = datetime.combine(start, time(), tz)
    hi = datetime.combine(end + timedelta(days=1), time(), tz)
    # SQLite shifts by a fixed offset: right for zones without daylight saving (Asia/Shanghai).
    offset = int((lo.utcoffset() or timedelta()).total_seconds() // 60)
    tz_name = tz.key

    def key(column: Any) -> PeriodKey:
        return PeriodKey(column, period, tz_name, offset)

    def local_day(column: Any) -> LocalDay:
        return LocalDay(column, tz_name, offset)

    group = _group_column(by).label("grp")
    accepted = Ticket.status.not_in(NOT_ACCEPTED)
    not_direct = Ticket.kb_article_id.is_(None)
    received_q = (
        select(
            group,
            key(Ticket.created_at).label("period"),
            func.count().label("received"),
            _count(Ticket.kb_article_id.is_not(None)).label("direct"),
            _count(
                and_(
                    not_direct,
                    or_(Ticket.first_contact_at.is_not(None), Ticket.contact_due < today),
                )
            ).label("contact_due"),
            _count(
                and_(
                    not_direct,
                    Ticket.first_contact_at.is_not(None),
                    local_day(Ticket.first_contact_at) <= Ticket.contact_due,
                )
            ).label("contacted"),
        )
        .where(accepted, Ticket.created_at >= lo, Ticket.created_at < hi)
        .group_by("grp", "period")
    )
    completed_q = (
        select(
            group,
            key(Ticket.completed_at).label("period"),
            func.count().label("completed"),
            _count(Ticket.survey_outcome.in_(SATISFIED)).label("satisfied"),
            _count(Ticket.survey_outcome.in_(SCORED)).label("scored"),
            _count(Ticket.survey_resolved == "resolved").label("resolved"),
            _count(Ticket.survey_resolved.in_(ANSWERED)).label("answered"),
            _count(Ticket.rehandle_count > 0).label("rehandled"),
        )
        .where(accepted, Ticket.completed_at >= lo, Ticket.completed_at < hi)
        .group_by("grp", "period")
    )
    done = Ticket.status.in_(DONE)
    done_late = and_(done, local_day(Ticket.completed_at) > Ticket.due_date)
    due_q = (
        select(
            group,
            key(Ticket.due_date).label("period"),
            func.count().label("due"),
            _count(and_(done, not_(done_late))).label("on_time"),
            _count(or_(done_late, and_(Ticket.status.in_(OPEN), Ticket.due_date < today))).label(
                "overdue"
            ),
        )
        .where(accepted, Ticket.due_date >= start, Ticket.due_date <= end)
        .group_by("grp", "period")
    )
    rows: dict[tuple[str, str], IndicatorRow] = {}

    def row(grp: str, key_value: str) -> IndicatorRow:
        found = rows.get((grp, key_value))
        if found is None:
            label, first, last = period_bounds(period, key_value)
            found = rows[(grp, key_value)] = IndicatorRow(grp, label, first, last)
        return found

    with app.db.read() as s:
        for r in s.execute(received_q):
            x = row(r.grp, r.period)
            x.received = r.received
            x.direct = Rate(r.direct, r.received)
            x.contact = Rate(r.contacted, r.contact_due)
        for r in s.execute(completed_q):
            x = row(r.grp, r.period)
            x.completed = r.completed
            x.satisfaction = Rate(r.satisfied, r.scored)
            x.resolution = Rate(r.resolved, r.answered)
            x.rehandle = Rate(r.rehandled, r.completed)
        for r in s.execute(due_q):
            x = row(r.grp, r.period)
            x.due = r.due
            x.on_time = Rate(r.on_time, r.due)
            x.overdue = Rate(r.overdue, r.due)
    return sorted(rows.values(), key=lambda x: (x.group, x.start))


HEADER = ["分组", "周期", "受理", "办结", "应办结"] + [
    f"{zh}{part}" for _, zh in INDICATORS for part in ("", "分子", "分母")
]


def _rate(rate: float | None) -> float | None:
    return None if rate is None else round(rate, 4)


def table(rows: Iterable[IndicatorRow], by: Grouping, period: PeriodKind) -> Table:
    """The rows as a report table (CSV, Excel, the console): each indicator's rate, then
    its numerator and denominator."""
    out: list[list[Any]] = []
    for r in rows:
        line: list[Any] = [r.group, r.period, r.received, r.completed, r.due]
        for name, _ in INDICATORS:
            value: Rate = getattr(r, name)
            line += [_rate(value.rate), value.numerator, value.denominator]
        out.append(line)
    return Table(f"考核指标（按{GROUPING_ZH[by]}、{PERIOD_ZH[period]}）", list(HEADER), out)
