"""及时联系: the department records that it contacted the caller.

The rules ask the department to contact the caller by the ticket's `contact_due`
(`contact_workdays` working days, the same day when urgent). The ticket's
`first_contact_at` is the earliest contact recorded (a manual callback that reached
the caller also sets it); every contact is kept in `ticket_contacts`.

A contact is recorded for a ticket a department has or had in hand: registered,
returned, rehandle, review, completed or surveyed. Not for a draft (no department has
it yet), a rejected or duplicate ticket (never handled) or a closed (archived) one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ivr.services.ticket_rules import Changes, set_field
from ivr.services.tickets import Changed, Expected, _change
from ivr.services.unit import Actor, IllegalTransition, Invalid
from ivr.store.models import Ticket, TicketContact, TicketStatus

if TYPE_CHECKING:
    from ivr.app import Hotline
    from ivr.config import Settings

S = TicketStatus
CHANNELS = {"phone": "电话", "visit": "上门", "sms": "短信", "other": "其他"}
CONTACTABLE = frozenset({S.REGISTERED, S.RETURNED, S.REHANDLE, S.REVIEW, S.COMPLETED, S.SURVEYED})
NOTE_MAX = 2000
DEPARTMENT_MAX = 64


def known_departments(settings: Settings) -> list[str]:
    """Who may be named as having made contact: the configured departments and the
    district governments that take tickets (属地兜底)."""
    cfg = settings.lifecycle
    names = [d.name for d in settings.departments]
    names += [*cfg.territorial.values(), cfg.territorial_default or ""]
    return list(dict.fromkeys(n for n in names if n))


def record_contact(
    app: Hotline,
    actor: Actor,
    ref: str | int,
    *,
    at: datetime | None = None,
    department: str | None = None,
    channel: str = "phone",
    note: str = "",
    expected_version: Expected = None,
) -> Changed:
    """Record one contact with the caller at `at` (default now; never in the future nor
    before the ticket was created) by `department` (default the ticket's)."""
    if channel not in CHANNELS:
        raise Invalid(
            f"channel must be one of {', '.join(CHANNELS)}",
            zh="联系方式须为电话、上门、短信或其他",
            field="channel",
        )
    note = note.strip()
    if len(note) > NOTE_MAX:
        raise Invalid(
            f"note is longer than {NOTE_MAX} characters",
            zh=f"联系记录不能超过 {NOTE_MAX} 字",
            field="note",
        )
    by = (department or "").strip() or None
    if by is not None and by not in known_departments(app.settings):
        raise Invalid(
            f"{by!r} is not a configured department",
            zh=f"“{by[:DEPARTMENT_MAX]}”不是已配置的部门",
            field="department",
        )
    if at is not None and at.tzinfo is None:
        raise Invalid("give the contact time with its time zone", field="at")

    # The audit row's detail; the rule fills in the time and department it settled on.
    detail: dict[str, Any] = {"channel": channel, "note": note or None}

    def rule(s: Session, t: Ticket, now: datetime) -> Changes:
        if t.status not in CONTACTABLE:
            raise IllegalTransition(
                f"ticket {t.number} is {t.status}; contacts are recorded for tickets a "
                "department has in hand",
                zh=f"工单 {t.number} 当前状态不能记录联系"
                "（草稿、不予受理、重复件和已归档的工单不能记录）",
            )
        # Compared as given, converted once in range (a year-9999 time does not convert).
        given = now if at is None else at
        tz = app.settings.tz
        if given > now:
            raise IllegalTransition(
                f"the contact time {given.isoformat(timespec='minutes')} is in the future",
                zh="联系时间不能晚于现在",
                field="at",
            )
        if given < t.created_at:
            raise IllegalTransition(
                f"the contact time is before ticket {t.number} was created "
                f"({t.created_at.astimezone(tz).isoformat(timespec='minutes')})",
                zh=f"联系时间不能早于来电时间 {t.created_at.astimezone(tz):%Y-%m-%d %H:%M}",
                field="at",
            )
        when = given.astimezone(UTC)
        detail.update(at=when.isoformat(), department=by or t.department)
        before = s.scalar(select(func.count()).where(TicketContact.ticket_id == t.id)) or 0
        s.add(
            TicketContact(
                ticket_id=t.id,
                at=when,
                department=by or t.department,
                channel=channel,
                note=note or None,
                actor=str(actor),
                recorded_at=now,
            )
        )
        changes: Changes = {"contacts": {"old": before, "new": before + 1}}
        if t.first_contact_at is None or when < t.first_contact_at:
            set_field(t, "first_contact_at", when, changes)
        t.updated_at = now  # a new version: a copy read before the contact is stale
        return changes

    return _change(app, actor, ref, "ticket.contact", expected_version, rule, detail)
