"""Accounts: passwords, roles, API tokens, the audit log and `ivr users`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from ivr.accounts import authenticate, can_see_phone, has_role, user_for_token
from ivr.app import Hotline
from ivr.calls.simulate import simulate_inbound
from ivr.cli import main
from ivr.config import load_config
from ivr.services import Actor, Conflict, IllegalTransition, Invalid, NotFound, audit
from ivr.services.accounts import create_user, issue_token, revoke_token, update_user
from ivr.store import ApiToken, AuditEntry, Ticket, User

from .conftest import ROOT

ADMIN = Actor.user("admin")


def test_password_is_hashed_and_checked(hotline: Hotline) -> None:
    create_user(hotline, ADMIN, "wang", "correct horse", "operator")
    with hotline.db.read() as s:
        user = s.scalars(select(User)).one()
        assert "correct horse" not in user.password_hash
        assert user.password_hash.startswith("scrypt:")
        assert authenticate(s, "wang", "correct horse") is not None
        assert authenticate(s, "wang", "wrong password") is None
        assert authenticate(s, "nobody", "correct horse") is None
    update_user(hotline, ADMIN, "wang", password="battery staple")
    with hotline.db.read() as s:
        assert authenticate(s, "wang", "correct horse") is None
        assert authenticate(s, "wang", "battery staple") is not None
    update_user(hotline, ADMIN, "wang", active=False)
    with hotline.db.read() as s:
        assert authenticate(s, "wang", "battery staple") is None


def test_bad_accounts_are_refused(hotline: Hotline) -> None:
    create_user(hotline, ADMIN, "li", "long enough", "supervisor")
    with pytest.raises(Conflict, match="already exists"):
        create_user(hotline, ADMIN, "li", "long enough", "operator")
    with pytest.raises(Invalid, match="unknown role"):
        create_user(hotline, ADMIN, "zhao", "long enough", "root")
    with pytest.raises(Invalid, match="too short"):
        create_user(hotline, ADMIN, "zhao", "short", "operator")
    with hotline.db.read() as s:
        assert s.scalars(select(User.username)).all() == ["li"]


def test_roles_rank_and_phone_visibility() -> None:
    assert has_role("admin", "supervisor") and has_role("supervisor", "operator")
    assert not has_role("operator", "supervisor") and not has_role("unknown", "operator")
    assert not can_see_phone("operator")
    assert can_see_phone("supervisor") and can_see_phone("admin")


def token_id(hotline: Hotline, name: str) -> int:
    with hotline.db.read() as s:
        return s.scalars(select(ApiToken.id).where(ApiToken.name == name)).one()


def test_token_is_shown_once_and_stored_hashed(hotline: Hotline) -> None:
    now = hotline.clock.now()
    create_user(hotline, ADMIN, "platform", "long enough", "supervisor")
    token = issue_token(hotline, ADMIN, "platform", "province")
    with hotline.db.session() as s:
        row = s.scalars(select(ApiToken)).one()
        assert token not in row.token_hash and len(row.token_hash) == 64
        assert row.last_used_at is None
        found = user_for_token(s, token, now)
        assert found is not None and found.username == "platform"
        assert user_for_token(s, token + "x") is None
    with hotline.db.session() as s:
        assert s.scalars(select(ApiToken)).one().last_used_at == now
    assert revoke_token(hotline, ADMIN, token_id(hotline, "province")) == "province"
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
        entries = s.scalars(
            select(AuditEntry).where(AuditEntry.actor == "wang").order_by(AuditEntry.id)
        ).all()
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
def cli_env(tmp_path: Path, migrate: Callable[[str], None]) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    migrate(url)
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
    r = ivr(cli_env, "users", "token", "wang", "leaked", "--expires", "7")
    assert r.exit_code == 0, r.output
    leaked = r.output.strip()
    r = ivr(cli_env, "users", "tokens", "wang")
    assert r.exit_code == 0, r.output
    rows = {line.split()[1]: line.split() for line in r.output.splitlines()[1:]}
    assert rows["province"][2] == "live" and rows["province"][-1] == "-"  # never used
    assert rows["leaked"][2] == "live" and rows["leaked"][5] != "-"  # an expiry date
    r = ivr(cli_env, "users", "revoke", rows["leaked"][0])
    assert r.exit_code == 0 and "revoked" in r.output, r.output
    r = ivr(cli_env, "users", "revoke", rows["leaked"][0])
    assert r.exit_code == 1 and "revoked already" in r.output
    r = ivr(cli_env, "users", "tokens", "wang")
    assert "revoked" in next(ln for ln in r.output.splitlines() if " leaked " in ln)
    assert ivr(cli_env, "users", "tokens", "nobody").exit_code == 1
    app = Hotline.open(load_config(ROOT / "config.yaml", env=cli_env))
    try:
        with app.db.session() as s:
            assert authenticate(s, "wang", "new-password") is not None
            assert authenticate(s, "wang", "s3cret-pass") is None
            user = user_for_token(s, token)
            assert user is not None and user.username == "wang"
            assert user_for_token(s, leaked) is None
        with app.db.read() as s:
            actions = s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
        assert actions.count("token.issue") == 2 and actions.count("token.revoke") == 1
    finally:
        app.close()


# ---- the rules of account changes (whichever door asks) ------------------------------


def test_the_last_active_admin_stays(hotline: Hotline) -> None:
    create_user(hotline, ADMIN, "root", "long enough", "admin")
    with pytest.raises(IllegalTransition, match="last active admin"):
        update_user(hotline, Actor.cli(), "root", active=False)
    with pytest.raises(IllegalTransition, match="last active admin"):
        update_user(hotline, Actor.cli(), "root", role="supervisor")
    create_user(hotline, ADMIN, "root2", "long enough", "admin")
    with pytest.raises(IllegalTransition, match="your own account"):
        update_user(hotline, Actor.user("root"), "root", role="supervisor")
    assert update_user(hotline, Actor.user("root2"), "root", role="supervisor").changes == {
        "role": {"old": "admin", "new": "supervisor"}
    }
    with hotline.db.read() as s:
        roles = {name: role for name, role in s.execute(select(User.username, User.role))}
        actions = s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert roles == {"root": "supervisor", "root2": "admin"}
    assert actions == ["user.create", "user.create", "user.update"]  # refusals leave no row


def test_an_update_that_changes_nothing_is_not_audited(hotline: Hotline) -> None:
    create_user(hotline, ADMIN, "wang", "long enough", "operator")
    updated = update_user(hotline, ADMIN, "wang", role="operator", active=True)
    assert updated.changes == {} and updated.account.username == "wang"
    with pytest.raises(NotFound, match="no user nobody"):
        update_user(hotline, ADMIN, "nobody", password="long enough")
    with hotline.db.read() as s:
        assert s.scalars(select(AuditEntry.action)).all() == ["user.create"]


def test_token_names_are_unique_among_live_tokens(hotline: Hotline) -> None:
    """The audit log names API callers by their token's name, so two live ones may not share it."""
    create_user(hotline, ADMIN, "platform", "long enough", "supervisor")
    create_user(hotline, ADMIN, "other", "long enough", "operator")
    issue_token(hotline, ADMIN, "platform", "province")
    with pytest.raises(Conflict, match="live token named 'province'"):
        issue_token(hotline, ADMIN, "other", "province")
    with pytest.raises(Invalid, match="must not be empty"):
        issue_token(hotline, ADMIN, "other", "  ")
    revoke_token(hotline, ADMIN, token_id(hotline, "province"))
    assert issue_token(hotline, ADMIN, "other", "province").startswith("ivr_")
    update_user(hotline, ADMIN, "other", active=False)
    with pytest.raises(IllegalTransition, match="disabled"):
        issue_token(hotline, ADMIN, "other", "city")
    with pytest.raises(NotFound, match="no API token 999"):
        revoke_token(hotline, ADMIN, 999)
    with pytest.raises(Invalid, match="1 to 3650 days"):
        issue_token(hotline, ADMIN, "platform", "city", expires_days=0)
