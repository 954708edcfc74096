"""`ivr users ...`: console accounts and API tokens."""

from __future__ import annotations

import sys

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
from ivr.cli.common import Ctx, fail, pass_ctx
from ivr.store import User


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
