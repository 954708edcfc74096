"""Accounts: roles, password and token hashing, sign-in (no web framework here).

Changes to accounts and tokens are `ivr.services.accounts` functions; this
module holds the pure helpers they and the doors share.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from ivr.services.unit import Invalid
from ivr.store.models import ApiToken, Role, User

ROLES: tuple[str, ...] = tuple(r.value for r in Role)
# Higher rank may do everything a lower rank may.
ROLE_RANK: dict[str, int] = {Role.OPERATOR: 1, Role.SUPERVISOR: 2, Role.ADMIN: 3}
MIN_PASSWORD_LENGTH = 8
# A fixed hash to compare against when the user does not exist, so that a wrong
# username costs as much time as a wrong password.
_DUMMY_HASH = generate_password_hash("not a password", method="scrypt")


def has_role(role: str, needed: str) -> bool:
    """Whether `role` is at least `needed` (admin > supervisor > operator)."""
    return ROLE_RANK.get(role, 0) >= ROLE_RANK[needed]


def can_see_phone(role: str) -> bool:
    """Full caller numbers are shown to supervisors and admins, masked for operators."""
    return has_role(role, Role.SUPERVISOR)


def check_role(role: str) -> str:
    if role not in ROLES:
        raise Invalid(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")
    return role


def hash_password(password: str) -> str:
    """The stored form of a new password (scrypt); refuses one that is too short."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(f"password too short: at least {MIN_PASSWORD_LENGTH} characters")
    return generate_password_hash(password, method="scrypt")


def find_user(session: Session, username: str) -> User | None:
    return session.scalars(select(User).where(User.username == username)).first()


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with this username and password, or None."""
    user = find_user(session, username)
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(user.password_hash, password) or not user.active:
        return None
    return user


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> tuple[str, str]:
    """A new bearer token and its hash; only the hash is ever stored."""
    token = "ivr_" + secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_for(session: Session, token: str, at: datetime) -> ApiToken | None:
    """The live (not revoked, not expired, active user) token record matching `token`."""
    row = session.scalars(select(ApiToken).where(ApiToken.token_hash == token_hash(token))).first()
    if row is None or row.revoked_at is not None or not row.user.active:
        return None
    if row.expires_at is not None and row.expires_at <= at:
        return None
    return row


def user_for_token(session: Session, token: str, at: datetime | None = None) -> User | None:
    """The user a bearer token belongs to (expiry judged at `at`, default now); records
    `last_used_at` when `at` is given."""
    row = token_for(session, token, at or datetime.now(UTC))
    if row is None:
        return None
    if at is not None:
        row.last_used_at = at
    return row.user
