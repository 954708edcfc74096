"""Bearer tokens: who is calling, and whether their role may do what they ask.

Role rules of the API (a higher role may do everything a lower one may):
    operator    list and read tickets, correct their fields, accept drafts, mark
                duplicates, reject out-of-scope requests; phone numbers masked
    supervisor  also complete tickets (办结), read campaigns and their results, pause
                and resume them; sees full phone numbers
    admin       everything a supervisor may
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import request
from sqlalchemy.orm import Session

from ivr.accounts import can_see_phone, has_role, token_for
from webhooks.api.errors import ApiError


@dataclass(frozen=True)
class Caller:
    """The user behind a request's bearer token."""

    username: str
    role: str
    token_name: str

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"api:{self.token_name}"

    @property
    def sees_phone(self) -> bool:
        return can_see_phone(self.role)

    def require(self, role: str) -> None:
        if not has_role(self.role, role):
            raise ApiError(403, f"role {self.role} may not do this; it needs {role}")


def bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise ApiError(401, "authentication required: send Authorization: Bearer <token>")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "the Authorization header must be 'Bearer <token>'")
    return token.strip()


def authenticate(session: Session, at: datetime) -> Caller:
    """The caller of the current request; 401 for a missing, unknown or revoked token."""
    row = token_for(session, bearer_token(), at)
    if row is None:
        raise ApiError(401, "invalid, revoked, expired or deactivated token")
    row.last_used_at = at
    return Caller(row.user.username, row.user.role, row.name)
