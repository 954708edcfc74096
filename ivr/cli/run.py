"""`ivr serve`, `ivr db upgrade`, `ivr check`: running the service and checking a deployment."""

from __future__ import annotations

import click

from ivr.cli.common import Ctx, fail, log, pass_ctx
from ivr.flow import FlowError
from ivr.runtime import logs
from ivr.store import upgrade as db_upgrade


@click.command()
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
    from ivr.transports.sip.endpoint import SipPortInUse

    try:
        node = Node(app, roles, explicit=role != "all").start()
    except (RoleError, BrokerError, SipPortInUse) as exc:
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


@click.group()
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


@click.command("check")
@click.option(
    "--at", default=None, help="Check as of this local time, e.g. 2026-12-01 (default: now)."
)
@pass_ctx
def check(c: Ctx, at: str | None) -> None:
    """Validate config.yaml, the call flows and the calendar without starting anything."""
    from ivr.flow.configured import load_flows
    from ivr.prompts import PromptLibrary
    from ivr.runtime.readiness import calendar_check
    from ivr.workdays import WorkCalendar

    if at is not None:
        c.set_time(at)
    try:
        flows = load_flows(c.settings)
    except FlowError as exc:
        fail(str(exc))
    click.echo(f"config ok: {len(c.settings.lines)} lines, flows: {', '.join(flows)}")
    cal = calendar_check(WorkCalendar.from_config(c.settings.calendar), c.today())
    click.echo(f"warning: calendar: {cal.detail}" if cal.warning else f"calendar ok: {cal.detail}")
    missing = PromptLibrary.from_settings(c.settings).missing()
    if missing:
        fail(f"{len(missing)} prompt clip(s) missing, e.g. {missing[0]!r}: run `make prompts`", 1)
    click.echo("prompt audio ok")
