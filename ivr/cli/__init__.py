"""The `ivr` command."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
from sqlalchemy import select

from ivr.accounts import (
    ROLES,
    AccountError,
    create_user,
    find_user,
    issue_token,
    set_password,
    set_role,
)
from ivr.config import ConfigError, Settings, load_config
from ivr.flow import FlowError, Gather, Hangup, Record, Say, Transfer, Verb
from ivr.runtime import logs
from ivr.store import SchemaNotReady, Ticket, User
from ivr.store import upgrade as db_upgrade
from ivr.tickets import TicketError, complete, find, to_dict

log = logging.getLogger("ivr.cli")


def fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class Ctx:
    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_config(self.config_path)
            except ConfigError as exc:
                fail(str(exc))
        return self._settings

    def hotline(self) -> Any:
        from ivr.app import Hotline

        try:
            return Hotline.open(self.settings)
        except (SchemaNotReady, FlowError) as exc:
            fail(str(exc))


pass_ctx = click.make_pass_decorator(Ctx)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    envvar="IVR_CONFIG",
    help="config.yaml to use (default: the project's).",
)
@click.option(
    "--log-level",
    default="WARNING",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
@click.pass_context
def main(ctx: click.Context, config_path: str | None, log_level: str) -> None:
    """hotline-ivr: answer 12345 calls, draft tickets, run satisfaction callbacks."""
    try:
        logs.setup(log_level, os.environ.get("IVR_LOG_FORMAT", "text"))
    except ValueError as exc:
        fail(f"IVR_LOG_FORMAT: {exc}")
    ctx.obj = Ctx(config_path)


@main.command()
@click.option("--host", default=None, help="Bind address (default: http.host from config).")
@click.option("--port", type=int, default=None, help="Port (default: http.port from config).")
@click.option(
    "--role",
    "role",
    default="all",
    show_default=True,
    help="web, sip, worker, scheduler or all; several comma-separated (sip,worker).",
)
@click.option(
    "--web-workers",
    type=int,
    default=2,
    show_default=True,
    help="gunicorn worker processes (role web alone).",
)
@pass_ctx
def serve(c: Ctx, host: str | None, port: int | None, role: str, web_workers: int) -> None:
    """Run the service: HTTP app, SIP phone, job worker and campaign scheduler, by role."""
    from ivr.runtime.roles import Node, RoleError, parse_roles
    from ivr.runtime.serving import serve_gunicorn, serve_waitress, wait_for_signal

    logs.setup(c.settings.logging.level, c.settings.logging.format)
    try:
        roles = parse_roles(role)
    except RoleError as exc:
        fail(str(exc))
    app = c.hotline()
    host = host or c.settings.http.host
    port = port or c.settings.http.port
    if roles == {"web"}:
        serve_gunicorn(c.settings, c.config_path, host, port, web_workers)
        return
    from ivr.jobs.broker import BrokerError

    try:
        node = Node(app, roles, explicit=role != "all").start()
    except (RoleError, BrokerError) as exc:
        log.error("not started: %s", exc)
        fail(str(exc))
    log.info(
        "hotline-ivr roles %s (database %s, jobs %s)",
        ",".join(sorted(roles)),
        app.db.engine.url.render_as_string(hide_password=True),
        "in process" if node.jobs.embedded else "on Redis",
    )
    try:
        if "web" in roles:
            serve_waitress(app, node.jobs, host, port)
        else:
            wait_for_signal()
    finally:
        node.stop()


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@pass_ctx
def db_upgrade_cmd(c: Ctx) -> None:
    """Create or migrate the database schema to the latest version."""
    url = c.settings.resolved_database_url
    try:
        db_upgrade(url)
    except Exception as exc:
        fail(f"database upgrade failed: {exc}", 1)
    click.echo("database is up to date")


@main.command("check")
@pass_ctx
def check(c: Ctx) -> None:
    """Validate config.yaml and the call flows without starting anything."""
    from ivr.flow.configured import load_flows
    from ivr.prompts import PromptLibrary

    try:
        flows = load_flows(c.settings)
    except FlowError as exc:
        fail(str(exc))
    click.echo(f"config ok: {len(c.settings.lines)} lines, flows: {', '.join(flows)}")
    missing = PromptLibrary.from_settings(c.settings).missing()
    if missing:
        fail(f"{len(missing)} prompt clip(s) missing, e.g. {missing[0]!r}: run `make prompts`", 1)
    click.echo("prompt audio ok")


def _show_verb(verb: Verb) -> str:
    if isinstance(verb, Say):
        return f"  IVR: {verb.text}"
    if isinstance(verb, Gather):
        return "\n".join(
            [*(f"  IVR: {p.text}" for p in verb.prompts), f"  [waits for {verb.num_digits} key(s)]"]
        )
    if isinstance(verb, Record):
        return f"  [records up to {verb.max_length_s}s, # ends]"
    if isinstance(verb, Transfer):
        return f"  [transfers to {verb.target}]"
    if isinstance(verb, Hangup):
        return "  [hangs up]"
    return f"  [{verb}]"


def _ticket_text(t: dict[str, Any]) -> str:
    addr = (t.get("address") or {}).get("text") or "-"
    scope = t.get("scope")
    lines = [
        f"工单 {t['number']}  [{t['status']}]  line {t['line']}  caller {t['caller']}",
        f"  category   {t['category']} ({t['category_source']})",
        f"  department {t['department']} ({t['department_source']})",
        f"  urgent     {'yes ' + ','.join(t['urgency_keywords']) if t['urgent'] else 'no'}",
        f"  address    {addr}",
        f"  contact by {t['contact_due']}   due {t['due_date']}",
        f"  statement  {t['statement'] or '(none)'}",
        f"  transcription {t['transcription']}",
    ]
    if scope:
        lines.append(f"  scope      {scope['kind']}: {scope['rule']} — {scope['advice']}")
    if t.get("duplicate_of"):
        lines.append(f"  duplicate of {t['duplicate_of']}")
    if t.get("result_note"):
        lines.append(f"  result     {t['result_note']}")
    return "\n".join(lines)


@main.command()
@click.option("--line", default="12345", show_default=True, help="The number dialed.")
@click.option("--from", "caller", required=True, help="The caller's number.")
@click.option("--digits", default="", help="Keys pressed, one per menu (e.g. 2, or 92).")
@click.option("--text", default=None, help="What the caller says.")
@click.option(
    "--audio",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A recording of what the caller says (transcribed).",
)
@click.option("--hangup", is_flag=True, help="The caller hangs up while speaking.")
@click.option("--json", "as_json", is_flag=True, help="Print the ticket as JSON.")
@pass_ctx
def simulate(
    c: Ctx,
    line: str,
    caller: str,
    digits: str,
    text: str | None,
    audio: Path | None,
    hangup: bool,
    as_json: bool,
) -> None:
    """Run the inbound flow offline and print the draft ticket."""
    from ivr.calls.simulate import SimulationError, check_inputs, simulate_inbound

    app = c.hotline()
    try:
        check_inputs(app, line, caller, digits)
        sim = simulate_inbound(
            app,
            line=line,
            caller=caller,
            digits=digits,
            text=text,
            audio=audio,
            hangup_during_recording=hangup,
        )
    except SimulationError as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps(sim.ticket, ensure_ascii=False, indent=2))
        return
    click.echo("\n".join(_show_verb(v) for v in sim.dialogue))
    click.echo(_ticket_text(sim.ticket) if sim.ticket else "no ticket was created")


@main.command("call")
@click.argument("uri")
@click.option("--digits", default="", help="Keys to press after the greeting (e.g. 2).")
@click.option(
    "--audio",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="What to say after the keys (any audio ffmpeg reads).",
)
@click.option(
    "--wait",
    "wait_s",
    default=4.0,
    show_default=True,
    help="Seconds to listen before pressing keys.",
)
@click.option(
    "--timeout", "max_s", default=90.0, show_default=True, help="Hang up after this many seconds."
)
@pass_ctx
def call_cmd(
    c: Ctx, uri: str, digits: str, audio: Path | None, wait_s: float, max_s: float
) -> None:
    """Place a test call to a SIP URI and print what happened, with timings."""
    from ivr.transports.sip.dialer import SipDialer
    from ivr.transports.sip.phone import SipPhone
    from ivr.transports.sip.testcall import place_test_call

    if not uri.startswith(("sip:", "sips:")):
        fail(f"{uri!r}: give a SIP URI such as sip:12345@203.0.113.5:5060")
    from ivr.app import Hotline

    # The test caller runs no flow and stores nothing: no database is needed.
    settings = c.settings.model_copy(
        update={"sip": c.settings.sip.model_copy(update={"port": 0, "mode": "trunk"})}
    )
    phone = SipPhone(Hotline.open(settings, check_schema=False))
    phone.start()
    try:
        result = place_test_call(
            SipDialer(phone), uri, digits=digits, audio=audio, wait_s=wait_s, max_s=max_s
        )
    finally:
        phone.stop()
    for at, what in result.timeline:
        click.echo(f"{at:8.3f}s  {what}")
    click.echo(
        f"outcome: {result.outcome}" + (f" (SIP {result.sip_status})" if result.sip_status else "")
    )
    if result.outcome != "answered":
        sys.exit(1)


@main.group()
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
        rows = [to_dict(t) for t in s.scalars(q)]
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
        data = to_dict(ticket)
    click.echo(json.dumps(data, ensure_ascii=False, indent=2) if as_json else _ticket_text(data))


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
            data = to_dict(ticket)
    except TicketError as exc:
        fail(str(exc), 1)
    click.echo(json.dumps(data, ensure_ascii=False, indent=2) if as_json else _ticket_text(data))


@main.group()
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
    from ivr.surveys.campaigns import CampaignError, Filters, create_campaign, import_csv

    app = c.hotline()
    try:
        if csv_path is not None:
            cid, n, problems = import_csv(app, name, csv_path)
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
            cid, n = create_campaign(app, name, f)
    except CampaignError as exc:
        fail(str(exc), 1)
    click.echo(f"campaign {cid}: {n} ticket(s) planned")


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
    """Call the campaign's citizens now (within the calling windows)."""
    from tqdm import tqdm

    from ivr.surveys.campaigns import CampaignError, progress
    from ivr.surveys.runner import CampaignRunner

    app = c.hotline()
    with app.db.session() as s:
        planned = progress(s, campaign_id).get("planned", 0)
    dialer, stop = _dialer(app, dialer_name or c.settings.surveys.dialer)
    bar = tqdm(total=planned, unit="call", desc=f"campaign {campaign_id}")
    try:
        runner = CampaignRunner(app, dialer, on_progress=lambda sm: bar.update(1))
        summary = runner.run(campaign_id, max_seconds=max_seconds, stop_when_idle=not wait)
    except CampaignError as exc:
        fail(str(exc), 1)
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
        from ivr.transports.sip.service import build_phone

        phone = build_phone(app)
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
    _set_status(c, campaign_id, "paused")


@campaign.command("resume")
@click.argument("campaign_id", type=int)
@pass_ctx
def campaign_resume(c: Ctx, campaign_id: int) -> None:
    _set_status(c, campaign_id, "running")


def _set_status(c: Ctx, campaign_id: int, status: str) -> None:
    from ivr.surveys.campaigns import CampaignError, set_status

    try:
        set_status(c.hotline(), campaign_id, status)
    except CampaignError as exc:
        fail(str(exc), 1)
    click.echo(f"campaign {campaign_id}: {status}")


@campaign.command("status")
@click.argument("campaign_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def campaign_status(c: Ctx, campaign_id: int, as_json: bool) -> None:
    from ivr.store import Campaign
    from ivr.surveys.campaigns import progress

    app = c.hotline()
    with app.db.session() as s:
        camp = s.get(Campaign, campaign_id)
        if camp is None:
            fail(f"no campaign {campaign_id}", 1)
        counts = progress(s, campaign_id)
        data = {"id": camp.id, "name": camp.name, "status": camp.status, "counts": counts}
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    click.echo(f"campaign {data['id']} {data['name']!r}: {data['status']}")
    for k, v in sorted(counts.items()):
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
    from ivr.phones import PhoneNumberError, mask_number
    from ivr.surveys.campaigns import add_do_not_call

    try:
        n = add_do_not_call(c.hotline(), number, reason)
    except PhoneNumberError:
        fail(f"{number!r}: not a phone number")
    click.echo(f"{mask_number(n)} will not be called")


@main.group()
def users() -> None:
    """Console and API accounts (operator, supervisor, admin)."""


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@users.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), default="operator", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@pass_ctx
def users_add(c: Ctx, username: str, role: str, password_stdin: bool) -> None:
    """Create an account; the password is prompted for (or read from stdin)."""
    app = c.hotline()
    password = _read_password(password_stdin)
    try:
        with app.db.session() as s:
            create_user(s, username, password, role, app.clock.now())
    except AccountError as exc:
        fail(str(exc), 1)
    click.echo(f"user {username} added ({role})")


@users.command("passwd")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--role", type=click.Choice(ROLES), default=None, help="Also change the role.")
@pass_ctx
def users_passwd(c: Ctx, username: str, password_stdin: bool, role: str | None) -> None:
    """Set a new password for an account."""
    app = c.hotline()
    password = _read_password(password_stdin)
    try:
        with app.db.session() as s:
            user = find_user(s, username)
            if user is None:
                fail(f"no user {username}", 1)
            set_password(user, password)
            if role:
                set_role(user, role)
    except AccountError as exc:
        fail(str(exc), 1)
    click.echo(f"password of {username} changed")


@users.command("list")
@pass_ctx
def users_list(c: Ctx) -> None:
    app = c.hotline()
    with app.db.session() as s:
        for u in s.scalars(select(User).order_by(User.username)):
            state = "active" if u.active else "disabled"
            click.echo(f"{u.username:<24} {u.role:<10} {state:<8} since {u.created_at:%Y-%m-%d}")


@users.command("token")
@click.argument("username")
@click.argument("name")
@pass_ctx
def users_token(c: Ctx, username: str, name: str) -> None:
    """Issue an API token NAME for USERNAME; it is printed once and never shown again."""
    app = c.hotline()
    try:
        with app.db.session() as s:
            user = find_user(s, username)
            if user is None:
                fail(f"no user {username}", 1)
            token = issue_token(s, user, name, app.clock.now())
    except AccountError as exc:
        fail(str(exc), 1)
    click.echo(token)


@main.group()
def jobs() -> None:
    """The job queue: depth and dead letters (jobs that failed every retry)."""


def _jobs(c: Ctx) -> Any:
    from ivr.jobs import open_jobs
    from ivr.jobs.broker import BrokerError

    try:
        q = open_jobs(c.settings)
    except BrokerError as exc:
        fail(str(exc), 1)
    if q.embedded:
        click.echo(
            "note: no jobs.broker_url (REDIS_URL): jobs run inside `ivr serve`, "
            "this command sees only its own (empty) queue",
            err=True,
        )
    return q


@jobs.command("dead")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def jobs_dead(c: Ctx, limit: int, as_json: bool) -> None:
    """List dead-lettered jobs, newest first."""
    from ivr.jobs import dead_letters

    letters = dead_letters(_jobs(c), limit)
    if as_json:
        click.echo(json.dumps([d.to_dict() for d in letters], ensure_ascii=False, indent=2))
        return
    if not letters:
        click.echo("no dead jobs")
    for d in letters:
        when = d.failed_at.isoformat(timespec="seconds") if d.failed_at else "-"
        click.echo(f"{d.message_id}  {when}  {d.job}  {json.dumps(d.payload)}  retries {d.retries}")
        click.echo(f"    {d.error}")


@jobs.command("retry")
@click.argument("message_id")
@pass_ctx
def jobs_retry(c: Ctx, message_id: str) -> None:
    """Queue a dead job again (it leaves the dead letters)."""
    from ivr.jobs import requeue_dead
    from ivr.jobs.dead import NoSuchDeadLetter

    try:
        letter = requeue_dead(_jobs(c), message_id)
    except NoSuchDeadLetter as exc:
        fail(str(exc), 1)
    click.echo(f"queued again: {letter.job} {json.dumps(letter.payload)}")


@jobs.command("depth")
@pass_ctx
def jobs_depth(c: Ctx) -> None:
    """Jobs queued, delayed or running, by queue."""
    for queue, n in _jobs(c).depth().items():
        click.echo(f"{queue:10} {n}")


def _register_asr_commands() -> None:
    from ivr.cli.asr import models, transcribe

    main.add_command(models)
    main.add_command(transcribe)


_register_asr_commands()


def _register_init_command() -> None:
    from ivr.cli.init import init

    main.add_command(init)


_register_init_command()
