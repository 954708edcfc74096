"""`ivr calendar show YEAR`: the holidays and 调休 working days deadlines and surveys count on."""

from __future__ import annotations

import json

import click

from ivr.cli.common import Ctx, pass_ctx
from ivr.workdays import Day, WorkCalendar

WEEKDAYS = "一二三四五六日"


@click.group()
def calendar() -> None:
    """The working-day calendar (official, estimated, config)."""


def _row(d: Day) -> dict[str, object]:
    return {
        "date": d.day.isoformat(),
        "weekday": f"周{WEEKDAYS[d.day.weekday()]}",
        "kind": "workday" if d.workday else "holiday",
        "name": d.name,
        "source": d.source,
    }


@calendar.command("show")
@click.argument("year", type=click.IntRange(1900, 2100))
@click.option("--json", "as_json", is_flag=True, help="Print the days as JSON.")
@pass_ctx
def show(c: Ctx, year: int, as_json: bool) -> None:
    """Every holiday and 调休 working day of YEAR, with its name and source."""
    cal = WorkCalendar.from_config(c.settings.calendar)
    source = cal.year_source(year)
    rows = [_row(d) for d in cal.special_days(year)]
    if as_json:
        click.echo(json.dumps({"year": year, "source": source, "days": rows}, ensure_ascii=False))
        return
    if source == "official":
        click.echo(f"{year}: official (the State Council notice, from chinesecalendar)")
    else:
        click.echo(
            f"{year}: estimated from the national holiday rules; the State Council's 调休 "
            "make-up working days are not known: add them to calendar.extra_workdays"
        )
    for r in rows:
        kind = "休" if r["kind"] == "holiday" else "班"
        click.echo(f"{r['date']} {r['weekday']} {kind} {r['source']:<9} {r['name'] or '-'}")
