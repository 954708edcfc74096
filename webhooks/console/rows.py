"""How a ticket shows in the console: masked phone, local times, deadline flags."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from ivr.app import Hotline
from ivr.intake.duplicates import earlier_tickets
from ivr.phones import display_number
from ivr.privacy import redact
from ivr.reports.operations import OPEN_STATUSES
from ivr.services.claims import live_claim
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
    "duplicate": "重复件",
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
    """The caller's number as people read it (138 0013 8000, +852 9123 4567), or masked."""
    if sees_phone:
        return display_number(ticket.caller_number)
    return redact(ticket.caller_number or "", sees_phone)


class Shown:
    """A ticket as a page shows it to this viewer: every text, list and dict attribute
    passed through `redact`; `raw` is the ticket itself (for queries, never for output)."""

    def __init__(self, ticket: Ticket, sees_phone: bool) -> None:
        self.raw = ticket
        self._sees = sees_phone

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.raw, name)
        return redact(value, self._sees) if isinstance(value, str | dict | list) else value


def row(app: Hotline, ticket: Ticket, sees_phone: bool, today: date) -> dict[str, Any]:
    d = deadline_state(app, ticket, today)
    line = app.settings.line(ticket.line_number)
    summary = ticket.summary or ticket.statement[:60]
    created = ticket.created_at.astimezone(app.settings.tz)
    claim = live_claim(app, ticket, app.clock.now())
    shown = {
        "id": ticket.id,
        "number": ticket.number,
        "status": ticket.status,
        "status_label": STATUS_LABELS.get(ticket.status, ticket.status),
        "line": ticket.line_number,
        "line_name": line.name if line else ticket.line_number,
        "caller": caller(ticket, sees_phone),
        "caller_number": ticket.caller_number or "",
        "category": ticket.category,
        "department": ticket.department,
        "urgent": ticket.urgent,
        "out_of_scope": ticket.out_of_scope,
        "summary": summary,
        "transcription": ticket.transcription,
        "interrupted": bool((ticket.intake or {}).get("interrupted")),
        "created": created.strftime("%m-%d %H:%M"),
        "created_at": created.strftime("%Y-%m-%d %H:%M"),
        "claimed_by": claim.holder if claim else None,
        "due_date": ticket.due_date.isoformat(),
        "overdue": d.overdue,
        "near_deadline": d.near,
    }
    return redact(shown, sees_phone)


@bp.app_template_global()
def earlier_rows(ticket: Ticket | Shown) -> list[dict[str, Any]]:
    """The caller's earlier tickets (`duplicates.history_days`) as rows, for the ticket page."""
    app = hotline()
    if isinstance(ticket, Shown):
        ticket = ticket.raw
    history = earlier_tickets(ticket, app.settings.duplicates.history_days)
    return [row(app, t, viewer().sees_phone, app.today()) for t in history]
