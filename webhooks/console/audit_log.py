"""The audit log page for supervisors: who viewed or changed what, newest first."""

from __future__ import annotations

from typing import Any

from flask import render_template, request
from sqlalchemy import select

from ivr.store.models import AuditEntry, Role, Ticket
from webhooks.console import bp
from webhooks.console.auth import hotline, require

PAGE = 200


@bp.get("/audit")
@require(Role.SUPERVISOR)
def audit_log() -> Any:
    app = hotline()
    actor = request.args.get("actor", "").strip()
    action = request.args.get("action", "").strip()
    q = (
        select(AuditEntry, Ticket.number)
        .outerjoin(Ticket, Ticket.id == AuditEntry.ticket_id)
        .order_by(AuditEntry.id.desc())
        .limit(PAGE)
    )
    if actor:
        q = q.where(AuditEntry.actor == actor)
    if action:
        q = q.where(AuditEntry.action == action)
    with app.db.session() as s:
        entries = [
            {
                "at": e.at.astimezone(app.settings.tz).strftime("%Y-%m-%d %H:%M:%S"),
                "actor": e.actor,
                "action": e.action,
                "ticket_id": e.ticket_id,
                "number": number,
                "detail": e.detail,
            }
            for e, number in s.execute(q)
        ]
    return render_template("console/audit.html", entries=entries, actor=actor, action=action)
