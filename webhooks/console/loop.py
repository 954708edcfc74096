"""The loop in the console: the ticket page's 延期, 退回, 重派, 复核, 督办, 联系 and 人工回访
actions, the 督办 list and the manual callback list."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import flash, redirect, render_template, request, url_for

from ivr.queries.lifecycle import CALLBACK_REASONS, callback_list, supervision_list
from ivr.services import ServiceError, lifecycle
from ivr.services.callbacks import record_callback
from ivr.services.contacts import record_contact
from ivr.services.supervision import SOURCES
from ivr.store.models import Role
from webhooks.console import bp
from webhooks.console.auth import acting, hotline, record, require, viewer
from webhooks.console.review import apply_change
from webhooks.console.rows import STATUS_LABELS, caller

SCORE_LABELS = {
    "satisfied": "满意",
    "basically_satisfied": "基本满意",
    "unsatisfied": "不满意",
    "unreached": "未联系上",
}


def _workdays() -> int:
    text = request.form.get("workdays", "").strip()
    return int(text) if text.isdigit() else 0


@bp.post("/tickets/<int:ticket_id>/extend")
@require()
def ticket_extend(ticket_id: int) -> Any:
    app, form = hotline(), request.form
    days, reason, consent = _workdays(), form.get("reason", ""), form.get("consent") == "on"
    return apply_change(
        ticket_id,
        lambda who, seen: lifecycle.extend(
            app, who, ticket_id, days, reason, consent, expected_version=seen
        ),
        "已延期",
    )


@bp.post("/tickets/<int:ticket_id>/return")
@require()
def ticket_return(ticket_id: int) -> Any:
    app, form = hotline(), request.form
    reason, onsite = form.get("reason", ""), form.get("onsite") == "on"
    return apply_change(
        ticket_id,
        lambda who, seen: lifecycle.return_ticket(
            app, who, ticket_id, reason, onsite=onsite, expected_version=seen
        ),
        "已退回",
    )


@bp.post("/tickets/<int:ticket_id>/redispatch")
@require()
def ticket_redispatch(ticket_id: int) -> Any:
    app, department = hotline(), request.form.get("department", "")
    return apply_change(
        ticket_id,
        lambda who, seen: lifecycle.redispatch(
            app, who, ticket_id, department, expected_version=seen
        ),
        "已重新派单",
    )


@bp.post("/tickets/<int:ticket_id>/contact")
@require()
def ticket_contact(ticket_id: int) -> Any:
    """及时联系: the department contacted the caller (the time as typed, local; empty: now)."""
    app, form = hotline(), request.form
    typed = form.get("at", "").strip()
    try:
        at = datetime.fromisoformat(typed).replace(tzinfo=app.settings.tz) if typed else None
    except ValueError:
        flash("联系时间格式不正确，请按 2026-11-23 10:30 填写", "error")
        return _back(ticket_id)
    return apply_change(
        ticket_id,
        lambda who, seen: record_contact(
            app,
            who,
            ticket_id,
            at=at,
            department=form.get("department") or None,
            channel=form.get("channel", "phone"),
            note=form.get("note", ""),
            expected_version=seen,
        ),
        "已记录联系",
    )


@bp.post("/tickets/<int:ticket_id>/review")
@require(Role.SUPERVISOR)
def ticket_review(ticket_id: int) -> Any:
    app, form = hotline(), request.form
    decision, reason = form.get("decision", ""), form.get("reason", "")
    return apply_change(
        ticket_id,
        lambda who, seen: lifecycle.review(
            app, who, ticket_id, decision, reason, expected_version=seen
        ),
        "已确认重办" if decision == "confirm" else "已复核（不予重办）",
    )


def _back(ticket_id: int) -> Any:
    return redirect(url_for("console.ticket_page", ticket_id=ticket_id), 303)


@bp.post("/tickets/<int:ticket_id>/supervise")
@require(Role.SUPERVISOR)
def ticket_supervise(ticket_id: int) -> Any:
    try:
        lifecycle.supervise(hotline(), acting(), ticket_id, request.form.get("reason", ""))
    except ServiceError as exc:
        flash(exc.message, "error")
    else:
        flash("已督办", "ok")
    return _back(ticket_id)


@bp.post("/tickets/<int:ticket_id>/callback")
@require()
def ticket_callback(ticket_id: int) -> Any:
    form = request.form
    resolved = form.get("resolved") or None
    try:
        record_callback(
            hotline(),
            acting(),
            ticket_id,
            form.get("score", ""),
            resolved,
            form.get("note", ""),
        )
    except ServiceError as exc:
        flash(exc.message, "error")
    else:
        flash("已记录回访结果", "ok")
    return _back(ticket_id)


@bp.get("/supervision")
@require()
def supervision_page() -> Any:
    app, v = hotline(), viewer()
    tz = app.settings.tz
    with app.db.session() as s:  # a write unit: the view is audited
        rows = [
            {
                "id": r.ticket.id,
                "number": r.ticket.number,
                "status": STATUS_LABELS.get(r.ticket.status, r.ticket.status),
                "department": r.ticket.department,
                "due_date": r.ticket.due_date.isoformat(),
                "caller": caller(r.ticket, v.sees_phone),
                "source": SOURCES.get(r.source, r.source),
                "reason": r.reason,
                "since": r.since.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
            }
            for r in supervision_list(s)
        ]
        record(s, "supervision.list", None, {"tickets": [r["number"] for r in rows]})
    return render_template("console/supervision.html", rows=rows)


@bp.get("/callbacks")
@require()
def callbacks_page() -> Any:
    app, v = hotline(), viewer()
    with app.db.session() as s:
        rows = [
            {
                "id": i.ticket.id,
                "number": i.ticket.number,
                "status": STATUS_LABELS.get(i.ticket.status, i.ticket.status),
                "department": i.ticket.department,
                "caller": caller(i.ticket, v.sees_phone),
                "reasons": "、".join(CALLBACK_REASONS[k] for k in i.reasons),
            }
            for i in callback_list(s)
        ]
        record(s, "callbacks.list", None, {"tickets": [r["number"] for r in rows]})
    return render_template("console/callbacks.html", rows=rows, scores=SCORE_LABELS)
