"""The draft queue: filters, and new or changed tickets pushed live (server-sent events).

The stream polls the database, not an in-process signal, so a draft created by
any process (a SIP node, a Twilio worker, `ivr simulate`) reaches every console.
Its cursor is the ticket change number (`tickets.change_seq`, given out in commit
order: see ivr.store.changes), not a time: no change is skipped for a clock skew
between hosts or a slow transaction. Each event carries its change number as the
event id, so a reconnecting browser (Last-Event-ID) misses nothing. One response
carries at most console.stream_page changes; a full page ends it and the browser
comes back for the next (cursor=0 pages through everything instead of one huge
response). A stream lasts console.stream_s and the browser reconnects; it ends at
once when the viewer's session does (sign-out, new password, role change,
disabled). At most console.streams_per_process streams are held open per process,
further tabs get one check per request and reconnect every console.overflow_retry_s.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

from flask import Response, current_app, render_template, request, stream_with_context

from ivr.privacy import redact
from ivr.queries.survey_reasons import unsatisfied_reasons
from ivr.queries.tickets import MAX_CURSOR, changed_after, latest_change, search, work_page
from ivr.reports.operations import Table
from ivr.store.models import Role
from webhooks.console import bp
from webhooks.console.auth import hotline, record, require, session_valid, viewer
from webhooks.console.export import PhoneText, csv_response, xlsx_response
from webhooks.console.queue_args import QueueView
from webhooks.console.rows import STATUS_LABELS, row

KEEPALIVE_SECONDS = 10.0


def parse_cursor(text: str | None) -> int | None:
    """A change number sent back by the browser (Last-Event-ID or ?cursor=); None if absent
    or not one (an old-style cursor: the stream starts from now)."""
    if text is None or not text.isdigit() or not text.isascii() or len(text) > 19:
        return None
    seq = int(text)
    return seq if seq <= MAX_CURSOR else None


def _options() -> dict[str, Any]:
    settings = hotline().settings
    return {
        "lines": [(ln.number, f"{ln.number} {ln.name}") for ln in settings.lines],
        "categories": [(c.name, c.name) for c in settings.categories],
        "departments": [(d.name, d.name) for d in settings.departments],
        "statuses": list(STATUS_LABELS.items()),
    }


@bp.get("/")
@bp.get("/queue")
@require()
def queue() -> Any:
    app = hotline()
    v = QueueView.from_args(request.args, app.settings)
    today = app.today()
    sees = viewer().sees_phone
    with app.db.read() as s:
        cursor = latest_change(s)
        found = work_page(s, v.query, app.settings.tz, v.page, app.settings.console.queue_page_size)
        rows = [row(app, t, sees, today) for t in found.tickets]
    return render_template(
        "console/queue.html", rows=rows, v=v, found=found, cursor=str(cursor), **_options()
    )


def _event(name: str, event_id: str, data: dict[str, Any]) -> str:
    return f"event: {name}\nid: {event_id}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@bp.get("/queue/stream")
@require()
def queue_stream() -> Response:
    app = hotline()
    v = viewer()
    query = QueueView.from_args(request.args, app.settings).query
    start = parse_cursor(request.headers.get("Last-Event-ID"))
    if start is None:
        start = parse_cursor(request.args.get("cursor"))

    cfg = app.settings.console
    slots: threading.BoundedSemaphore = current_app.extensions["console_streams"]

    def events() -> Iterator[str]:
        cursor = start
        if cursor is None:
            with app.db.read() as s:
                cursor = latest_change(s)
        # Past the per-process limit a tab gets what changed and comes back later,
        # instead of holding one more server thread.
        held = slots.acquire(blocking=False)
        try:
            retry_s = 1.0 if held else cfg.overflow_retry_s
            yield f"retry: {int(retry_s * 1000)}\nid: {cursor}\n\n"
            ends = time.monotonic() + (cfg.stream_s if held else 0.0)
            quiet_since = time.monotonic()
            while True:
                today = app.today()
                with app.db.read() as s:
                    if not session_valid(s, v.id, v.session_version):
                        return  # signed out meanwhile: the reconnect is refused
                    tickets = changed_after(s, cursor, cfg.stream_page)
                    out = [
                        (
                            t.change_seq,
                            {
                                "id": t.id,
                                "matches": query.matches(t, app.settings.tz),
                                "html": render_template(
                                    "console/_row.html", r=row(app, t, v.sees_phone, today)
                                ),
                            },
                        )
                        for t in tickets
                    ]
                for seq, data in out:
                    cursor = seq
                    yield _event("ticket", str(seq), data)
                if len(out) >= cfg.stream_page or time.monotonic() >= ends:
                    return  # a full page: the browser comes back at once for the next
                if out:
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since > KEEPALIVE_SECONDS:
                    yield ": keepalive\n\n"
                    quiet_since = time.monotonic()
                time.sleep(cfg.poll_s)
        finally:
            if held:
                slots.release()

    return Response(
        stream_with_context(events()),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


EXPORT_HEADER = [
    "工单号",
    "状态",
    "热线",
    "来电号码",
    "类别",
    "承办部门",
    "紧急",
    "摘要",
    "来电时间",
    "办理时限",
    "不满意原因",
]
EXPORT_LIMIT = 10_000


@bp.get("/queue/export.<any(csv, xlsx):fmt>")
@require(Role.SUPERVISOR)
def queue_export(fmt: str) -> Response:
    """The queue as filtered, as a spreadsheet: for supervisors and admins, as the
    README says; an operator works ticket by ticket and takes no bulk copy."""
    app = hotline()
    v = QueueView.from_args(request.args, app.settings)
    today = app.today()
    sees = viewer().sees_phone
    with app.db.session() as s:
        tickets, _ = search(s, v.query, app.settings.tz, EXPORT_LIMIT)
        rows = [row(app, t, sees, today) for t in tickets]
        # One query for the whole export, not one per surveyed ticket.
        said = unsatisfied_reasons(s, [t.id for t in tickets if t.survey_outcome])
        reasons = {
            t.id: "；".join(redact(r.text, sees) for r in said.get(t.id, []) if r.text)
            for t in tickets
        }
        record(s, "tickets.export", None, {"format": fmt, "filter": v.as_args(), "rows": len(rows)})
    table = Table(
        "工单",
        EXPORT_HEADER,
        [
            [
                r["number"],
                r["status_label"],
                r["line"],
                PhoneText(r["caller_number"]),  # digits (masked by `row` for operators)
                r["category"],
                r["department"],
                "是" if r["urgent"] else "否",
                r["summary"],
                r["created_at"],
                r["due_date"],
                reasons[r["id"]],
            ]
            for r in rows
        ],
    )
    name = f"tickets-{today.isoformat()}.{fmt}"
    return csv_response(table, name) if fmt == "csv" else xlsx_response([table], name)
