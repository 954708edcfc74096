"""How a ticket shows in the console: masked phone, local times, deadline flags."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from ivr.app import Hotline
from ivr.intake.duplicates import earlier_tickets
from ivr.phones import mask_number, mask_text
from ivr.reports.operations import OPEN_STATUSES
from ivr.store.models import Ticket
from webhooks.console import bp
from webhooks.console.auth import hotline, viewer

STATUS_LABELS = {
    "draft": "草稿",
    "registered": "已受理",
    "completed": "已办结",
    "surveyed": "已回访",
    "review": "待复核",
    "rehandle": "重办",
    "returned": "退回待重派",
    "closed": "已归档",
    "rejected": "不予受理",
}


@dataclass(frozen=True)
class Deadline:
    overdue: bool
    near: bool


def deadline_state(app: Hotline, ticket: Ticket, today: date) -> Deadline:
    if ticket.status not in OPEN_STATUSES:
        return Deadline(False, False)
    near_limit = app.calendar.add_workdays(today, app.settings.console.near_deadline_workdays)
    return Deadline(ticket.due_date < today, today <= ticket.due_date <= near_limit)


def caller(ticket: Ticket, sees_phone: bool) -> str:
    return (ticket.caller_number or "") if sees_phone else mask_number(ticket.caller_number)


def row(app: Hotline, ticket: Ticket, sees_phone: bool, today: date) -> dict[str, Any]:
    d = deadline_state(app, ticket, today)
    line = app.settings.line(ticket.line_number)
    summary = ticket.summary or ticket.statement[:60]
    return {
        "id": ticket.id,
        "number": ticket.number,
        "status": ticket.status,
        "status_label": STATUS_LABELS.get(ticket.status, ticket.status),
        "line": ticket.line_number,
        "line_name": line.name if line else ticket.line_number,
        "caller": caller(ticket, sees_phone),
        "category": ticket.category,
        "department": ticket.department,
        "urgent": ticket.urgent,
        "out_of_scope": ticket.out_of_scope,
        "summary": summary if sees_phone else mask_text(summary),
        "transcription": ticket.transcription,
        "created": ticket.created_at.astimezone(app.settings.tz).strftime("%m-%d %H:%M"),
        "due_date": ticket.due_date.isoformat(),
        "overdue": d.overdue,
        "near_deadline": d.near,
    }


@bp.app_template_global()
def earlier_rows(ticket: Ticket) -> list[dict[str, Any]]:
    """The caller's earlier tickets (`duplicates.history_days`) as rows, for the ticket page."""
    app = hotline()
    history = earlier_tickets(ticket, app.settings.duplicates.history_days)
    return [row(app, t, viewer().sees_phone, app.today()) for t in history]
