"""Benchmark: the console's work queue with thousands of open drafts.

    .venv/bin/python -m bench.queue [--drafts 5000] [--reps 30] [--postgres URL] [--out FILE]

A signed-in operator asks the real Flask app (in process, its test client: no
network, no server threads) for the queue as a shift does: the first page (all
drafts, most pressing first, with the total), a page deep in the queue, a search
by words, by a whole phone number, and a department with a date range. Each
request's time is measured in the app, from request to full response body;
the medians and 95th percentiles are reported, on SQLite and, when reachable,
PostgreSQL. Goal: under 200 ms with 5,000 drafts.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bench.pg import fresh_postgres
from harness.queue_load import bulk_drafts
from ivr.app import Hotline
from ivr.calls.simulate import simulate_inbound
from ivr.config import load_config
from ivr.services import Actor
from ivr.services.accounts import create_user
from ivr.store import Ticket, upgrade
from webhooks import create_app

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench-password-1"


def _queries(app: Hotline, numbers: list[str]) -> dict[str, str]:
    with app.db.read() as s:
        phone = s.scalar(select(Ticket.caller_number).where(Ticket.number == numbers[1234]))
        department = s.scalar(select(Ticket.department).where(Ticket.number == numbers[0]))
    return {
        "first_page": "/console/queue",
        "page_60": "/console/queue?page=60",
        "search_words": "/console/queue?q=烧烤店",
        "search_phone": f"/console/queue?q={phone}",
        "search_number": f"/console/queue?q={numbers[4321]}",
        "department_dates": f"/console/queue?department={department}&from=2026-01-01&to=2026-12-31",
    }


def bench_queue(url: str, drafts: int, reps: int) -> dict[str, Any]:
    base = load_config(ROOT / "config.yaml", env={})
    with tempfile.TemporaryDirectory() as tmp:
        settings = base.model_copy(update={"database_url": url, "storage_dir": Path(tmp)})
        upgrade(settings.resolved_database_url)
        app = Hotline.open(settings)
        try:
            sim = simulate_inbound(
                app, line="12345", caller="13800138000", text="我要投诉小区楼下的烧烤店夜里噪音扰民"
            )
            assert sim.ticket is not None
            with app.db.read() as s:
                model = s.scalars(
                    select(Ticket.id).where(Ticket.number == sim.ticket["number"])
                ).one()
            numbers = bulk_drafts(app, model, drafts)
            create_user(app, Actor.system("bench"), "op", PASSWORD, "operator")
            web = create_app(app)
            client = web.test_client()
            page = client.get("/console/login").get_data(as_text=True)
            token = page.split('name="csrf-token" content="')[1].split('"')[0]
            r = client.post(
                "/console/login",
                data={"username": "op", "password": PASSWORD, "csrf_token": token},
            )
            assert r.status_code == 302, r.status_code
            out: dict[str, Any] = {}
            for name, path in _queries(app, numbers).items():
                assert client.get(path).status_code == 200  # warm-up
                times = []
                for _ in range(reps):
                    t0 = time.perf_counter()
                    resp = client.get(path)
                    body = resp.get_data()
                    times.append((time.perf_counter() - t0) * 1000)
                    assert resp.status_code == 200 and body
                times.sort()
                out[name] = {
                    "median_ms": round(statistics.median(times), 1),
                    "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1),
                }
            jobs = web.extensions.get("jobs")
            if jobs is not None:
                jobs.close(wait=True, timeout=30)
            return out
        finally:
            app.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--drafts", type=int, default=5000)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "queue.json")
    args = ap.parse_args()
    result: dict[str, Any] = {
        "machine": f"{platform.node()} {platform.machine()} python {platform.python_version()}",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "drafts": args.drafts + 1,
        "reps": args.reps,
        "goal_ms": 200,
    }
    with tempfile.TemporaryDirectory() as tmp:
        result["sqlite"] = bench_queue(f"sqlite:///{tmp}/bench.sqlite3", args.drafts, args.reps)
    pg = fresh_postgres(args.postgres)
    if pg:
        url, drop = pg
        try:
            result["postgres"] = bench_queue(url, args.drafts, args.reps)
        finally:
            drop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
