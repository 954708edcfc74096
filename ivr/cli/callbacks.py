"""`ivr callbacks ...`: the manual callback list (人工回访) and recording a callback."""

from __future__ import annotations

import json

import click

from ivr.cli.common import Ctx, fail, pass_ctx
from ivr.phones import mask_number
from ivr.queries.lifecycle import CALLBACK_REASONS, callback_list
from ivr.services import Actor, ServiceError
from ivr.services.callbacks import CALLBACK_SCORES, record_callback


@click.group()
def callbacks() -> None:
    """人工回访: who to call back, and what they said."""


@callbacks.command("list")
@click.option("--full-numbers", is_flag=True, help="Show the callers' numbers unmasked.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def callbacks_list(c: Ctx, full_numbers: bool, as_json: bool) -> None:
    """Tickets to call back: 不满意, failed automatic attempts, 督办."""
    app = c.hotline()
    show = (lambda n: n or "") if full_numbers else mask_number
    with app.db.read() as s:
        rows = [
            {
                "number": i.ticket.number,
                "status": i.ticket.status,
                "department": i.ticket.department,
                "caller": show(i.ticket.caller_number),
                "reasons": i.reasons,
            }
            for i in callback_list(s)
        ]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for r in rows:
        why = "、".join(CALLBACK_REASONS[k] for k in r["reasons"])
        click.echo(f"{r['number']}  {r['caller']:<13} {r['status']:<10} {r['department']}  {why}")


@callbacks.command("record")
@click.argument("number")
@click.option("--score", type=click.Choice(CALLBACK_SCORES), required=True)
@click.option("--resolved", type=click.Choice(["resolved", "unresolved"]), default=None)
@click.option("--note", default="", help="What the caller said.")
@pass_ctx
def callbacks_record(c: Ctx, number: str, score: str, resolved: str | None, note: str) -> None:
    """Record a manual callback as a survey attempt (counted by the survey reports)."""
    app = c.hotline()
    try:
        attempt = record_callback(app, Actor.cli(), number, score, resolved, note)
    except ServiceError as exc:
        fail(exc.message, 1)
    click.echo(f"{number}: callback recorded (attempt {attempt})")
