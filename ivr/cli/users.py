"""`ivr users ...`: console accounts and API tokens (each change audited as `cli:<os user>`)."""

from __future__ import annotations

import sys
from datetime import datetime, tzinfo

import click

from ivr.accounts import ROLES, find_user
from ivr.cli.common import Ctx, fail, pass_ctx
from ivr.queries.accounts import all_users, tokens
from ivr.services import Actor, ServiceError
from ivr.services.accounts import create_user, issue_token, revoke_token, update_user


@click.group()
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
        create_user(app, Actor.cli(), username, password, role)
    except ServiceError as exc:
        fail(exc.message, 1)
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
        update_user(app, Actor.cli(), username, password=password, role=role)
    except ServiceError as exc:
        fail(exc.message, 1)
    click.echo(f"password of {username} changed")


@users.command("list")
@pass_ctx
def users_list(c: Ctx) -> None:
    app = c.hotline()
    with app.db.read() as s:
        rows = all_users(s)
    for u in rows:
        state = "active" if u.active else "disabled"
        click.echo(f"{u.username:<24} {u.role:<10} {state:<8} since {u.created_at:%Y-%m-%d}")


@users.command("token")
@click.argument("username")
@click.argument("label")
@click.option("--expires", "days", type=int, default=None, help="Valid this many days.")
@pass_ctx
def users_token(c: Ctx, username: str, label: str, days: int | None) -> None:
    """Issue an API token LABEL for USERNAME; it is printed once and never shown again."""
    try:
        token = issue_token(c.hotline(), Actor.cli(), username, label, expires_days=days)
    except ServiceError as exc:
        fail(exc.message, 1)
    click.echo(token)


def _when(at: datetime | None, tz: tzinfo) -> str:
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if at is not None else "-"


@users.command("tokens")
@click.argument("username")
@pass_ctx
def users_tokens(c: Ctx, username: str) -> None:
    """USERNAME's API tokens: id, label, state, issued, expires, last used."""
    app = c.hotline()
    with app.db.read() as s:
        if find_user(s, username) is None:
            fail(f"no user {username}", 1)
        rows = tokens(s, username)
    now, tz = app.clock.now(), app.settings.tz
    click.echo(f"{'ID':>5}  {'LABEL':<24} {'STATE':<8} {'ISSUED':<16}  {'EXPIRES':<16}  LAST USED")
    for t in rows:
        click.echo(
            f"{t.id:>5}  {t.name:<24} {t.state(now):<8} {_when(t.created_at, tz):<16}  "
            f"{_when(t.expires_at, tz):<16}  {_when(t.last_used_at, tz)}"
        )


@users.command("revoke")
@click.argument("token_id", type=int)
@pass_ctx
def users_revoke(c: Ctx, token_id: int) -> None:
    """Revoke the API token TOKEN_ID (see `ivr users tokens`); calls with it are refused."""
    try:
        name = revoke_token(c.hotline(), Actor.cli(), token_id)
    except ServiceError as exc:
        fail(exc.message, 1)
    click.echo(f"token {token_id} ({name}) revoked")
