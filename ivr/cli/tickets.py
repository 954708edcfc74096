"""`ivr tickets ...`: list, show and complete tickets."""

from __future__ import annotations

import json

import click
from sqlalchemy import select

from ivr.cli.common import Ctx, fail, pass_ctx, ticket_text
from ivr.store import Ticket
from ivr.tickets import TicketError, complete, find, to_dict


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
    with app.db.session() as s:
        q = select(Ticket).order_by(Ticket.id.desc()).limit(limit)
        if status:
            q = q.where(Ticket.status == status)
        history = app.settings.duplicates.history_days
        rows = [to_dict(t, history_days=history) for t in s.scalars(q)]
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
    with app.db.session() as s:
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
    """Mark a ticket completed (办结) with a result note."""
    app = c.hotline()
    try:
        with app.db.session() as s:
            ticket = find(s, number)
            if ticket is None:
                fail(f"no ticket {number}", 1)
            complete(ticket, note, app.clock.now())
            data = to_dict(ticket, history_days=app.settings.duplicates.history_days)
    except TicketError as exc:
        fail(str(exc), 1)
    click.echo(json.dumps(data, ensure_ascii=False, indent=2) if as_json else ticket_text(data))
