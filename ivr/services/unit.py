"""What every service function shares: the actor, the unit of work, row locks, audit, errors."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ivr.store import AuditEntry, Ticket

if TYPE_CHECKING:
    from ivr.app import Hotline

Row = TypeVar("Row")

ACTOR_KINDS = ("user", "api", "cli", "system")


@dataclass(frozen=True)
class Actor:
    """Who asks for a change, as the audit log names it: `user:wang`, `api:platform`, ..."""

    kind: str
    name: str

    def __post_init__(self) -> None:
        if self.kind not in ACTOR_KINDS:
            raise ValueError(f"actor kind {self.kind!r} is not one of {ACTOR_KINDS}")

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"

    @classmethod
    def user(cls, username: str) -> Actor:
        return cls("user", username)

    @classmethod
    def api(cls, token_name: str) -> Actor:
        return cls("api", token_name)

    @classmethod
    def cli(cls) -> Actor:
        """The operating-system user running the `ivr` command."""
        try:
            name = getpass.getuser()
        except (KeyError, OSError):
            name = "unknown"
        return cls("cli", name)

    @classmethod
    def system(cls, job: str) -> Actor:
        return cls("system", job)


class ServiceError(Exception):
    """A refused change. `code` is stable (doors map it to HTTP status or exit code)."""

    code = "error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(ServiceError):
    code = "not_found"


class IllegalTransition(ServiceError):
    """The rules do not allow this change in the object's current state."""

    code = "illegal_transition"


class Invalid(ServiceError):
    """The input is wrong (unknown category, empty note, bad role, ...)."""

    code = "invalid"


class Conflict(ServiceError):
    """The object changed since the caller read it (a stale form or If-Match)."""

    code = "conflict"


@contextmanager
def unit_of_work(app: Hotline) -> Iterator[Session]:
    """One write transaction: committed on success, rolled back on any error.

    SQLite: BEGIN IMMEDIATE (the database's write lock for the whole unit);
    PostgreSQL: lock what you change with `locked`.
    """
    with app.db.session() as session:
        yield session


def locked(session: Session, model: type[Row], row_id: int) -> Row | None:
    """The row with this id, locked for update until the unit of work ends."""
    stmt = select(model).where(model.id == row_id).with_for_update()  # type: ignore[attr-defined]
    return session.execute(stmt).scalar_one_or_none()


def serialized(session: Session, name: str) -> None:
    """Hold the lock called `name` until the unit of work ends.

    For rules that read several rows and none of them alone can be locked (the
    last active admin, planning tickets no other campaign has planned). SQLite's
    unit already holds the database's write lock; PostgreSQL takes a
    transaction-scoped advisory lock.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(func.hashtext(name))))


def audit(
    session: Session,
    actor: Actor | str,
    action: str,
    ticket: Ticket | None,
    detail: dict[str, Any] | None,
    at: datetime,
) -> AuditEntry:
    """Write one audit entry (who, when, what) in the caller's unit of work."""
    entry = AuditEntry(
        at=at,
        actor=str(actor),
        action=action,
        ticket_id=ticket.id if ticket is not None else None,
        detail=detail or {},
    )
    session.add(entry)
    return entry
