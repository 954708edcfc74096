"""The draft page: recording, transcript with doubtful words marked, fields, and the
review actions (claim, edit, accept, duplicate, reject, complete). Each view and
each change is written to the audit log; a form based on an outdated copy of the
ticket is refused rather than silently overwriting someone else's change, and a
draft another user has claimed (认领) is theirs until they release it or the claim
lapses. While the recording is transcribed the page asks `/state` for the result
and shows it without a reload."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import abort, flash, jsonify, redirect, render_template, request, send_file, url_for
from sqlalchemy import select
from sqlalchemy.orm import object_session

from ivr.intake.duplicates import similar_tickets
from ivr.phones import mask_number, mask_text
from ivr.privacy import redact, redact_words
from ivr.queries.lifecycle import contact_state, ticket_contacts
from ivr.queries.survey_reasons import unsatisfied_reasons
from ivr.queries.tickets import TicketDetail, ticket_detail
from ivr.services import Actor, NotFound, ServiceError, claims
from ivr.services import tickets as service
from ivr.services.contacts import CHANNELS, CONTACTABLE, known_departments
from ivr.services.tickets import Changed
from ivr.store.models import Recording, Role, Ticket, TicketStatus
from ivr.tickets import version
from webhooks.console import bp
from webhooks.console.auth import acting, hotline, record, require, viewer
from webhooks.console.history import action_label
from webhooks.console.kb import suggestions as kb_suggestions
from webhooks.console.rows import STATUS_LABELS, Shown, caller, deadline_state, earlier_rows, row

AUDIO_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg", "ogg": "audio/ogg", "webm": "audio/webm"}
HISTORY = 50
SIMILAR = 5


def _han(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff"


def transcript_words(words: list[Any], low: float, sees_phone: bool) -> list[dict[str, Any]]:
    """Words to show (numbers masked as the viewer must see them), each marked when the
    recognizer was unsure of it."""
    out = []
    said = [str(w.get("word", "")) for w in words]
    shown = redact_words(said, sees_phone)
    for i, w in enumerate(words):
        text, prev = said[i], said[i - 1] if i else ""
        # Chinese words run together; other words keep the space between them.
        space = bool(prev) and not (_han(prev[-1:]) and _han(text[:1]))
        conf = float(w.get("conf", 1.0))
        out.append({"text": shown[i], "conf": conf, "low": conf < low, "space": space})
    return out


def _originals(ticket: Ticket) -> list[dict[str, Any]]:
    """Tickets the draft may repeat, to pick from: alike ones first (with how alike),
    then the caller's other earlier tickets; none the rules refuse as an original."""
    app = hotline()
    s = object_session(ticket)
    alike = similar_tickets(app, s, ticket, SIMILAR) if s is not None else []
    sees, today = viewer().sees_phone, app.today()
    picks = [{**row(app, t, sees, today), "score": round(score * 100)} for t, score in alike]
    seen = {p["id"] for p in picks}
    picks += [
        {**r, "score": None}
        for r in earlier_rows(ticket)
        if r["id"] not in seen and r["status"] != TicketStatus.REJECTED
    ]
    return picks


def _transcript_part(d: TicketDetail, sees_phone: bool) -> dict[str, Any]:
    """What the recording-and-transcript card shows (also sent to a page still waiting),
    numbers masked as the viewer must see them."""
    settings = hotline().settings
    transcript = d.transcript
    return {
        "t": Shown(d.ticket, sees_phone),
        "audio": d.recording if d.recording is not None and d.recording.path else None,
        "transcript": transcript,
        "words": transcript_words(transcript.words, settings.asr.low_confidence, sees_phone)
        if transcript is not None
        else [],
        "low_confidence": settings.asr.low_confidence,
    }


def _contacts(t: Ticket) -> dict[str, Any]:
    """及时联系 on the ticket page: the first contact against 联系时限, every contact, the form."""
    app = hotline()
    tz, s = app.settings.tz, object_session(t)
    state = contact_state(t, tz, app.today())
    local = "%Y-%m-%d %H:%M"
    return {
        "contact": state,
        "first_contact": state.first.astimezone(tz).strftime(local) if state.first else "",
        "contacts": [
            {
                "at": c.at.astimezone(tz).strftime(local),
                "department": c.department,
                "channel": CHANNELS.get(c.channel, c.channel),
                "note": redact(c.note or "", viewer().sees_phone),
                "actor": c.actor,
            }
            for c in (ticket_contacts(s, t.id) if s is not None else [])
        ],
        "may_contact": t.status in CONTACTABLE,
        "channels": CHANNELS,
        "contact_departments": known_departments(app.settings),
        "now_local": app.clock.now().astimezone(tz).strftime("%Y-%m-%dT%H:%M"),
    }


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
        t = d.ticket
        record(s, "ticket.view", t, None)
        claim = claims.live_claim(app, t, app.clock.now())
        reasons = unsatisfied_reasons(s, [t.id]).get(t.id, [])
        page = {
            **_transcript_part(d, v.sees_phone),
            "status_label": STATUS_LABELS.get(t.status, t.status),
            "caller": caller(t, v.sees_phone),
            "callback": (t.callback_number or "")
            if v.sees_phone
            else mask_number(t.callback_number),
            "deadline": deadline_state(app, t, app.today()),
            "line": settings.line(t.line_number),
            "created": t.created_at.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M"),
            "duplicate_of": t.duplicate_of,
            "claim": claim,
            "claim_mine": claim is not None and claim.holder == v.username,
            "claim_until": claim.until.astimezone(settings.tz).strftime("%H:%M") if claim else "",
            "originals": _originals(t) if t.status == TicketStatus.DRAFT else [],
            "reasons": [
                {
                    "at": r.at.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M"),
                    "text": r.text,
                }
                for r in reasons
            ],
            "history": [
                {
                    "at": e.at.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M:%S"),
                    "actor": e.actor,
                    "action": action_label(e.action),
                    "detail": redact(e.detail, v.sees_phone),
                }
                for e in d.history
            ],
            "categories": [c.name for c in settings.categories],
            "departments": [d.name for d in settings.departments],
            "lifecycle": settings.lifecycle,
            "version": version(t),
            "articles": kb_suggestions(s, t, app.today()),
            **_contacts(t),
        }
        return render_template("console/ticket.html", **page)


@bp.get("/tickets/<int:ticket_id>/state")
@require()
def ticket_state(ticket_id: int) -> Any:
    """For a page waiting on the transcript: the ticket's version, the fields the
    transcript may have filled, and the transcript card as it now is."""
    app = hotline()
    with app.db.read() as s:
        d = ticket_detail(s, ticket_id, 0)
        if d is None:
            abort(404)
        t = d.ticket
        return jsonify(
            transcription=t.transcription,
            version=version(t),
            card=render_template(
                "console/_transcript.html", **_transcript_part(d, viewer().sees_phone)
            ),
            fields=redact(
                {
                    "category": t.category,
                    "department": t.department,
                    "summary": t.summary,
                    "statement": t.statement,
                    "address": (t.address or {}).get("text") or "",
                    "urgent": t.urgent,
                    "out_of_scope": t.out_of_scope,
                },
                viewer().sees_phone,
            ),
        )


@bp.post("/tickets/<int:ticket_id>/<any(claim, release):verb>")
@require()
def ticket_claim(ticket_id: int, verb: str) -> Any:
    """认领 a draft, or release a claim (one's own; a supervisor releases anyone's)."""
    app = hotline()
    try:
        if verb == "claim":
            claims.claim(app, acting(), ticket_id)
        else:
            claims.release(app, acting(), ticket_id)
    except NotFound as exc:
        abort(404, description=exc.message)
    except ServiceError as exc:
        flash(exc.zh, "error")
    else:
        flash("已认领，其他人暂时不能处理此工单" if verb == "claim" else "已释放认领", "ok")
    return redirect(url_for("console.ticket_page", ticket_id=ticket_id), 303)


Change = Callable[[Actor, str | None], Changed]


def apply_change(ticket_id: int, change: Change, done: str) -> Any:
    """One review action through the service, as the signed-in user, checked against the
    version the form was made from; a refusal is shown and changes nothing."""
    back = redirect(url_for("console.ticket_page", ticket_id=ticket_id), 303)
    try:
        changed = change(acting(), request.form.get("version"))
    except NotFound as exc:
        if "original" not in exc.details:
            abort(404, description=exc.message)
        flash(exc.zh, "error")
        return back
    except ServiceError as exc:
        flash(exc.zh, "error")
        return back
    flash(done if changed.changes else "没有修改", "ok")
    return back


def _edited_fields() -> dict[str, Any]:
    form = request.form
    text_fields = ("category", "department", "address", "summary", "caller_name")
    fields: dict[str, Any] = {name: form.get(name, "") for name in text_fields}
    fields["callback_number"] = form.get("callback_number", "").strip()
    if not fields["callback_number"] and not viewer().sees_phone:
        del fields["callback_number"]  # an operator sees it masked: empty means unchanged
    if "statement" in form:
        fields["statement"] = form["statement"].replace("\r\n", "\n").strip()
    fields["urgent"] = form.get("urgent") == "on"
    fields["out_of_scope"] = form.get("out_of_scope") == "on"
    return fields


def _keep_masked_texts(ticket_id: int, fields: dict[str, Any]) -> None:
    """An operator's form carries texts with numbers masked: sent back unchanged, they
    must not overwrite the stored texts with their masked copies."""
    with hotline().db.read() as s:
        t = s.get(Ticket, ticket_id)
        if t is None:
            return
        stored = {"summary": t.summary or "", "address": (t.address or {}).get("text") or ""}
    for name, text in stored.items():
        if fields.get(name) == redact(text, False) != text:
            del fields[name]


@bp.post("/tickets/<int:ticket_id>/edit")
@require()
def ticket_edit(ticket_id: int) -> Any:
    app, fields = hotline(), _edited_fields()
    if not viewer().sees_phone:
        _keep_masked_texts(ticket_id, fields)
    if "statement" in fields and not viewer().sees_phone:
        # An operator edits the statement as shown, numbers masked: unchanged text is no
        # correction, and a statement with numbers in it is corrected by a supervisor
        # (the masked digits would be lost).
        with app.db.read() as s:
            current = s.scalar(select(Ticket.statement).where(Ticket.id == ticket_id)) or ""
        if fields["statement"] == mask_text(current).strip():
            del fields["statement"]
        elif mask_text(current) != current:
            flash("诉求中有电话号码，请班长修改诉求原文", "error")
            return redirect(url_for("console.ticket_page", ticket_id=ticket_id), 303)
    return apply_change(
        ticket_id,
        lambda who, seen: service.update(app, who, ticket_id, fields, expected_version=seen),
        "已保存",
    )


@bp.post("/tickets/<int:ticket_id>/accept")
@require()
def ticket_accept(ticket_id: int) -> Any:
    app = hotline()
    return apply_change(
        ticket_id,
        lambda who, seen: service.accept(app, who, ticket_id, expected_version=seen),
        "已受理",
    )


@bp.post("/tickets/<int:ticket_id>/duplicate")
@require()
def ticket_duplicate(ticket_id: int) -> Any:
    app = hotline()
    original = request.form.get("original", "").strip()
    return apply_change(
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
    return apply_change(
        ticket_id,
        lambda who, seen: service.reject(app, who, ticket_id, reason, expected_version=seen),
        "已作不予受理处理",
    )


@bp.post("/tickets/<int:ticket_id>/complete")
@require(Role.SUPERVISOR)
def ticket_complete(ticket_id: int) -> Any:
    app, note = hotline(), request.form.get("note", "")
    return apply_change(
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
    resp = send_file(
        path, mimetype=AUDIO_TYPES.get(fmt, "application/octet-stream"), conditional=True
    )
    resp.headers["Cache-Control"] = "private, no-store"  # a citizen's voice: never kept
    return resp
