"""The audit log page for supervisors: who viewed or changed what, newest first."""

from __future__ import annotations

from typing import Any

from flask import render_template, request

from ivr.queries.audit import recent_entries
from ivr.store.models import Role
from webhooks.console import bp
from webhooks.console.auth import hotline, require

PAGE = 200


@bp.get("/audit")
@require(Role.SUPERVISOR)
def audit_log() -> Any:
    app = hotline()
    actor = request.args.get("actor", "").strip()
    action = request.args.get("action", "").strip()
    with app.db.read() as s:
        found = recent_entries(s, PAGE, actor=actor, action=action)
    entries = [
        {
            "at": e.at.astimezone(app.settings.tz).strftime("%Y-%m-%d %H:%M:%S"),
            "actor": e.actor,
            "action": e.action,
            "ticket_id": e.ticket_id,
            "number": e.ticket_number,
            "detail": e.detail,
        }
        for e in found
    ]
    return render_template("console/audit.html", entries=entries, actor=actor, action=action)
