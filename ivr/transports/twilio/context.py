"""What an outbound call's webhooks need to know, carried in the URLs Twilio calls back.

The survey URL and the status callback URL of a call the dialer places carry the
flow and its variables (attempt, line, ticket number). Twilio signs the full URL,
so the context cannot be altered without failing the signature check; any worker
can serve the call without shared memory.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_LENGTH = 2000


class BadContext(ValueError):
    pass


@dataclass(frozen=True)
class OutboundContext:
    flow: str = "survey"
    vars: Mapping[str, Any] = field(default_factory=dict)

    @property
    def line_number(self) -> str | None:
        value = self.vars.get("line_number")
        return str(value) if value else None

    def encode(self) -> str:
        raw = json.dumps(
            {"f": self.flow, "v": dict(self.vars)}, ensure_ascii=False, separators=(",", ":")
        ).encode("utf-8")
        token = base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
        if len(token) > MAX_LENGTH:
            raise BadContext(f"call context is {len(token)} characters; at most {MAX_LENGTH}")
        return token

    @classmethod
    def decode(cls, token: str) -> OutboundContext:
        if not token or len(token) > MAX_LENGTH:
            raise BadContext("ctx is empty or too long")
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            data = json.loads(raw.decode("utf-8"))
        except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
            raise BadContext("ctx is not a call context") from exc
        if not isinstance(data, dict) or not isinstance(data.get("f"), str):
            raise BadContext("ctx names no flow")
        variables = data.get("v") or {}
        if not isinstance(variables, dict):
            raise BadContext("ctx variables are not a mapping")
        return cls(data["f"], variables)
