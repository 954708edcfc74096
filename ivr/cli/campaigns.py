"""`ivr campaign ...`: satisfaction callback campaigns and the do-not-call list."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ivr.cli.common import Ctx, fail, pass_ctx
from ivr.services import Actor, ServiceError


@click.group()
def campaign() -> None:
    """Satisfaction callback campaigns (满意度回访)."""


@campaign.command("create")
@click.option("--name", required=True)
@click.option(
    "--from",
    "date_from",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="Completed on or after this day.",
)
@click.option(
    "--to",
    "date_to",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="Completed on or before this day.",
)
@click.option("--line", default=None)
@click.option("--department", default=None)
@click.option("--category", default=None)
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Survey these instead: ticket number,phone per line.",
)
@pass_ctx
def campaign_create(
    c: Ctx,
    name: str,
    date_from: Any,
    date_to: Any,
    line: str | None,
    department: str | None,
    category: str | None,
    csv_path: Path | None,
) -> None:
    """Plan a campaign over completed tickets not yet surveyed (or a CSV)."""
    from ivr.services.campaigns import create_campaign, create_campaign_from_csv
    from ivr.surveys.campaigns import Filters

    app = c.hotline()
    try:
        if csv_path is not None:
            try:
                text = csv_path.read_text(encoding="utf-8-sig")
            except (OSError, UnicodeDecodeError) as exc:
                fail(f"{csv_path}: cannot read: {exc}", 1)
            planned, problems = create_campaign_from_csv(
                app, Actor.cli(), name, text, csv_path.name
            )
            for p in problems:
                click.echo(f"skipped: {p}", err=True)
        else:
            f = Filters(
                date_from.date() if date_from else None,
                date_to.date() if date_to else None,
                line,
                department,
                category,
            )
            planned = create_campaign(app, Actor.cli(), name, f)
    except ServiceError as exc:
        fail(exc.message, 1)
    click.echo(f"campaign {planned.campaign_id}: {planned.planned} ticket(s) planned")


@campaign.command("run")
@click.argument("campaign_id", type=int)
@click.option(
    "--dialer",
    "dialer_name",
    type=click.Choice(["sip", "twilio"]),
    default=None,
    help="Default: surveys.dialer from config.",
)
@click.option("--max-seconds", type=float, default=None, help="Stop after this long.")
@click.option(
    "--wait/--no-wait", default=False, help="Keep running through retry spacing and closed windows."
)
@pass_ctx
def campaign_run(
    c: Ctx, campaign_id: int, dialer_name: str | None, max_seconds: float | None, wait: bool
) -> None:
    """Call the campaign's citizens now (within the calling windows).

    The same dispatch, dial job and call limits as `ivr serve`: with REDIS_URL the
    calls are queued for every worker (this process included) under the global
    limits; without, they run in this process.
    """
    from tqdm import tqdm

    from ivr.jobs.broker import BrokerError
    from ivr.surveys.campaigns import CampaignError, progress
    from ivr.surveys.run import run_campaign

    app = c.hotline()
    with app.db.read() as s:
        planned = progress(s, campaign_id).get("planned", 0)
    dialer, stop = _dialer(app, dialer_name or c.settings.surveys.dialer)
    bar = tqdm(total=planned, unit="call", desc=f"campaign {campaign_id}")

    def advance(summary: Any) -> None:
        bar.update(summary.dialed - bar.n)

    try:
        summary = run_campaign(
            app,
            dialer,
            campaign_id,
            max_seconds=max_seconds,
            stop_when_idle=not wait,
            on_progress=advance,
        )
    except CampaignError as exc:
        fail(str(exc), 1)
    except BrokerError as exc:
        fail(f"cannot queue survey calls: {exc}", 2)
    finally:
        bar.close()
        stop()
    click.echo(
        f"{summary.state}: dialed {summary.dialed}; "
        + ", ".join(f"{k} {v}" for k, v in sorted(summary.outcomes.items()))
    )
    if summary.next_due:
        click.echo(f"next attempt due {summary.next_due.astimezone(c.settings.tz):%Y-%m-%d %H:%M}")


def _dialer(app: Any, name: str) -> tuple[Any, Any]:
    if name == "sip":
        from ivr.transports.sip.dialer import SipDialer
        from ivr.transports.sip.endpoint import SipPortInUse
        from ivr.transports.sip.service import build_phone

        try:
            phone = build_phone(app, dialer=True)
        except SipPortInUse as exc:
            fail(str(exc), 2)
        phone.start()
        return SipDialer(phone), phone.stop
    from ivr.transports.twilio.dialer import DialerError, TwilioDialer

    try:
        dialer = TwilioDialer.from_settings(app)
    except DialerError as exc:
        fail(f"cannot dial through Twilio: {exc}", 2)
    return dialer, lambda: None


@campaign.command("pause")
@click.argument("campaign_id", type=int)
@pass_ctx
def campaign_pause(c: Ctx, campaign_id: int) -> None:
    """Stop claiming new calls (calls in progress finish)."""
    from ivr.services.campaigns import pause_campaign

    _change(c, campaign_id, pause_campaign, "paused")


@campaign.command("resume")
@click.argument("campaign_id", type=int)
@pass_ctx
def campaign_resume(c: Ctx, campaign_id: int) -> None:
    """Start a created campaign, or go on with a paused one."""
    from ivr.services.campaigns import resume_campaign

    _change(c, campaign_id, resume_campaign, "running")


def _change(c: Ctx, campaign_id: int, change: Callable[..., None], status: str) -> None:
    try:
        change(c.hotline(), Actor.cli(), campaign_id)
    except ServiceError as exc:
        fail(exc.message, 1)
    click.echo(f"campaign {campaign_id}: {status}")


@campaign.command("status")
@click.argument("campaign_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def campaign_status(c: Ctx, campaign_id: int, as_json: bool) -> None:
    from ivr.queries.campaigns import one_campaign

    app = c.hotline()
    with app.db.read() as s:
        camp = one_campaign(s, campaign_id)
    if camp is None:
        fail(f"no campaign {campaign_id}", 1)
    data = {"id": camp.id, "name": camp.name, "status": camp.status, "counts": camp.progress}
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    click.echo(f"campaign {camp.id} {camp.name!r}: {camp.status}")
    for k, v in sorted(camp.progress.items()):
        click.echo(f"  {k:<24} {v}")


@campaign.command("report")
@click.option("--campaign", "campaign_id", type=int, default=None)
@click.option(
    "--by",
    type=click.Choice(["department", "line", "category", "week", "campaign"]),
    default="department",
    show_default=True,
)
@click.option(
    "--csv",
    "csv_out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the report as CSV to this file.",
)
@pass_ctx
def campaign_report(c: Ctx, campaign_id: int | None, by: str, csv_out: Path | None) -> None:
    """满意率, response rate and attempts."""
    from ivr.reports.surveys import report, to_csv, total

    app = c.hotline()
    rows = report(app, by, campaign_id)  # type: ignore[arg-type]
    if csv_out is not None:
        csv_out.write_text(to_csv(rows), encoding="utf-8-sig")
    click.echo(f"{by:<22} tickets attempts 满意 基本满意 不满意 未评价  满意率  回复率")
    for r in [*rows, total(rows)]:
        sat = "-" if r.satisfaction_rate is None else f"{r.satisfaction_rate:6.1%}"
        resp = "-" if r.response_rate is None else f"{r.response_rate:6.1%}"
        click.echo(
            f"{r.group:<22} {r.tickets:>7} {r.attempts:>8} {r.satisfied:>4} "
            f"{r.basically_satisfied:>8} {r.unsatisfied:>6} {r.no_response:>6} "
            f"{sat:>7} {resp:>7}"
        )


@campaign.command("dnc")
@click.argument("number")
@click.option("--reason", default="opted out")
@pass_ctx
def campaign_dnc(c: Ctx, number: str, reason: str) -> None:
    """Never call NUMBER for a survey again."""
    from ivr.phones import mask_number
    from ivr.services.dnc import add_do_not_call

    try:
        listed = add_do_not_call(c.hotline(), Actor.cli(), number, reason)
    except ServiceError as exc:
        fail(exc.message)
    already = "" if listed.added else " (it was on the list already)"
    click.echo(f"{mask_number(listed.number)} will not be called{already}")
