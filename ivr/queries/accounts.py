"""Accounts as the admin page and `ivr users list` show them, and the console's viewer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ivr.store.models import ApiToken, User


@dataclass(frozen=True)
class UserView:
    id: int
    username: str
    role: str
    active: bool
    created_at: datetime
    live_tokens: int


def all_users(session: Session) -> list[UserView]:
    """Every account by username, with how many unrevoked API tokens it has."""
    live = (
        select(ApiToken.user_id, func.count().label("n"))
        .where(ApiToken.revoked_at.is_(None))
        .group_by(ApiToken.user_id)
        .subquery()
    )
    rows = session.execute(
        select(User, live.c.n).outerjoin(live, live.c.user_id == User.id).order_by(User.username)
    )
    return [UserView(u.id, u.username, u.role, u.active, u.created_at, n or 0) for u, n in rows]


def active_user(session: Session, user_id: int, session_version: int | None = None) -> User | None:
    """The account signed in with this id, unless it was disabled or deleted since, or
    (given the session's version) signed out, given a new password or another role."""
    user = session.get(User, user_id)
    if user is None or not user.active:
        return None
    if session_version is not None and user.session_version != session_version:
        return None
    return user


@dataclass(frozen=True)
class TokenView:
    id: int
    username: str
    name: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "live"


def tokens(session: Session, username: str | None = None) -> list[TokenView]:
    """API tokens (of one user, or everyone's), newest first; never the token itself."""
    q = select(ApiToken, User.username).join(User, User.id == ApiToken.user_id)
    if username is not None:
        q = q.where(User.username == username)
    rows = session.execute(q.order_by(ApiToken.id.desc()))
    return [
        TokenView(t.id, name, t.name, t.created_at, t.expires_at, t.last_used_at, t.revoked_at)
        for t, name in rows
    ]
