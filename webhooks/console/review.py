"""The draft page: recording, transcript with doubtful words marked, fields, and the
review actions (edit, accept, duplicate, reject, complete). Each view and each
change is written to the audit log; a form based on an outdated copy of the
ticket is refused rather than silently overwriting someone else's change."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import abort, flash, redirect, render_template, request, send_file, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.intake.drafts import latest_transcript
from ivr.store.models import AuditEntry, Recording, Role, Ticket
from ivr.tickets import (
    Changes,
    TicketError,
    accept,
    complete,
    find,
    mark_duplicate,
    reject_out_of_scope,
    update_fields,
)
from webhooks.console import bp
from webhooks.console.auth import hotline, record, require, viewer
from webhooks.console.rows import STATUS_LABELS, caller, deadline_state

AUDIO_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg", "ogg": "audio/ogg", "webm": "audio/webm"}
HISTORY = 50


def _han(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff"


def transcript_words(words: list[Any], low: float) -> list[dict[str, Any]]:
    """Words to show, each marked when the recognizer was unsure of it."""
    out = []
    for i, w in enumerate(words):
        text = str(w.get("word", ""))
        prev = str(words[i - 1].get("word", "")) if i else ""
        # Chinese words run together; other words keep the space between them.
        space = bool(prev) and not (_han(prev[-1:]) and _han(text[:1]))
        conf = float(w.get("conf", 1.0))
        out.append({"text": text, "conf": conf, "low": conf < low, "space": space})
    return out


def _ticket_or_404(s: Session, ticket_id: int) -> Ticket:
    ticket = s.get(Ticket, ticket_id)
    if ticket is None:
        abort(404, description=f"no ticket {ticket_id}")
    return ticket


@bp.get("/tickets/<int:ticket_id>")
@require()
def ticket_page(ticket_id: int) -> Any:
    app = hotline()
    settings = app.settings
    v = viewer()
    with app.db.session() as s:
        t = _ticket_or_404(s, ticket_id)
        record(s, "ticket.view", t, None)
        recording, transcript = latest_transcript(s, t.call_id) if t.call_id else (None, None)
        history = s.scalars(
            select(AuditEntry)
            .where(AuditEntry.ticket_id == t.id)
            .order_by(AuditEntry.id.desc())
            .limit(HISTORY)
        ).all()
        page = {
            "t": t,
            "status_label": STATUS_LABELS.get(t.status, t.status),
            "caller": caller(t, v.sees_phone),
            "deadline": deadline_state(app, t, app.today()),
            "line": settings.line(t.line_number),
            "created": t.created_at.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M"),
            "audio": recording if recording is not None and recording.path else None,
            "transcript": transcript,
            "words": transcript_words(transcript.words, settings.asr.low_confidence)
            if transcript is not None
            else [],
            "low_confidence": settings.asr.low_confidence,
            "duplicate_of": t.duplicate_of,
            "history": [
                {
                    "at": e.at.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M:%S"),
                    "actor": e.actor,
                    "action": e.action,
                    "detail": e.detail,
                }
                for e in history
            ],
            "categories": [c.name for c in settings.categories],
            "departments": [d.name for d in settings.departments],
            "version": t.updated_at.isoformat(),
        }
        return render_template("console/ticket.html", **page)


Action = Callable[[Session, Ticket], Changes]


def _act(ticket_id: int, action: str, do: Action, done: str) -> Any:
    """Run one review action in a unit of work and audit it; refusals change nothing."""
    app = hotline()
    try:
        with app.db.session() as s:
            t = _ticket_or_404(s, ticket_id)
            if request.form.get("version") not in (None, t.updated_at.isoformat()):
                raise TicketError(
                    f"ticket {t.number} was changed by someone else meanwhile: "
                    "check the current values and try again"
                )
            changes = do(s, t)
            if changes:
                record(s, action, t, changes)
    except TicketError as exc:
        flash(str(exc), "error")
        return redirect(url_for("console.ticket_page", ticket_id=ticket_id), 303)
    flash(done if changes else "没有修改", "ok")
    return redirect(url_for("console.ticket_page", ticket_id=ticket_id), 303)


def _edited_fields() -> dict[str, Any]:
    form = request.form
    fields: dict[str, Any] = {
        name: form.get(name, "") for name in ("category", "department", "address", "summary")
    }
    fields["urgent"] = form.get("urgent") == "on"
    fields["out_of_scope"] = form.get("out_of_scope") == "on"
    return fields


@bp.post("/tickets/<int:ticket_id>/edit")
@require()
def ticket_edit(ticket_id: int) -> Any:
    app = hotline()
    fields = _edited_fields()
    return _act(
        ticket_id,
        "ticket.update",
        lambda _s, t: update_fields(app, t, fields, app.clock.now()),
        "已保存",
    )


@bp.post("/tickets/<int:ticket_id>/accept")
@require()
def ticket_accept(ticket_id: int) -> Any:
    app = hotline()
    return _act(ticket_id, "ticket.accept", lambda _s, t: accept(t, app.clock.now()), "已受理")


@bp.post("/tickets/<int:ticket_id>/duplicate")
@require()
def ticket_duplicate(ticket_id: int) -> Any:
    app = hotline()
    number = request.form.get("original", "").strip()

    def do(s: Session, t: Ticket) -> Changes:
        original = find(s, number) if number else None
        if original is None:
            raise TicketError(f"no ticket {number or '(none given)'}")
        return mark_duplicate(t, original, app.clock.now())

    return _act(ticket_id, "ticket.duplicate", do, "已标记为重复件")


@bp.post("/tickets/<int:ticket_id>/reject")
@require()
def ticket_reject(ticket_id: int) -> Any:
    app = hotline()
    reason = request.form.get("reason", "")
    return _act(
        ticket_id,
        "ticket.reject",
        lambda _s, t: reject_out_of_scope(t, reason, app.clock.now()),
        "已作不予受理处理",
    )


@bp.post("/tickets/<int:ticket_id>/complete")
@require(Role.SUPERVISOR)
def ticket_complete(ticket_id: int) -> Any:
    app = hotline()
    note = request.form.get("note", "")
    return _act(
        ticket_id, "ticket.complete", lambda _s, t: complete(t, note, app.clock.now()), "已办结"
    )


@bp.get("/recordings/<int:recording_id>/audio")
@require()
def recording_audio(recording_id: int) -> Any:
    """The stored recording, with HTTP range support (the browser seeks in it)."""
    app = hotline()
    with app.db.session() as s:
        rec = s.get(Recording, recording_id)
        if rec is None or not rec.path:
            abort(404)
        path = Path(rec.path).resolve()
        fmt = (rec.audio_format or path.suffix.lstrip(".")).lower()
    if not path.is_relative_to(app.settings.storage_path.resolve()) or not path.is_file():
        abort(404)
    return send_file(
        path,
        mimetype=AUDIO_TYPES.get(fmt, "application/octet-stream"),
        conditional=True,
        max_age=0,
    )
