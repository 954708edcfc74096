"""The audit log, newest first, filtered by actor and action."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.store.models import AuditEntry, Ticket


@dataclass(frozen=True)
class AuditView:
    at: datetime
    actor: str
    action: str
    ticket_id: int | None
    ticket_number: str | None
    detail: dict[str, Any]


def actors_named(actor: str) -> list[str]:
    """The actor strings a filter means: a bare console username also finds `user:<name>`
    (sign-ins are logged under the bare name, console changes under `user:<name>`)."""
    return [actor] if ":" in actor else [actor, f"user:{actor}"]


def recent_entries(
    session: Session, limit: int, actor: str = "", action: str = ""
) -> list[AuditView]:
    q = (
        select(AuditEntry, Ticket.number)
        .outerjoin(Ticket, Ticket.id == AuditEntry.ticket_id)
        .order_by(AuditEntry.id.desc())
        .limit(limit)
    )
    if actor:
        q = q.where(AuditEntry.actor.in_(actors_named(actor)))
    if action:
        q = q.where(AuditEntry.action == action)
    return [
        AuditView(e.at, e.actor, e.action, e.ticket_id, number, dict(e.detail))
        for e, number in session.execute(q)
    ]
