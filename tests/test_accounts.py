"""Accounts: passwords, roles, API tokens, the audit log and `ivr users`."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from ivr.accounts import (
    AccountError,
    authenticate,
    can_see_phone,
    create_user,
    find_user,
    has_role,
    issue_token,
    revoke_token,
    set_password,
    user_for_token,
)
from ivr.app import Hotline
from ivr.calls.simulate import simulate_inbound
from ivr.cli import main
from ivr.config import load_config
from ivr.services import audit
from ivr.store import ApiToken, AuditEntry, Ticket, upgrade

from .conftest import ROOT


def test_password_is_hashed_and_checked(hotline: Hotline) -> None:
    now = hotline.clock.now()
    with hotline.db.session() as s:
        user = create_user(s, "wang", "correct horse", "operator", now)
        assert "correct horse" not in user.password_hash
        assert user.password_hash.startswith("scrypt:")
    with hotline.db.session() as s:
        assert authenticate(s, "wang", "correct horse") is not None
        assert authenticate(s, "wang", "wrong password") is None
        assert authenticate(s, "nobody", "correct horse") is None
        user = find_user(s, "wang")
        assert user is not None
        set_password(user, "battery staple")
    with hotline.db.session() as s:
        assert authenticate(s, "wang", "correct horse") is None
        user = authenticate(s, "wang", "battery staple")
        assert user is not None
        user.active = False
    with hotline.db.session() as s:
        assert authenticate(s, "wang", "battery staple") is None


def test_bad_accounts_are_refused(hotline: Hotline) -> None:
    now = hotline.clock.now()
    with hotline.db.session() as s:
        create_user(s, "li", "long enough", "supervisor", now)
        with pytest.raises(AccountError, match="already exists"):
            create_user(s, "li", "long enough", "operator", now)
        with pytest.raises(AccountError, match="unknown role"):
            create_user(s, "zhao", "long enough", "root", now)
        with pytest.raises(AccountError, match="too short"):
            create_user(s, "zhao", "short", "operator", now)


def test_roles_rank_and_phone_visibility() -> None:
    assert has_role("admin", "supervisor") and has_role("supervisor", "operator")
    assert not has_role("operator", "supervisor") and not has_role("unknown", "operator")
    assert not can_see_phone("operator")
    assert can_see_phone("supervisor") and can_see_phone("admin")


def test_token_is_shown_once_and_stored_hashed(hotline: Hotline) -> None:
    now = hotline.clock.now()
    with hotline.db.session() as s:
        user = create_user(s, "platform", "long enough", "supervisor", now)
        token = issue_token(s, user, "province", now)
    with hotline.db.session() as s:
        row = s.scalars(select(ApiToken)).one()
        assert token not in row.token_hash and len(row.token_hash) == 64
        assert row.last_used_at is None
        found = user_for_token(s, token, now)
        assert found is not None and found.username == "platform"
        assert user_for_token(s, token + "x") is None
    with hotline.db.session() as s:
        assert s.scalars(select(ApiToken)).one().last_used_at == now
        user = find_user(s, "platform")
        assert user is not None
        assert revoke_token(s, user, "province", now) == 1
    with hotline.db.session() as s:
        assert user_for_token(s, token) is None


def test_audit_entry_records_who_what_and_ticket(hotline: Hotline) -> None:
    sim = simulate_inbound(hotline, line="12345", caller="13800138000", text="路灯坏了")
    assert sim.ticket is not None
    with hotline.db.session() as s:
        ticket = s.scalars(select(Ticket)).one()
        audit(
            s,
            "wang",
            "ticket.update",
            ticket,
            {"category": {"old": "咨询", "new": "求助"}},
            hotline.clock.now(),
        )
        audit(s, "wang", "login", None, None, hotline.clock.now())
    with hotline.db.session() as s:
        entries = s.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        assert [(e.actor, e.action) for e in entries] == [
            ("wang", "ticket.update"),
            ("wang", "login"),
        ]
        assert entries[0].ticket is not None
        assert entries[0].ticket.number == sim.ticket["number"]
        assert entries[0].detail == {"category": {"old": "咨询", "new": "求助"}}
        assert entries[1].ticket_id is None and entries[1].at == hotline.clock.now()


# ---- the command line ------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    upgrade(url)
    return {"DATABASE_URL": url}


def ivr(env: dict[str, str], *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(
        main, ["--config", str(ROOT / "config.yaml"), *args], env=env, input=stdin
    )


@pytest.mark.db  # its own database, not the `settings` fixture
def test_cli_users_add_list_passwd_token(cli_env: dict[str, str]) -> None:
    r = ivr(
        cli_env,
        "users",
        "add",
        "wang",
        "--role",
        "supervisor",
        "--password-stdin",
        stdin="s3cret-pass\n",
    )
    assert r.exit_code == 0, r.output
    r = ivr(cli_env, "users", "add", "li", stdin="another-pass\nanother-pass\n")
    assert r.exit_code == 0, r.output
    r = ivr(cli_env, "users", "add", "wang", "--password-stdin", stdin="s3cret-pass\n")
    assert r.exit_code == 1 and "already exists" in r.output
    r = ivr(cli_env, "users", "add", "zhao", "--password-stdin", stdin="short\n")
    assert r.exit_code == 1 and "too short" in r.output

    r = ivr(cli_env, "users", "list")
    assert r.exit_code == 0
    lines = r.output.splitlines()
    assert lines[0].split()[:2] == ["li", "operator"]
    assert lines[1].split()[:2] == ["wang", "supervisor"]

    r = ivr(cli_env, "users", "passwd", "wang", "--password-stdin", stdin="new-password\n")
    assert r.exit_code == 0, r.output
    r = ivr(cli_env, "users", "passwd", "nobody", "--password-stdin", stdin="new-password\n")
    assert r.exit_code == 1 and "no user nobody" in r.output

    r = ivr(cli_env, "users", "token", "wang", "province")
    assert r.exit_code == 0, r.output
    token = r.output.strip()
    app = Hotline.open(load_config(ROOT / "config.yaml", env=cli_env))
    try:
        with app.db.session() as s:
            assert authenticate(s, "wang", "new-password") is not None
            assert authenticate(s, "wang", "s3cret-pass") is None
            user = user_for_token(s, token)
            assert user is not None and user.username == "wang"
    finally:
        app.close()
