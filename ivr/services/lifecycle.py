"""The ticket's loop after registration: 延期 (extension), 退回 (return) and re-dispatch,
属地兜底, 督办 (supervision) and the review of a 不满意 (复核: 重办 or overruled).

Each public function is one unit of work through `ivr.services.tickets`: the ticket
row is locked, the caller's version checked, the rule applied and one audit row
written. Limits and windows come from `lifecycle` in config.yaml; dates are counted
in working days on the official calendar (`ivr.workdays`).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ivr.services import supervision
from ivr.services import ticket_rules as rules
from ivr.services.ticket_rules import Changes, move, required, set_field
from ivr.services.tickets import Changed, Expected, _change, lock_ticket
from ivr.services.unit import Actor, IllegalTransition, Invalid, unit_of_work
from ivr.store.models import Ticket, TicketExtension, TicketReturn, TicketStatus

if TYPE_CHECKING:
    from ivr.app import Hotline

S = TicketStatus
# A ticket a department is working on: what it may extend.
HANDLING = (S.REGISTERED, S.REHANDLE)


def _local_day(app: Hotline, at: datetime) -> date:
    return at.astimezone(app.settings.tz).date()


def extend(
    app: Hotline,
    actor: Actor,
    ref: str | int,
    workdays: int,
    reason: str,
    consent: bool,
    *,
    expected_version: Expected = None,
) -> Changed:
    """延期: the due date moves `workdays` working days later. Asked before the deadline,
    with a reason and the caller's consent, at most `max_extensions` times and
    `extension_max_workdays` days."""
    cfg = app.settings.lifecycle
    why = required(reason, "give the reason for the extension (延期原因)")

    def rule(s: Session, t: Ticket, at: datetime) -> Changes:
        if t.status not in HANDLING:
            raise IllegalTransition(
                f"ticket {t.number} is {t.status}; only a ticket being handled can be extended",
                zh=f"工单 {t.number} 当前状态不能申请延期（只有办理中的工单可以延期）",
            )
        if not consent:
            raise Invalid(
                "the caller must agree to the extension (来电人同意)",
                zh="延期须经来电人同意",
                field="consent",
            )
        if not 1 <= workdays <= cfg.extension_max_workdays:
            raise Invalid(
                f"an extension is 1 to {cfg.extension_max_workdays} working days",
                zh=f"延期天数为 1 至 {cfg.extension_max_workdays} 个工作日",
                field="workdays",
            )
        if _local_day(app, at) > t.due_date:
            raise IllegalTransition(
                f"ticket {t.number} was due {t.due_date.isoformat()}: "
                "an extension is asked before the deadline",
                zh=f"工单 {t.number} 已于 {t.due_date.isoformat()} 到期，延期须在期限届满前申请",
            )
        used = s.scalar(select(func.count()).where(TicketExtension.ticket_id == t.id)) or 0
        if used >= cfg.max_extensions:
            raise IllegalTransition(
                f"ticket {t.number} was already extended {used} time(s); "
                f"at most {cfg.max_extensions}",
                zh=f"工单 {t.number} 已延期 {used} 次，最多只能延期 {cfg.max_extensions} 次",
            )
        new_due = app.calendar.add_workdays(t.due_date, workdays)
        s.add(
            TicketExtension(
                ticket_id=t.id,
                department=t.department,
                workdays=workdays,
                reason=why,
                old_due=t.due_date,
                new_due=new_due,
                actor=str(actor),
                at=at,
            )
        )
        changes: Changes = {}
        set_field(t, "due_date", new_due, changes)
        t.updated_at = at
        return changes

    note = {"reason": why, "workdays": workdays, "consent": True}
    return _change(app, actor, ref, "ticket.extend", expected_version, rule, note)


def territorial_department(app: Hotline, ticket: Ticket) -> str:
    """The district government that takes a ticket no department keeps (属地兜底)."""
    cfg = app.settings.lifecycle
    district = (ticket.address or {}).get("district")
    found = cfg.territorial.get(district) if district else None
    if found is None:
        found = cfg.territorial_default
    if found is None:
        where = district or "an address without a district"
        raise Invalid(
            f"no district government is configured for {where} "
            "(lifecycle.territorial in config.yaml)",
            zh=f"未配置{where}的属地区政府（config.yaml 的 lifecycle.territorial）",
        )
    return found


def return_ticket(
    app: Hotline,
    actor: Actor,
    ref: str | int,
    reason: str,
    *,
    onsite: bool = False,
    expected_version: Expected = None,
) -> Changed:
    """退回: the department gives the ticket back within its window (return_workdays
    working days after it received it, return_workdays_onsite with an on-site check).
    It goes back to the operators for re-dispatch; after `max_returns` returns the
    district government of its address takes it instead (属地兜底)."""
    cfg = app.settings.lifecycle
    why = required(reason, "give the reason for the return (退回原因)")

    def rule(s: Session, t: Ticket, at: datetime) -> Changes:
        if t.status != S.REGISTERED:
            raise IllegalTransition(
                f"ticket {t.number} is {t.status}; only a dispatched ticket can be returned",
                zh=f"工单 {t.number} 当前状态不能退回（只有已派发的工单可以退回）",
            )
        window = cfg.return_workdays_onsite if onsite else cfg.return_workdays
        received = _local_day(app, t.dispatched_at or t.updated_at)
        last_day = app.calendar.add_workdays(received, window)
        if _local_day(app, at) > last_day:
            raise IllegalTransition(
                f"ticket {t.number} reached {t.department} on {received.isoformat()}: "
                f"it could be returned until {last_day.isoformat()}",
                zh=f"工单 {t.number} 于 {received.isoformat()} 派至{t.department}，"
                f"退回期限已于 {last_day.isoformat()} 截止",
                last_day=last_day.isoformat(),
            )
        before = s.scalar(select(func.count()).where(TicketReturn.ticket_id == t.id)) or 0
        s.add(
            TicketReturn(
                ticket_id=t.id,
                department=t.department,
                reason=why,
                onsite=onsite,
                actor=str(actor),
                at=at,
            )
        )
        changes: Changes = {"returns": {"old": before, "new": before + 1}}
        if before + 1 >= cfg.max_returns:
            set_field(t, "department", territorial_department(app, t), changes)
            set_field(t, "department_source", "territorial", changes)
            t.dispatched_at = t.updated_at = at
        else:
            move(t, S.RETURNED, at, changes)
        return changes

    note = {"reason": why, "onsite": onsite}
    return _change(app, actor, ref, "ticket.return", expected_version, rule, note)


def redispatch(
    app: Hotline,
    actor: Actor,
    ref: str | int,
    department: str,
    *,
    expected_version: Expected = None,
) -> Changed:
    """A returned ticket goes to another department (not one that returned it)."""

    def rule(s: Session, t: Ticket, at: datetime) -> Changes:
        if t.status != S.RETURNED:
            raise IllegalTransition(
                f"ticket {t.number} is {t.status}, not returned",
                zh=f"工单 {t.number} 不是退回待重派的工单",
            )
        changes = rules.update(app, t, {"department": department}, at)
        returned_by = set(
            s.scalars(select(TicketReturn.department).where(TicketReturn.ticket_id == t.id))
        )
        if t.department in returned_by:
            raise Invalid(
                f"{t.department} already returned ticket {t.number}; choose another department",
                zh=f"{t.department} 已退回过工单 {t.number}，请选择其他部门",
                field="department",
            )
        move(t, S.REGISTERED, at, changes)
        return changes

    return _change(app, actor, ref, "ticket.redispatch", expected_version, rule)


def review(
    app: Hotline,
    actor: Actor,
    ref: str | int,
    decision: str,
    reason: str,
    *,
    expected_version: Expected = None,
) -> Changed:
    """复核 of a 不满意: `confirm` (the complaint is well founded: 重办) or `overrule`."""
    why = required(reason, "give the reason for the decision (复核意见)")
    return _change(
        app,
        actor,
        ref,
        f"ticket.review.{decision}" if decision in rules.REVIEW_DECISIONS else "ticket.review",
        expected_version,
        lambda _s, t, at: rules.review(t, decision, at),
        {"reason": why},
    )


def supervise(app: Hotline, actor: Actor, ref: str | int, reason: str) -> str:
    """人工督办 by a supervisor; the ticket's number."""
    with unit_of_work(app) as s:
        ticket = lock_ticket(s, ref)
        supervision.supervise(app, actor, ticket, reason, s)
        return ticket.number
