"""GET /metrics (Prometheus), GET /readyz, and the latency of every request."""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Flask, Response, g, jsonify, request

from ivr.app import Hotline
from ivr.jobs import DramatiqJobs
from ivr.runtime import metrics
from ivr.runtime.logs import log_context
from ivr.runtime.readiness import checks
from ivr.store.db import write_lock_wait_s

log = logging.getLogger("webhooks.observability")


def init_observability(app: Flask, hotline: Hotline, jobs: DramatiqJobs) -> None:
    @app.before_request
    def _start_timer() -> None:
        g.started = time.perf_counter()
        g.cpu_started, g.lock_waited = time.thread_time(), write_lock_wait_s()
        # Only a body of known, small length is parsed here: a chunked one (no length) is
        # left to the endpoint's own limit (413), never read whole.
        length = request.content_length
        small = request.method == "POST" and length is not None and length <= 64 * 1024
        call_sid = request.form.get("CallSid") if small else None
        if call_sid:
            g.log_context = log_context(call_id=call_sid)
            g.log_context.__enter__()

    @app.teardown_request
    def _end_context(_exc: BaseException | None) -> None:
        ctx = g.pop("log_context", None)
        if ctx is not None:
            ctx.__exit__(None, None, None)

    @app.after_request
    def _observe(resp: Response) -> Response:
        started = g.pop("started", None)
        if started is not None:
            endpoint = request.url_rule.rule if request.url_rule else "unmatched"
            took = time.perf_counter() - started
            metrics.WEBHOOK_LATENCY.labels(endpoint=endpoint, method=request.method).observe(took)
            # The app's own share of the latency, for proxies' logs and the benchmarks: its
            # wall time, the CPU time of its thread, and the wait for SQLite's write lock.
            # app - cpu - lock is time waited for the GIL, the database and the disk.
            cpu = time.thread_time() - g.pop("cpu_started")
            lock = write_lock_wait_s() - g.pop("lock_waited")
            resp.headers["Server-Timing"] = (
                f"app;dur={took * 1000:.1f}, cpu;dur={cpu * 1000:.1f}, lock;dur={lock * 1000:.1f}"
            )
        return resp

    @app.get("/metrics")
    def metrics_endpoint() -> Any:
        return Response(metrics.render(hotline, jobs), mimetype=metrics.CONTENT_TYPE)

    @app.get("/readyz")
    def readyz() -> Any:
        results = checks(hotline, jobs.client)
        ready = all(c.ok for c in results)
        if not ready:
            log.warning(
                "not ready: %s", "; ".join(f"{c.name} {c.detail}" for c in results if not c.ok)
            )
        body = {
            "status": "ready" if ready else "not ready",
            "checks": {
                c.name: {"ok": c.ok, "detail": c.detail} | ({"warning": True} if c.warning else {})
                for c in results
            },
            "warnings": [f"{c.name}: {c.detail}" for c in results if c.warning],
        }
        return jsonify(body), 200 if ready else 503
