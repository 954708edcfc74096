"""`ivr report`: the office's indicators (考核指标) and the monthly report workbook."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import click

from ivr.cli.common import Ctx, fail, pass_ctx
from ivr.reports.indicators import GROUPINGS, INDICATORS, PERIODS


@click.group()
def report() -> None:
    """考核指标 by department, line or category, and the monthly report."""


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{option} {value!r}: give a date such as 2026-11-01")


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"


@report.command("indicators")
@click.option("--from", "start", required=True, help="First local day, e.g. 2026-11-01.")
@click.option("--to", "end", required=True, help="Last local day (inclusive).")
@click.option("--by", type=click.Choice(GROUPINGS), default="department", show_default=True)
@click.option("--period", type=click.Choice(PERIODS), default="month", show_default=True)
@click.option("--csv", "csv_out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--xlsx", "xlsx_out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--at", default=None, help="As of this local time (decides what is overdue).")
@pass_ctx
def indicators_cmd(
    c: Ctx,
    start: str,
    end: str,
    by: str,
    period: str,
    csv_out: Path | None,
    xlsx_out: Path | None,
    at: str | None,
) -> None:
    """满意率, 解决率, 按期办结率, 超期率, 重办率, 及时联系率 and 直办率 (README "Indicators")."""
    from ivr.reports.indicators import indicators, table, to_csv
    from ivr.reports.workbook import indicators_xlsx

    first, last = _day(start, "--from"), _day(end, "--to")
    if first > last:
        fail("--from is after --to")
    if at:
        c.set_time(at)
    rows = indicators(c.hotline(), first, last, by, period, c.today())  # type: ignore[arg-type]
    if csv_out is not None:
        # The byte order mark makes Excel read the Chinese text as UTF-8.
        csv_out.write_text(to_csv(table(rows, by, period)), encoding="utf-8-sig")  # type: ignore[arg-type]
    if xlsx_out is not None:
        xlsx_out.write_bytes(indicators_xlsx(rows, by, period))  # type: ignore[arg-type]
    names = "".join(f"{zh:>8}" for _, zh in INDICATORS)
    click.echo(f"{'分组':<14}{'周期':<10}{'受理':>6}{'办结':>6}{'应办结':>6}{names}")
    for r in rows:
        rates = "".join(f"{_pct(getattr(r, name).rate):>11}" for name, _ in INDICATORS)
        click.echo(f"{r.group:<14}{r.period:<10}{r.received:>8}{r.completed:>8}{r.due:>8}{rates}")


@report.command("monthly")
@click.option("--month", required=True, help="The month, e.g. 2026-11.")
@click.option("--xlsx", "xlsx_out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--at", default=None, help="As of this local time (decides what is overdue).")
@pass_ctx
def monthly_cmd(c: Ctx, month: str, xlsx_out: Path, at: str | None) -> None:
    """The monthly report workbook: a sheet per grouping with charts, a 12-month trend."""
    from ivr.reports.workbook import monthly_xlsx

    try:
        first = datetime.strptime(month, "%Y-%m").date()
    except ValueError:
        fail(f"--month {month!r}: give a month such as 2026-11")
    if at:
        c.set_time(at)
    xlsx_out.write_bytes(monthly_xlsx(c.hotline(), first, c.today()))
    click.echo(f"written {xlsx_out}")
