"""The draft queue: filters, and new or changed tickets pushed live (server-sent events).

The stream polls the database, not an in-process signal, so a draft created by
any process (a SIP node, a Twilio worker, `ivr simulate`) reaches every console.
Its cursor is (highest ticket id, latest updated_at) seen; each event carries it
as the event id, so a reconnecting browser (Last-Event-ID) misses nothing. A
stream lasts console.stream_s and the browser reconnects; at most
console.streams_per_process streams are held open per process, further tabs get
one check per request and reconnect every console.overflow_retry_s (polling).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Response, current_app, render_template, request, stream_with_context
from sqlalchemy.orm import Session

from ivr.queries.tickets import changed_since, latest_change, search, work_page
from ivr.reports.operations import Table
from ivr.store.models import Ticket
from webhooks.console import bp
from webhooks.console.auth import hotline, record, require, viewer
from webhooks.console.export import PhoneText, csv_response, xlsx_response
from webhooks.console.queue_args import QueueView
from webhooks.console.rows import STATUS_LABELS, row

KEEPALIVE_SECONDS = 10.0
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Cursor:
    last_id: int
    last_updated: datetime

    def __str__(self) -> str:
        return f"{self.last_id}|{self.last_updated.isoformat()}"

    @classmethod
    def parse(cls, text: str | None) -> Cursor | None:
        try:
            last_id, last_updated = (text or "").split("|", 1)
            at = datetime.fromisoformat(last_updated)
            return cls(int(last_id), at if at.tzinfo else at.replace(tzinfo=UTC))
        except ValueError:
            return None

    @classmethod
    def now(cls, s: Session) -> Cursor:
        last_id, last_updated = latest_change(s)
        return cls(last_id, last_updated or EPOCH)

    def changes(self, s: Session) -> tuple[list[Ticket], Cursor]:
        tickets = changed_since(s, self.last_id, self.last_updated)
        if not tickets:
            return [], self
        return tickets, Cursor(
            max(self.last_id, *(t.id for t in tickets)),
            max(self.last_updated, *(t.updated_at for t in tickets)),
        )


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
        cursor = Cursor.now(s)
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
    query = QueueView.from_args(request.args, app.settings).query
    sees = viewer().sees_phone
    start = Cursor.parse(request.headers.get("Last-Event-ID")) or Cursor.parse(
        request.args.get("cursor")
    )

    cfg = app.settings.console
    slots: threading.BoundedSemaphore = current_app.extensions["console_streams"]

    def events() -> Iterator[str]:
        cursor = start
        if cursor is None:
            with app.db.read() as s:
                cursor = Cursor.now(s)
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
                    tickets, cursor = cursor.changes(s)
                    out = [
                        {
                            "id": t.id,
                            "matches": query.matches(t, app.settings.tz),
                            "html": render_template(
                                "console/_row.html", r=row(app, t, sees, today)
                            ),
                        }
                        for t in tickets
                    ]
                for data in out:
                    yield _event("ticket", str(cursor), data)
                if time.monotonic() >= ends:
                    return
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
]
EXPORT_LIMIT = 10_000


@bp.get("/queue/export.<any(csv, xlsx):fmt>")
@require()
def queue_export(fmt: str) -> Response:
    """The queue as filtered, as a spreadsheet (phone numbers as the viewer may see them)."""
    app = hotline()
    v = QueueView.from_args(request.args, app.settings)
    today = app.today()
    sees = viewer().sees_phone
    with app.db.session() as s:
        tickets, _ = search(s, v.query, app.settings.tz, EXPORT_LIMIT)
        rows = [row(app, t, sees, today) for t in tickets]
        record(s, "tickets.export", None, {"format": fmt, "filter": v.as_args(), "rows": len(rows)})
    table = Table(
        "工单",
        EXPORT_HEADER,
        [
            [
                r["number"],
                r["status_label"],
                r["line"],
                PhoneText(r["caller"]),
                r["category"],
                r["department"],
                "是" if r["urgent"] else "否",
                r["summary"],
                r["created_at"],
                r["due_date"],
            ]
            for r in rows
        ],
    )
    name = f"tickets-{today.isoformat()}.{fmt}"
    return csv_response(table, name) if fmt == "csv" else xlsx_response([table], name)
