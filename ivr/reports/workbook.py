"""Indicator workbooks (openpyxl): the table of `ivr report indicators --xlsx` and the
monthly report (月度考核报表): a sheet per grouping with its table and a bar chart of the
rates, and a trend sheet over the last 12 months with a line chart. Charts are native
Excel charts that refer to the cells, so the office can restyle them."""

from __future__ import annotations

import io
from datetime import date, timedelta
from typing import TYPE_CHECKING

from openpyxl import Workbook
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from ivr.reports.indicators import (
    GROUPING_ZH,
    GROUPINGS,
    INDICATORS,
    Grouping,
    IndicatorRow,
    PeriodKind,
    indicators,
    period_of,
    table,
)
from ivr.reports.operations import Table

if TYPE_CHECKING:
    from ivr.app import Hotline

TREND_SHEET = "近12个月趋势"
# Columns of `table()`: group, period, three counts, then (rate, numerator, denominator)
# per indicator.
FIRST_RATE_COLUMN = 6


def _rate_columns() -> list[int]:
    return [FIRST_RATE_COLUMN + 3 * i for i in range(len(INDICATORS))]


def _write(ws: Worksheet, t: Table) -> None:
    ws.append(t.header)
    for row in t.rows:
        ws.append(row)
        for cell in ws[ws.max_row]:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # text, never a formula
    for col in _rate_columns():
        for (cell,) in ws.iter_rows(min_row=2, min_col=col, max_col=col):
            cell.number_format = "0.0%"
    for i, name in enumerate(t.header, start=1):
        longest = max([len(str(name)), *(len(str(r[i - 1])) for r in t.rows)])
        ws.column_dimensions[get_column_letter(i)].width = min(40, 2 + longest * 1.6)
    ws.freeze_panes = "C2"


def _chart(ws: Worksheet, chart: BarChart | LineChart, title: str, category_col: int) -> None:
    rows = ws.max_row
    chart.title = title
    chart.y_axis.title = "比率"
    chart.y_axis.number_format = "0%"
    chart.y_axis.scaling.min = 0
    chart.y_axis.scaling.max = 1
    chart.height, chart.width = 9, max(18, min(40, rows * 1.2))
    for col in _rate_columns():
        chart.add_data(Reference(ws, min_col=col, min_row=1, max_row=rows), titles_from_data=True)
    chart.set_categories(Reference(ws, min_col=category_col, min_row=2, max_row=rows))
    ws.add_chart(chart, f"A{rows + 3}")


def _bar(ws: Worksheet, title: str, category_col: int = 1) -> None:
    chart = BarChart()
    chart.type = "col"
    _chart(ws, chart, title, category_col)


def _save(wb: Workbook) -> bytes:
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def indicators_xlsx(rows: list[IndicatorRow], by: Grouping, period: PeriodKind) -> bytes:
    """One sheet: the table and a bar chart of the rates per group (and period)."""
    t = table(rows, by, period)
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "考核指标"
    _write(ws, t)
    if rows:
        _bar(ws, t.title)
    return _save(wb)


def month_bounds(month: date) -> tuple[date, date]:
    b = period_of("month", month)
    return b.start, b.end


def monthly_xlsx(app: Hotline, month: date, today: date | None = None) -> bytes:
    """The monthly report of the month `month` falls in: a sheet per grouping (全部,
    部门, 热线, 类别) and the trend of the last 12 months (this one included)."""
    start, end = month_bounds(month)
    wb = Workbook()
    wb.remove(wb.active)  # type: ignore[arg-type]
    label = f"{start.year}年{start.month}月"
    for by in GROUPINGS:
        rows = indicators(app, start, end, by, "month", today)
        ws = wb.create_sheet(GROUPING_ZH[by])
        _write(ws, table(rows, by, "month"))
        if rows:
            _bar(ws, f"{label}考核指标（按{GROUPING_ZH[by]}）")
    back = start.year * 12 + start.month - 1 - 11
    first = date(back // 12, back % 12 + 1, 1)
    trend = indicators(app, period_of("month", first).start, end, "all", "month", today)
    months: list[date] = []
    d = first
    while d <= start:
        months.append(d)
        d = period_of("month", d).end + timedelta(days=1)
    found = {r.period: r for r in trend}
    filled = [
        found.get(period_of("month", m).label)
        or IndicatorRow("全部", period_of("month", m).label, m, period_of("month", m).end)
        for m in months
    ]
    ws = wb.create_sheet(TREND_SHEET)
    t = table(filled, "all", "month")
    t.header[0], t.header[1] = "月份", "分组"
    for r in t.rows:
        r[0], r[1] = r[1], r[0]
    _write(ws, t)
    chart = LineChart()
    _chart(ws, chart, f"近12个月考核指标趋势（截至{label}）", 1)
    return _save(wb)
