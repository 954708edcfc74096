"""`ivr tickets ...`: list, show and complete tickets."""

from __future__ import annotations

import json

import click

from ivr.cli.common import Ctx, fail, pass_ctx, ticket_text
from ivr.queries.tickets import TicketQuery, find, search
from ivr.services import Actor, ServiceError
from ivr.services import tickets as service
from ivr.tickets import masked, to_dict


@click.group()
def tickets() -> None:
    """List, show and complete tickets."""


@tickets.command("list")
@click.option("--status", default=None, help="Only tickets with this status.")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def tickets_list(c: Ctx, status: str | None, limit: int, as_json: bool) -> None:
    app = c.hotline()
    with app.db.read() as s:
        found, _ = search(s, TicketQuery(status=status or None), app.settings.tz, limit)
        history = app.settings.duplicates.history_days
        rows = [to_dict(t, history_days=history) for t in found]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for t in rows:
        flag = "!" if t["urgent"] else " "
        click.echo(
            f"{flag} {t['number']}  {t['status']:<10} {t['line']:<6} {t['category']} "
            f"{t['department']:<14} due {t['due_date']}  {t['summary']}"
        )


@tickets.command("show")
@click.argument("number")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def tickets_show(c: Ctx, number: str, as_json: bool) -> None:
    app = c.hotline()
    with app.db.read() as s:
        ticket = find(s, number)
        if ticket is None:
            fail(f"no ticket {number}", 1)
        data = to_dict(ticket, history_days=app.settings.duplicates.history_days)
    click.echo(json.dumps(data, ensure_ascii=False, indent=2) if as_json else ticket_text(data))


@tickets.command("complete")
@click.argument("number")
@click.option("--note", required=True, help="The result (办结说明).")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def tickets_complete(c: Ctx, number: str, note: str, as_json: bool) -> None:
    """Mark a ticket completed (办结) with a result note (audited as cli:<your login>)."""
    app = c.hotline()
    try:
        data = masked(service.complete(app, Actor.cli(), number, note).shown)
    except ServiceError as exc:
        fail(exc.message, 1)
    click.echo(json.dumps(data, ensure_ascii=False, indent=2) if as_json else ticket_text(data))


@tickets.command("answer")
@click.argument("number")
@click.option("--article", "article_id", type=click.IntRange(1, 2**31 - 1), required=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def tickets_answer(c: Ctx, number: str, article_id: int, as_json: bool) -> None:
    """直接办结 a 咨询 ticket with a knowledge-base article as the answer."""
    app = c.hotline()
    try:
        changed = service.answer_from_article(app, Actor.cli(), number, article_id)
    except ServiceError as exc:
        fail(exc.message, 1)
    data = masked(changed.shown)
    click.echo(json.dumps(data, ensure_ascii=False, indent=2) if as_json else ticket_text(data))
