"""Reports for supervisors: charts drawn on the server, CSV and Excel downloads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, cast

from flask import abort, render_template, request
from markupsafe import Markup

from ivr.reports.indicators import (
    GROUPING_ZH,
    GROUPINGS,
    INDICATORS,
    PERIOD_ZH,
    PERIODS,
    Grouping,
    PeriodKind,
    indicators,
    table,
)
from ivr.reports.operations import (
    Period,
    Table,
    complaint_keywords,
    overdue,
    overdue_by_department,
    satisfaction_by_department_week,
    volumes,
)
from ivr.reports.workbook import indicators_xlsx, monthly_xlsx
from ivr.store.models import Role
from webhooks.console import bp
from webhooks.console.auth import hotline, record, require
from webhooks.console.charts import (
    bar_chart,
    indicators_chart,
    satisfaction_chart,
    volumes_chart,
)
from webhooks.console.export import XLSX, csv_response, download, xlsx_response

DEFAULT_DAYS = 14
MAX_DAYS = 366
# Reports convert local days to UTC and back: keep clear of the calendar's ends.
EARLIEST, LATEST = date(1900, 1, 1), date(9000, 12, 31)


@dataclass
class Reports:
    period: Period
    volumes: Table
    satisfaction: Table
    overdue: Table
    keywords: Table

    def tables(self) -> dict[str, Table]:
        return {
            "volumes": self.volumes,
            "satisfaction": self.satisfaction,
            "overdue": self.overdue,
            "keywords": self.keywords,
        }


def _period(month_so_far: bool = False) -> Period:
    """The from/to days asked for; by default the last DEFAULT_DAYS days (or, with
    `month_so_far`, the month up to `to`)."""
    today = hotline().today()
    try:
        end = date.fromisoformat(request.args.get("to") or today.isoformat())
        default = end.replace(day=1) if month_so_far else end - timedelta(days=DEFAULT_DAYS - 1)
        start = date.fromisoformat(request.args.get("from") or default.isoformat())
    except (ValueError, OverflowError):  # not a date, or a default before year 1
        abort(400, description="日期格式应为 YYYY-MM-DD")
    if start > end or (end - start).days >= MAX_DAYS:
        abort(400, description=f"请选择 1 到 {MAX_DAYS} 天的时间段，开始日期不晚于结束日期")
    if not (start >= EARLIEST and end <= LATEST):
        abort(400, description=f"日期应在 {EARLIEST} 到 {LATEST} 之间")
    return Period(start, end)


def _reports() -> Reports:
    app = hotline()
    period = _period()
    return Reports(
        period,
        volumes(app, period),
        satisfaction_by_department_week(app),
        overdue(app, app.today()),
        complaint_keywords(app, period),
    )


@bp.get("/reports")
@require(Role.SUPERVISOR)
def reports() -> Any:
    r = _reports()
    days = [d.isoformat() for d in r.period.days()]
    overdue_counts = overdue_by_department(r.overdue).most_common()
    charts = {
        "volumes": volumes_chart(r.volumes, days),
        "satisfaction": satisfaction_chart(r.satisfaction),
        "overdue": bar_chart(r.overdue.title + "（按部门）", overdue_counts, "工单数"),
        "keywords": bar_chart(
            r.keywords.title, [(w, n) for w, n in r.keywords.rows], "包含该词的投诉工单数"
        ),
    }
    return render_template(
        "console/reports.html",
        r=r,
        charts={k: Markup(v) for k, v in charts.items()},  # our own SVG, from matplotlib
    )


@bp.get("/reports/<name>.csv")
@require(Role.SUPERVISOR)
def report_csv(name: str) -> Any:
    r = _reports()
    table = r.tables().get(name)
    if table is None:
        abort(404)
    app = hotline()
    with app.db.session() as s:
        record(s, "report.export", None, {"table": name, "format": "csv"})
    return csv_response(table, f"{name}-{r.period.start}-{r.period.end}.csv")


@bp.get("/reports/report.xlsx")
@require(Role.SUPERVISOR)
def report_xlsx() -> Any:
    r = _reports()
    app = hotline()
    with app.db.session() as s:
        record(s, "report.export", None, {"table": "all", "format": "xlsx"})
    return xlsx_response(list(r.tables().values()), f"report-{r.period.start}-{r.period.end}.xlsx")


def _choice(name: str, choices: tuple[str, ...], default: str) -> str:
    value = request.args.get(name) or default
    if value not in choices:
        abort(400, description=f"{name} 应为 {'、'.join(choices)} 之一")
    return value


def _indicator_args() -> tuple[Period, Grouping, PeriodKind]:
    period = _period(month_so_far=True)
    by = cast(Grouping, _choice("by", GROUPINGS, "department"))
    kind = cast(PeriodKind, _choice("period", PERIODS, "month"))
    return period, by, kind


@bp.get("/reports/indicators")
@require(Role.SUPERVISOR)
def indicators_page() -> Any:
    app = hotline()
    period, by, kind = _indicator_args()
    rows = indicators(app, period.start, period.end, by, kind)
    latest = max((r.start for r in rows), default=None)
    shown = [r for r in rows if r.start == latest]
    chart = indicators_chart(
        f"{shown[0].period if shown else ''} 考核指标（按{GROUPING_ZH[by]}）",
        [r.group for r in shown],
        {zh: [getattr(r, name).rate for r in shown] for name, zh in INDICATORS},
    )
    return render_template(
        "console/indicators.html",
        rows=rows,
        indicators=INDICATORS,
        period=period,
        by=by,
        kind=kind,
        groupings=GROUPING_ZH,
        periods=PERIOD_ZH,
        month=period.end.strftime("%Y-%m"),
        chart=Markup(chart),  # our own SVG, from matplotlib
    )


@bp.get("/reports/indicators.<fmt>")
@require(Role.SUPERVISOR)
def indicators_export(fmt: str) -> Any:
    if fmt not in ("csv", "xlsx"):
        abort(404)
    app = hotline()
    period, by, kind = _indicator_args()
    rows = indicators(app, period.start, period.end, by, kind)
    with app.db.session() as s:
        record(s, "report.export", None, {"table": "indicators", "by": by, "format": fmt})
    name = f"indicators-{by}-{kind}-{period.start}-{period.end}"
    if fmt == "csv":
        return csv_response(table(rows, by, kind), f"{name}.csv")
    return download(indicators_xlsx(rows, by, kind), XLSX, f"{name}.xlsx")


@bp.get("/reports/monthly.xlsx")
@require(Role.SUPERVISOR)
def monthly_export() -> Any:
    app = hotline()
    raw = request.args.get("month") or app.today().strftime("%Y-%m")
    try:
        month = datetime.strptime(raw, "%Y-%m").date()
    except ValueError:
        abort(400, description="月份格式应为 YYYY-MM")
    if not (EARLIEST <= month <= LATEST):
        abort(400, description=f"月份应在 {EARLIEST} 到 {LATEST} 之间")
    with app.db.session() as s:
        record(s, "report.export", None, {"table": "monthly", "month": raw, "format": "xlsx"})
    return download(monthly_xlsx(app, month), XLSX, f"monthly-{raw}.xlsx")
