"""The draft page: recording, transcript with doubtful words marked, fields, and the
review actions (edit, accept, duplicate, reject, complete). Each view and each
change is written to the audit log; a form based on an outdated copy of the
ticket is refused rather than silently overwriting someone else's change."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import abort, flash, redirect, render_template, request, send_file, url_for

from ivr.queries.tickets import ticket_detail
from ivr.services import Actor, NotFound, ServiceError
from ivr.services import tickets as service
from ivr.services.tickets import Changed
from ivr.store.models import Recording, Role
from ivr.tickets import version
from webhooks.console import bp
from webhooks.console.auth import acting, hotline, record, require, viewer
from webhooks.console.kb import suggestions as kb_suggestions
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


@bp.get("/tickets/<int:ticket_id>")
@require()
def ticket_page(ticket_id: int) -> Any:
    app = hotline()
    settings = app.settings
    v = viewer()
    with app.db.session() as s:  # a write unit: the view is audited
        d = ticket_detail(s, ticket_id, HISTORY)
        if d is None:
            abort(404, description=f"no ticket {ticket_id}")
        t, transcript = d.ticket, d.transcript
        record(s, "ticket.view", t, None)
        page = {
            "t": t,
            "status_label": STATUS_LABELS.get(t.status, t.status),
            "caller": caller(t, v.sees_phone),
            "deadline": deadline_state(app, t, app.today()),
            "line": settings.line(t.line_number),
            "created": t.created_at.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M"),
            "audio": d.recording if d.recording is not None and d.recording.path else None,
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
                for e in d.history
            ],
            "categories": [c.name for c in settings.categories],
            "departments": [d.name for d in settings.departments],
            "version": version(t),
            "articles": kb_suggestions(s, t, app.today()),
        }
        return render_template("console/ticket.html", **page)


Change = Callable[[Actor, str | None], Changed]


def _act(ticket_id: int, change: Change, done: str) -> Any:
    """One review action through the service, as the signed-in user, checked against the
    version the form was made from; a refusal is shown and changes nothing."""
    back = redirect(url_for("console.ticket_page", ticket_id=ticket_id), 303)
    try:
        changed = change(acting(), request.form.get("version"))
    except NotFound as exc:
        if "original" not in exc.details:
            abort(404, description=exc.message)
        flash(exc.message, "error")
        return back
    except ServiceError as exc:
        flash(exc.message, "error")
        return back
    flash(done if changed.changes else "没有修改", "ok")
    return back


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
    app, fields = hotline(), _edited_fields()
    return _act(
        ticket_id,
        lambda who, seen: service.update(app, who, ticket_id, fields, expected_version=seen),
        "已保存",
    )


@bp.post("/tickets/<int:ticket_id>/accept")
@require()
def ticket_accept(ticket_id: int) -> Any:
    app = hotline()
    return _act(
        ticket_id,
        lambda who, seen: service.accept(app, who, ticket_id, expected_version=seen),
        "已受理",
    )


@bp.post("/tickets/<int:ticket_id>/duplicate")
@require()
def ticket_duplicate(ticket_id: int) -> Any:
    app = hotline()
    original = request.form.get("original", "").strip()
    return _act(
        ticket_id,
        lambda who, seen: service.mark_duplicate(
            app, who, ticket_id, original, expected_version=seen
        ),
        "已标记为重复件",
    )


@bp.post("/tickets/<int:ticket_id>/reject")
@require()
def ticket_reject(ticket_id: int) -> Any:
    app, reason = hotline(), request.form.get("reason", "")
    return _act(
        ticket_id,
        lambda who, seen: service.reject(app, who, ticket_id, reason, expected_version=seen),
        "已作不予受理处理",
    )


@bp.post("/tickets/<int:ticket_id>/complete")
@require(Role.SUPERVISOR)
def ticket_complete(ticket_id: int) -> Any:
    app, note = hotline(), request.form.get("note", "")
    return _act(
        ticket_id,
        lambda who, seen: service.complete(app, who, ticket_id, note, expected_version=seen),
        "已办结",
    )


@bp.get("/recordings/<int:recording_id>/audio")
@require()
def recording_audio(recording_id: int) -> Any:
    """The stored recording, with HTTP range support (the browser seeks in it)."""
    app = hotline()
    with app.db.read() as s:
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
