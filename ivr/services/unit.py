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
    """A refused change. `code` is stable (doors map it to HTTP status or exit code).

    `message` is for API clients and logs; `zh` says the same to a console user (in
    Chinese), or else the console shows `ZH_BY_CODE` for the error's code."""

    code = "error"

    def __init__(self, message: str, *, zh: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.zh = zh or ZH_BY_CODE.get(self.code, ZH_BY_CODE["error"])
        self.details = details


ZH_BY_CODE = {
    "error": "操作未完成，请重试",
    "not_found": "找不到该记录",
    "illegal_transition": "当前状态下不能这样处理",
    "invalid": "输入有误，请检查后再提交",
    "conflict": "记录已被他人改动，请刷新后再处理",
    "precondition_failed": "工单在您查看后已被他人修改，请重新查看后再决定",
}


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


class Stale(Conflict):
    """The caller's copy is outdated: the object changed since they read it (a stale
    console form, an API If-Match that no longer matches)."""

    code = "precondition_failed"


@contextmanager
def unit_of_work(app: Hotline) -> Iterator[Session]:
    """One write transaction: committed on success, rolled back on any error.

    SQLite: BEGIN IMMEDIATE (the database's write lock for the whole unit);
    PostgreSQL: lock what you change with `locked`.
    """
    with app.db.session() as session:
        yield session


def locked(session: Session, model: type[Row], row_id: int) -> Row | None:
    """The row with this id, locked for update until the unit of work ends.

    Read again once locked (populate_existing), even if the session already held a copy:
    the decision must be made on the row as it is now, not as it was first loaded."""
    stmt = select(model).where(model.id == row_id).with_for_update()  # type: ignore[attr-defined]
    return session.execute(stmt.execution_options(populate_existing=True)).scalar_one_or_none()


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
