"""The do-not-call list: numbers never to be called for a survey again."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from ivr.phones import PhoneNumberError, mask_number, normalize_number
from ivr.services.unit import Actor, Invalid, audit, serialized, unit_of_work
from ivr.store.models import DoNotCall

if TYPE_CHECKING:
    from ivr.app import Hotline

MAX_REASON = 200


class Listed(NamedTuple):
    number: str  # normalized
    added: bool  # False: it was on the list already (nothing changed, nothing audited)


def add_do_not_call(app: Hotline, actor: Actor, number: str, reason: str) -> Listed:
    """Put a number on the list; the audit row names it masked (the list row has it in full)."""
    try:
        n = normalize_number(number)
    except PhoneNumberError as exc:
        raise Invalid(f"{number!r}: not a phone number") from exc
    reason = reason.strip()[:MAX_REASON]
    with unit_of_work(app) as s:
        serialized(s, f"ivr.do_not_call.{n}")
        if s.get(DoNotCall, n) is not None:
            return Listed(n, added=False)
        now = app.clock.now()
        s.add(DoNotCall(number=n, reason=reason, added_at=now))
        audit(s, actor, "dnc.add", None, {"number": mask_number(n), "reason": reason}, now)
        return Listed(n, added=True)
