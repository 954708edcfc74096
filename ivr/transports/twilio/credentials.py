"""Twilio account credentials: from the environment only, never from config.yaml."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

ACCOUNT_SID_ENV = "TWILIO_ACCOUNT_SID"
AUTH_TOKEN_ENV = "TWILIO_AUTH_TOKEN"


class MissingCredentials(RuntimeError):
    pass


@dataclass(frozen=True)
class Credentials:
    account_sid: str | None
    auth_token: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Credentials:
        env = os.environ if env is None else env
        return cls(env.get(ACCOUNT_SID_ENV) or None, env.get(AUTH_TOKEN_ENV) or None)

    def require(self) -> tuple[str, str]:
        """(account SID, auth token), or MissingCredentials naming what to set."""
        pairs = ((ACCOUNT_SID_ENV, self.account_sid), (AUTH_TOKEN_ENV, self.auth_token))
        missing = [name for name, value in pairs if not value]
        if missing:
            raise MissingCredentials(f"Twilio credentials missing: set {' and '.join(missing)}")
        assert self.account_sid and self.auth_token
        return self.account_sid, self.auth_token

    def __repr__(self) -> str:  # never print the token
        token = "***" if self.auth_token else None
        return f"Credentials(account_sid={self.account_sid!r}, auth_token={token})"
