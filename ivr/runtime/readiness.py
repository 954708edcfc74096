"""Readiness: may this process take traffic? (`/readyz`, `ivr serve` at start)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ivr.store.db import current_revision, head_revision

if TYPE_CHECKING:
    import redis

    from ivr.app import Hotline
    from ivr.workdays import WorkCalendar


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    warning: bool = False  # ok, but someone should act (the process still takes traffic)


def calendar_check(calendar: WorkCalendar, today: date) -> Check:
    """Warns (from 1 December) when the working-day calendar of next year is only estimated."""
    warning = calendar.coverage_warning(today)
    if warning:
        return Check("calendar", True, warning, warning=True)
    return Check("calendar", True, f"official for {today.year}")


def checks(app: Hotline, broker: redis.Redis | None) -> list[Check]:
    """Database reachable, schema at the migrations' head, broker reachable if configured,
    and the calendar (a warning only)."""
    out = [calendar_check(app.calendar, app.today())]
    try:
        with app.db.engine.connect() as conn:
            conn.execute(text("select 1"))
        out.append(Check("database", True, "reachable"))
        have, want = current_revision(app.db.engine), head_revision(app.db.url)
        out.append(
            Check(
                "migrations",
                have == want,
                f"at {have}" if have == want else f"at {have}, code needs {want}: ivr db upgrade",
            )
        )
    except SQLAlchemyError as exc:
        out.append(Check("database", False, f"unreachable: {type(exc).__name__}"))
    if broker is not None:
        import redis as redis_lib

        try:
            broker.ping()
            out.append(Check("broker", True, "reachable"))
        except redis_lib.RedisError as exc:
            out.append(Check("broker", False, f"unreachable: {type(exc).__name__}"))
    return out
