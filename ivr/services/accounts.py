"""Changes to console and API accounts and to API tokens, each one audited unit of work.

Rules:
- usernames are unique, 1 to 64 characters; passwords at least
  `ivr.accounts.MIN_PASSWORD_LENGTH`; roles are operator, supervisor, admin;
- a console user may not demote or disable their own account, and nobody may
  demote or disable the last active admin (the accounts page would be lost);
- tokens are issued to active users only, and a live token's name is unique:
  the audit log names API callers by it (`api:<token name>`); a token may expire;
- a new password, a role change or disabling bumps the user's session version, as
  does signing out: every console session of theirs ends at its next request;
- sign-in lockouts (see `sign_in`) are per client address and per username, and
  attempts refused during a lockout are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ivr.accounts import authenticate, check_role, find_user, hash_password, new_token
from ivr.services.unit import (
    Actor,
    Conflict,
    IllegalTransition,
    Invalid,
    NotFound,
    audit,
    locked,
    serialized,
    unit_of_work,
)
from ivr.store.models import ApiToken, LoginFailure, Role, User

if TYPE_CHECKING:
    from ivr.app import Hotline

# Serializes the rules that span several accounts (the last admin, unique token names).
ACCOUNTS_LOCK = "ivr.accounts"
MAX_NAME = 64

UserRef = int | str  # a user's id (the console) or username (the CLI)


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    role: str
    active: bool


class Updated(NamedTuple):
    account: Account
    changes: dict[str, Any]  # field -> {"old", "new"}; the password only as "changed"


def _account(user: User) -> Account:
    return Account(user.id, user.username, user.role, user.active)


def _name(value: str, what: str) -> str:
    value = value.strip()
    if not value:
        raise Invalid(f"{what} must not be empty")
    if len(value) > MAX_NAME:
        raise Invalid(f"{what} too long: at most {MAX_NAME} characters")
    return value


def _locked_user(session: Session, ref: UserRef) -> User:
    user_id = (
        ref if isinstance(ref, int) else session.scalar(select(User.id).where(User.username == ref))
    )
    user = locked(session, User, user_id) if user_id is not None else None
    if user is None:
        raise NotFound(f"no user {ref}")
    return user


def create_user(app: Hotline, actor: Actor, username: str, password: str, role: str) -> Account:
    username = _name(username, "username")
    # scrypt takes a while: hash before the unit of work takes the write lock.
    password_hash, role = hash_password(password), check_role(role)
    with unit_of_work(app) as s:
        serialized(s, ACCOUNTS_LOCK)
        if find_user(s, username) is not None:
            raise Conflict(f"user {username!r} already exists")
        now = app.clock.now()
        user = User(
            username=username, password_hash=password_hash, role=role, active=True, created_at=now
        )
        s.add(user)
        s.flush()
        audit(s, actor, "user.create", None, {"username": username, "role": role}, now)
        return _account(user)


def update_user(
    app: Hotline,
    actor: Actor,
    ref: UserRef,
    *,
    role: str | None = None,
    active: bool | None = None,
    password: str | None = None,
) -> Updated:
    """Change a user's role, active flag and/or password (None: leave as is).

    One `user.update` audit row lists what changed; nothing differed: no row,
    and the changes returned are empty.
    """
    if role is not None:
        check_role(role)
    password_hash = hash_password(password) if password else None
    with unit_of_work(app) as s:
        serialized(s, ACCOUNTS_LOCK)
        user = _locked_user(s, ref)
        changes: dict[str, Any] = {}
        if role is not None and role != user.role:
            changes["role"] = {"old": user.role, "new": role}
        if active is not None and active != user.active:
            changes["active"] = {"old": user.active, "new": active}
        if "role" in changes or ("active" in changes and not active):
            _check_may_lose_admin(s, actor, user)
        if "role" in changes:
            user.role = changes["role"]["new"]
        if "active" in changes:
            user.active = changes["active"]["new"]
        if password_hash is not None:
            user.password_hash = password_hash
            changes["password"] = "changed"  # never the password itself
        if changes:
            user.session_version += 1  # signed-in sessions end: they had the old rights
            detail = {"username": user.username, **changes}
            audit(s, actor, "user.update", None, detail, app.clock.now())
        return Updated(_account(user), changes)


def _check_may_lose_admin(session: Session, actor: Actor, user: User) -> None:
    if actor == Actor.user(user.username):
        raise IllegalTransition("you cannot demote or disable your own account")
    if user.role != Role.ADMIN or not user.active:
        return
    admins = session.scalar(
        select(func.count()).where(User.role == Role.ADMIN, User.active.is_(True))
    )
    if (admins or 0) <= 1:
        raise IllegalTransition(f"{user.username} is the last active admin; make another first")


MAX_TOKEN_DAYS = 3650


def issue_token(
    app: Hotline, actor: Actor, username: UserRef, name: str, *, expires_days: int | None = None
) -> str:
    """A new API token NAME for the user, valid `expires_days` days (None: until revoked);
    the plain token is returned once, only its hash kept."""
    name = _name(name, "a token's name")
    if expires_days is not None and not 1 <= expires_days <= MAX_TOKEN_DAYS:
        raise Invalid(f"a token expires after 1 to {MAX_TOKEN_DAYS} days")
    with unit_of_work(app) as s:
        serialized(s, ACCOUNTS_LOCK)
        user = _locked_user(s, username)
        if not user.active:
            raise IllegalTransition(f"user {user.username} is disabled")
        live = select(ApiToken.id).where(ApiToken.name == name, ApiToken.revoked_at.is_(None))
        if s.scalar(live.limit(1)) is not None:
            raise Conflict(f"a live token named {name!r} exists; revoke it or choose another name")
        token, digest = new_token()
        now = app.clock.now()
        expires = now + timedelta(days=expires_days) if expires_days is not None else None
        s.add(
            ApiToken(
                user_id=user.id, name=name, token_hash=digest, created_at=now, expires_at=expires
            )
        )
        detail: dict[str, Any] = {"username": user.username, "token": name}
        if expires is not None:
            detail["expires_at"] = expires.isoformat()
        audit(s, actor, "token.issue", None, detail, now)
        return token


def revoke_token(app: Hotline, actor: Actor, token_id: int) -> str:
    """Revoke the API token with this id (calls with it are refused from now on); its
    name. NotFound for no such token, IllegalTransition if it is revoked already."""
    with unit_of_work(app) as s:
        row = locked(s, ApiToken, token_id)
        if row is None:
            raise NotFound(f"no API token {token_id}")
        if row.revoked_at is not None:
            raise IllegalTransition(f"token {token_id} ({row.name}) is revoked already")
        now = app.clock.now()
        row.revoked_at = now
        detail = {"username": row.user.username, "token": row.name, "token_id": row.id}
        audit(s, actor, "token.revoke", None, detail, now)
        return row.name


class SignInResult(StrEnum):
    OK = "ok"
    WRONG = "wrong"  # unknown user, wrong password or disabled account
    ADDRESS_LOCKED = "address_locked"
    ACCOUNT_LOCKED = "account_locked"


@dataclass(frozen=True)
class SignIn:
    result: SignInResult
    user_id: int | None = None
    session_version: int = 0


def _failures(session: Session, since: Any, **where: str) -> int:
    q = select(func.count()).select_from(LoginFailure).where(LoginFailure.at >= since)
    for column, value in where.items():
        q = q.where(getattr(LoginFailure, column) == value)
    return session.scalar(q) or 0


def sign_in(
    app: Hotline, username: str, password: str, address: str, *, known_browser: bool
) -> SignIn:
    """A console sign-in attempt from a client address, audited whatever its outcome.

    Refused without looking at the password (and not counted) while the address has
    had `max_failed_logins_per_address` failures within `lockout_minutes`, or while the
    username has had `max_failed_logins` and the browser is not `known_browser` (one
    the user signed in from before). Counted failures: wrong passwords, unknown users
    and disabled accounts, each one row of `login_failures`.
    """
    rules = app.settings.console
    now = app.clock.now()
    since = now - timedelta(minutes=rules.lockout_minutes)
    where = {"ip": address}
    with unit_of_work(app) as s:
        result = SignInResult.WRONG
        if _failures(s, since, address=address) >= rules.max_failed_logins_per_address:
            result = SignInResult.ADDRESS_LOCKED
        elif not known_browser and _failures(s, since, username=username) >= (
            rules.max_failed_logins
        ):
            result = SignInResult.ACCOUNT_LOCKED
        if result is not SignInResult.WRONG:
            audit(s, username, "login.refused", None, {**where, "reason": result.value}, now)
            return SignIn(result)
        user = authenticate(s, username, password)
        if user is None:
            s.add(LoginFailure(at=now, username=username, address=address))
            audit(s, username, "login.failed", None, where, now)
            return SignIn(SignInResult.WRONG)
        audit(s, user.username, "login", None, where, now)
        return SignIn(SignInResult.OK, user.id, user.session_version)


def sign_out(app: Hotline, user_id: int) -> None:
    """End every console session of the user (a copied cookie included)."""
    with unit_of_work(app) as s:
        user = locked(s, User, user_id)
        if user is None:
            return
        user.session_version += 1
        audit(s, user.username, "logout", None, {}, app.clock.now())
