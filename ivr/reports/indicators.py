"""The hotline office's indicators (考核指标) by department, line or category and by ISO
week, month or quarter, counted in the database (README "Indicators (考核指标)").

Three dates put a ticket in a period: received (created_at: 受理, 及时联系率, 直办率),
completed (completed_at: 办结, 满意率, 解决率, 重办率) and due (due_date: 按期办结率,
超期率). One GROUP BY scan of `tickets` gives a row per group and (received, completed,
due) period. Periods are local days of `settings.tz`: their boundaries (local midnight
in UTC) are computed here and the database finds a ticket's bucket by binary search
(`BucketOf`: width_bucket on PostgreSQL, a nested CASE on SQLite), with no date function
per row. The scan is shared among the cores (`_grouped_rows`); the few aggregated rows
are merged here.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Literal, get_args
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Integer,
    Row,
    Select,
    String,
    and_,
    case,
    func,
    literal,
    not_,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from ivr.reports.csv_cells import csv_text
from ivr.reports.operations import Table
from ivr.store.models import Ticket, TicketStatus, UTCDateTime

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
FIRST_DAY = date(2000, 1, 1)
HORIZON_DAYS = 2 * 366  # due dates are weeks ahead of today, not years
SATISFIED = ("satisfied", "basically_satisfied")
SCORED = (*SATISFIED, "unsatisfied")
ANSWERED = ("resolved", "unresolved")
# SQLite counts a large table in id ranges on this many connections (at most the cores).
SQLITE_PARTS = 4
SQLITE_PART_MIN = 50_000


class DayEnd(FunctionElement[datetime]):
    """The UTC instant a local day (a date column) ends: `x < DayEnd(d)` says the UTC
    datetime x fell on local day d or before, without a date function on x."""

    type = UTCDateTime()
    # The SQL depends on tz, which a cache key would not see: never cached.
    inherit_cache = False

    def __init__(self, day: Any, tz: str, offset_minutes: int) -> None:
        super().__init__(day)
        self.tz = tz
        self.offset_minutes = offset_minutes


class Raw(FunctionElement[Any]):
    """A date or datetime column compared as it is stored. SQLite gives DATE and DATETIME
    columns NUMERIC affinity and would try to turn the text it is compared with into a
    number in every row; `+column` (no affinity) compares text with text."""

    inherit_cache = True

    def __init__(self, column: Any) -> None:
        super().__init__(column)
        self.type = column.type


@compiles(Raw)
def _raw(element: Raw, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(next(iter(element.clauses)), **kw)


@compiles(Raw, "sqlite")
def _raw_sqlite(element: Raw, compiler: SQLCompiler, **kw: Any) -> str:
    return "+" + compiler.process(next(iter(element.clauses)), **kw)


_TZ_NAME = re.compile(r"^[A-Za-z0-9_+\-/]+$")


@compiles(DayEnd, "postgresql")
def _day_end_pg(element: DayEnd, compiler: SQLCompiler, **kw: Any) -> str:
    if not _TZ_NAME.match(element.tz):
        raise ValueError(f"time zone name {element.tz!r}")
    day = compiler.process(next(iter(element.clauses)), **kw)
    return f"(CAST(({day} + 1) AS TIMESTAMP) AT TIME ZONE '{element.tz}')"


@compiles(DayEnd, "sqlite")
def _day_end_sqlite(element: DayEnd, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite keeps UTC datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' text (a fixed offset:
    # right for zones without daylight saving, such as Asia/Shanghai).
    day = compiler.process(next(iter(element.clauses)), **kw)
    after = 24 * 60 - element.offset_minutes  # minutes from d 00:00 UTC to its local end
    if 0 < after < 24 * 60:  # east of UTC: the end falls on d itself, in UTC
        return f"({day} || ' {after // 60:02d}:{after % 60:02d}:00.000000')"
    return f"strftime('%Y-%m-%d %H:%M:%S.000000', {day}, '{after:+d} minutes')"


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


@dataclass(frozen=True)
class Bucket:
    label: str  # 2026-W48, 2026-11 or 2026-Q4
    start: date
    end: date


def period_of(kind: PeriodKind, day: date) -> Bucket:
    """The week (ISO, Monday to Sunday), month or quarter a day falls in."""
    if kind == "week":
        monday = day - timedelta(days=day.weekday())
        year, week, _ = monday.isocalendar()
        return Bucket(f"{year}-W{week:02d}", monday, monday + timedelta(days=6))
    if kind == "month":
        first = day.replace(day=1)
        end = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        return Bucket(f"{day.year}-{day.month:02d}", first, end)
    quarter = (day.month + 2) // 3
    first = date(day.year, 3 * quarter - 2, 1)
    after = date(day.year + 1, 1, 1) if quarter == 4 else date(day.year, 3 * quarter + 1, 1)
    return Bucket(f"{day.year}-Q{quarter}", first, after - timedelta(days=1))


def periods(kind: PeriodKind, start: date, end: date) -> list[Bucket]:
    """The periods that days `start` to `end` fall in, in order."""
    out = [period_of(kind, start)]
    while out[-1].end < end:
        out.append(period_of(kind, out[-1].end + timedelta(days=1)))
    return out


class BucketOf(FunctionElement[int]):
    """Which of the buckets [bounds[i-1], bounds[i]) `column` falls in: 1..len(bounds)-1,
    or 0 / len(bounds) / NULL outside. PostgreSQL's width_bucket searches the bounds in C;
    on SQLite a nested CASE halves the buckets each step (a few comparisons a row)."""

    type = Integer()
    # The SQL depends on the bounds' number, which a cache key would not see.
    inherit_cache = False

    def __init__(self, column: Any, bounds: list[Any]) -> None:
        super().__init__(column)
        self.column = column
        self.bounds = bounds


@compiles(BucketOf)
def _bucket_case(element: BucketOf, compiler: SQLCompiler, **kw: Any) -> str:
    column, bounds = element.column, element.bounds

    def pick(lo: int, hi: int) -> ColumnElement[int]:  # buckets lo..hi (1-based)
        if lo == hi:
            return literal(lo, Integer())
        half = (lo + hi + 1) // 2
        return case((column < bounds[half - 1], pick(lo, half - 1)), else_=pick(half, hi))

    expr = case((and_(column >= bounds[0], column < bounds[-1]), pick(1, len(bounds) - 1)))
    return compiler.process(expr, **kw)


@compiles(BucketOf, "postgresql")
def _bucket_pg(element: BucketOf, compiler: SQLCompiler, **kw: Any) -> str:
    bounds = array([literal(b, element.column.type) for b in element.bounds])
    return compiler.process(func.width_bucket(element.column, bounds), **kw)


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.count().filter(condition)


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
    # No ticket has a day outside this window: asking beyond it adds no row.
    start, end = max(start, FIRST_DAY), min(end, today + timedelta(days=HORIZON_DAYS))
    if start > end:
        return []
    buckets = periods(period, start, end)
    firsts = [max(b.start, start) for b in buckets]

    def midnight(day: date) -> datetime:
        return datetime.combine(day, time(), tz)

    hi_day = end + timedelta(days=1)
    offset = int((midnight(start).utcoffset() or timedelta()).total_seconds() // 60)

    def day_end(column: Any) -> DayEnd:
        return DayEnd(column, tz.key, offset)

    created, completed = Raw(Ticket.created_at), Raw(Ticket.completed_at)
    due_date, contact_due = Raw(Ticket.due_date), Raw(Ticket.contact_due)
    first_contact = Raw(Ticket.first_contact_at)

    at_bounds = [midnight(d) for d in [*firsts, hi_day]]
    received_in = BucketOf(created, at_bounds)
    completed_in = BucketOf(completed, at_bounds)
    due_in = BucketOf(due_date, [*firsts, hi_day])
    group = _group_column(by).label("grp")
    not_direct = Ticket.kb_article_id.is_(None)
    done = Ticket.status.in_(DONE)
    done_late = and_(done, completed >= day_end(Ticket.due_date))
    # A row per group and (received, completed, due) period, a period NULL when its date
    # is outside the range (its counts are then not used).
    q = (
        select(
            group,
            received_in.label("received_in"),
            completed_in.label("completed_in"),
            due_in.label("due_in"),
            func.count().label("tickets"),
            _count(Ticket.kb_article_id.is_not(None)).label("direct"),
            _count(
                and_(
                    not_direct,
                    or_(Ticket.first_contact_at.is_not(None), contact_due < today),
                )
            ).label("contact_due"),
            _count(and_(not_direct, first_contact < day_end(Ticket.contact_due))).label(
                "contacted"
            ),
            _count(Ticket.survey_outcome.in_(SATISFIED)).label("satisfied"),
            _count(Ticket.survey_outcome.in_(SCORED)).label("scored"),
            _count(Ticket.survey_resolved == "resolved").label("resolved"),
            _count(Ticket.survey_resolved.in_(ANSWERED)).label("answered"),
            _count(Ticket.rehandle_count > 0).label("rehandled"),
            _count(and_(done, not_(done_late))).label("on_time"),
            _count(or_(done_late, and_(Ticket.status.in_(OPEN), due_date < today))).label(
                "overdue"
            ),
        )
        .where(
            Ticket.status.not_in(NOT_ACCEPTED),
            or_(
                and_(created >= midnight(start), created < midnight(hi_day)),
                and_(completed >= midnight(start), completed < midnight(hi_day)),
                and_(due_date >= start, due_date <= end),
            ),
        )
        .group_by("grp", "received_in", "completed_in", "due_in")
    )
    # A group and period's totals: the received, completed and due counts side by side
    # (a few tens of thousands of rows to add up: plain lists, not Counters).
    at = {c.name: i for i, c in enumerate(q.selected_columns)}
    parts = (
        ("received_in", ("tickets", "direct", "contact_due", "contacted")),
        ("completed_in", ("tickets", "satisfied", "scored", "resolved", "answered", "rehandled")),
        ("due_in", ("tickets", "on_time", "overdue")),
    )
    layout, width = [], 0
    for period_column, counts in parts:
        layout.append((at[period_column], width, [at[n] for n in counts]))
        width += len(counts)
    sums: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0] * width)
    for r in _grouped_rows(app, q):
        for bucket_at, first, count_at in layout:
            bucket = r[bucket_at]
            if bucket is not None and 1 <= bucket <= len(buckets):
                totals = sums[(r.grp, bucket)]
                for i, j in enumerate(count_at, first):
                    totals[i] += r[j]
    rows = []
    for (grp, bucket), totals in sums.items():
        b = buckets[bucket - 1]
        (received, direct, contact_due, contacted, completed, satisfied, scored, resolved,
         answered, rehandled, due, on_time, overdue) = totals  # fmt: skip
        rows.append(
            IndicatorRow(
                grp,
                b.label,
                b.start,
                b.end,
                received=received,
                completed=completed,
                due=due,
                satisfaction=Rate(satisfied, scored),
                resolution=Rate(resolved, answered),
                on_time=Rate(on_time, due),
                overdue=Rate(overdue, due),
                rehandle=Rate(rehandled, completed),
                contact=Rate(contacted, contact_due),
                direct=Rate(direct, received),
            )
        )
    return sorted(rows, key=lambda x: (x.group, x.start))


def _grouped_rows(app: Hotline, q: Select[Any]) -> list[Row[Any]]:
    """The rows of the GROUP BY `q`, its scan shared among the cores.

    PostgreSQL does that itself with parallel workers. SQLite runs a statement on one
    core, so the tickets are split into id ranges, each counted by its own connection
    on a thread (sqlite3 releases the GIL while it steps) and the partial counts summed
    by the caller. Each range is its own read snapshot: every ticket counts once, as
    it stood at one of the moments a few milliseconds apart."""
    with app.db.read() as s:
        if s.get_bind().dialect.name == "postgresql":
            # A few thousand groups the planner cannot foresee (it guesses hundreds of
            # thousands, and would sort them on disk): room to hash them.
            s.execute(text("SET LOCAL work_mem = '256MB'"))
            # The same misestimate makes a partial aggregate per worker look useless, so
            # the planner scans serially; aggregating in parallel workers (each returns
            # a few thousand rows, not the hundreds of thousands it guesses) took the
            # slowest report from 1.8 to 1.1 s on 2 cores at load average 2.
            s.execute(text("SET LOCAL parallel_tuple_cost = 0"))
            return list(s.execute(q))
        lo, hi = s.execute(select(func.min(Ticket.id), func.max(Ticket.id))).one()
    parts = min(os.cpu_count() or 1, SQLITE_PARTS)
    # An in-memory database is one per connection: another thread would see none of it.
    in_memory = app.db.engine.url.database in (None, "", ":memory:")
    if lo is None or parts == 1 or in_memory or hi - lo < SQLITE_PART_MIN:
        with app.db.read() as s:
            return list(s.execute(q))
    cuts = [lo - 1 + (hi - lo + 1) * i // parts for i in range(parts + 1)]

    def part(i: int) -> list[Row[Any]]:
        with app.db.read() as s:
            return list(s.execute(q.where(Ticket.id > cuts[i], Ticket.id <= cuts[i + 1])))

    with ThreadPoolExecutor(parts) as pool:
        return [r for rows in pool.map(part, range(parts)) for r in rows]


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


def to_csv(t: Table) -> str:
    return csv_text(t.header, t.rows)
