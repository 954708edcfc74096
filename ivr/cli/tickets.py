"""`ivr tickets ...`: list, show and complete tickets; extend, return, re-dispatch, review
and supervise them (督办 list and scan)."""

from __future__ import annotations

import json
from collections.abc import Callable

import click

from ivr.cli.common import Ctx, fail, pass_ctx, ticket_text
from ivr.phones import mask_number
from ivr.queries.lifecycle import returns_by_department, supervision_list
from ivr.queries.tickets import TicketQuery, find, search
from ivr.services import Actor, ServiceError, lifecycle, supervision
from ivr.services import tickets as service
from ivr.services.contacts import CHANNELS, record_contact
from ivr.services.tickets import Changed
from ivr.tickets import masked, to_dict, to_dicts


@click.group()
def tickets() -> None:
    """List, show and complete tickets; 延期, 退回, 复核, 督办."""


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
        rows = to_dicts(found, history_days=history)
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


def at_option(f: Callable[..., None]) -> Callable[..., None]:
    return click.option(
        "--at", default=None, help="As of this local time, e.g. 2026-12-14T10:00 (default: now)."
    )(f)


def _show(change: Callable[[Actor], Changed], as_json: bool) -> None:
    """Apply one change as cli:<your login> and show the ticket, or fail with the refusal."""
    try:
        data = masked(change(Actor.cli()).shown)
    except ServiceError as exc:
        fail(exc.message, 1)
    click.echo(json.dumps(data, ensure_ascii=False, indent=2) if as_json else ticket_text(data))


@tickets.command("extend")
@click.argument("number")
@click.option("--workdays", type=int, required=True, help="Working days added to the due date.")
@click.option("--reason", required=True, help="Why (延期原因).")
@click.option("--consent", is_flag=True, help="The caller agreed to the extension.")
@click.option("--json", "as_json", is_flag=True)
@at_option
@pass_ctx
def tickets_extend(
    c: Ctx, number: str, workdays: int, reason: str, consent: bool, as_json: bool, at: str | None
) -> None:
    """延期: move the due date, on the working-day calendar (before the deadline)."""
    if at:
        c.set_time(at)
    app = c.hotline()
    _show(lambda who: lifecycle.extend(app, who, number, workdays, reason, consent), as_json)


@tickets.command("return")
@click.argument("number")
@click.option("--reason", required=True, help="Why the department is not responsible.")
@click.option("--onsite", is_flag=True, help="The return needed an on-site check.")
@click.option("--json", "as_json", is_flag=True)
@at_option
@pass_ctx
def tickets_return(
    c: Ctx, number: str, reason: str, onsite: bool, as_json: bool, at: str | None
) -> None:
    """退回: the department gives the ticket back for re-dispatch (within its window)."""
    if at:
        c.set_time(at)
    app = c.hotline()
    _show(lambda who: lifecycle.return_ticket(app, who, number, reason, onsite=onsite), as_json)


@tickets.command("contacted")
@click.argument("number")
@click.option("--at", default=None, help="When, local time, e.g. 2026-12-14T10:00 (default: now).")
@click.option("--department", default=None, help="Who made contact (default: the ticket's).")
@click.option("--channel", type=click.Choice(list(CHANNELS)), default="phone", show_default=True)
@click.option("--note", default="", help="What was said.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def tickets_contacted(
    c: Ctx,
    number: str,
    at: str | None,
    department: str | None,
    channel: str,
    note: str,
    as_json: bool,
) -> None:
    """及时联系: record that the department contacted the caller."""
    app = c.hotline()
    when = c.local_time(at, "--at") if at else None
    _show(
        lambda who: record_contact(
            app, who, number, at=when, department=department, channel=channel, note=note
        ),
        as_json,
    )


@tickets.command("redispatch")
@click.argument("number")
@click.option("--department", required=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def tickets_redispatch(c: Ctx, number: str, department: str, as_json: bool) -> None:
    """Send a returned ticket to another department."""
    app = c.hotline()
    _show(lambda who: lifecycle.redispatch(app, who, number, department), as_json)


@tickets.command("review")
@click.argument("number")
@click.argument("decision", type=click.Choice(["confirm", "overrule"]))
@click.option("--reason", required=True, help="The review's finding (复核意见).")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def tickets_review(c: Ctx, number: str, decision: str, reason: str, as_json: bool) -> None:
    """复核 of a 不满意: confirm (重办) or overrule."""
    app = c.hotline()
    _show(lambda who: lifecycle.review(app, who, number, decision, reason), as_json)


@tickets.command("supervise")
@click.argument("number")
@click.option("--reason", required=True, help="Why (督办原因).")
@pass_ctx
def tickets_supervise(c: Ctx, number: str, reason: str) -> None:
    """人工督办: put a ticket under supervision."""
    app = c.hotline()
    try:
        shown = lifecycle.supervise(app, Actor.cli(), number, reason)
    except ServiceError as exc:
        fail(exc.message, 1)
    click.echo(f"{shown} 已督办")


@tickets.command("supervision")
@click.option("--scan", is_flag=True, help="First supervise what the rules say (overdue, repeats).")
@click.option("--json", "as_json", is_flag=True)
@at_option
@pass_ctx
def tickets_supervision(c: Ctx, scan: bool, as_json: bool, at: str | None) -> None:
    """The 督办 list: tickets under supervision and why."""
    if at:
        c.set_time(at)
    app = c.hotline()
    if scan:
        counts = supervision.scan(app, Actor.cli())
        click.echo("scan: " + ", ".join(f"{k} {v}" for k, v in counts.items()), err=True)
    with app.db.read() as s:
        rows = [
            {
                "number": r.ticket.number,
                "status": r.ticket.status,
                "department": r.ticket.department,
                "due_date": r.ticket.due_date.isoformat(),
                "caller": mask_number(r.ticket.caller_number),
                "source": r.source,
                "reason": r.reason,
                "since": r.since.astimezone(app.settings.tz).isoformat(timespec="minutes"),
            }
            for r in supervision_list(s)
        ]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for r in rows:
        label = supervision.SOURCES.get(r["source"], r["source"])
        click.echo(
            f"{r['number']}  {r['status']:<10} {r['department']:<14} due {r['due_date']}  "
            f"{label}: {r['reason']}"
        )


@tickets.command("returns")
@pass_ctx
def tickets_returns(c: Ctx) -> None:
    """退回 counted per department that returned."""
    app = c.hotline()
    with app.db.read() as s:
        counts = returns_by_department(s)
    for department, n in counts.items():
        click.echo(f"{department:<16} {n}")


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
