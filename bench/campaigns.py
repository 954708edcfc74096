"""Benchmark: planning a 100,000-ticket campaign, and pacing accuracy over real SIP calls.

    .venv/bin/python -m bench.campaigns [--tickets 100000] [--calls 200] [--cps 5]
                                        [--out bench/results/campaigns.json]

1. Scheduling cost: 100,000 completed tickets; the time `create_campaign` takes to
   select them and plan their first attempts, and the memory it needs (peak
   traced Python allocations), on SQLite and (when reachable) PostgreSQL.
2. Pacing: a campaign of N tickets dialed as `ivr campaign run` dials it (the
   dispatcher, the survey dial job and the in-process call limits) through the
   real SIP dialer to one SIPp callee answering 486 Busy (so calls are short and
   the pace is the only limit); call start times are taken where the dialer is
   entered. Reported: the configured and achieved calls per second, the most
   starts in any one second, and the spacing between starts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from datetime import UTC, date, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert

from bench.pg import fresh_postgres
from ivr.app import Hotline
from ivr.clock import FixedClock
from ivr.config import load_config
from ivr.services import Actor
from ivr.services.campaigns import create_campaign
from ivr.store import Ticket, TicketStatus, upgrade
from ivr.surveys.run import run_campaign
from ivr.transports.sip.dialer import SipDialer
from ivr.transports.sip.service import build_phone

ROOT = Path(__file__).resolve().parents[1]
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def settings_for(url: str, tmp: Path, **surveys: Any) -> Any:
    base = load_config(ROOT / "config.yaml", env={})
    return base.model_copy(
        update={
            "database_url": url,
            "storage_dir": tmp,
            "surveys": base.surveys.model_copy(update=surveys),
        }
    )


def add_tickets(app: Hotline, n: int) -> None:
    done = MONDAY_10.replace(hour=9).astimezone(UTC)
    rows = [
        {
            "number": f"12345-20261123-{i:06d}",
            "status": TicketStatus.COMPLETED,
            "line_number": "12345",
            "caller_number": f"139{i:08d}",
            "category": "咨询",
            "category_source": "menu",
            "department": "12345热线办公室",
            "department_source": "line_default",
            "urgent": False,
            "urgency_keywords": [],
            "statement": "",
            "summary": "",
            "phone_numbers": [],
            "out_of_scope": False,
            "contact_due": date(2026, 11, 25),
            "due_date": date(2026, 11, 30),
            "transcription": "none",
            "no_callback": False,
            "created_at": done,
            "updated_at": done,
            "completed_at": done,
        }
        for i in range(n)
    ]
    with app.db.session() as s:
        for i in range(0, n, 5000):
            s.execute(insert(Ticket), rows[i : i + 5000])


def bench_planning(url: str, n: int, *, trace: bool) -> dict[str, Any]:
    """One fresh database: the time to plan (untraced), or the peak memory (traced)."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = settings_for(url, Path(tmp))
        upgrade(settings.resolved_database_url)
        app = Hotline.open(settings, FixedClock(MONDAY_10))
        add_tickets(app, n)
        if trace:
            tracemalloc.start()
        t0 = time.perf_counter()
        _, planned = create_campaign(app, Actor.system("bench"), "bench")
        seconds = time.perf_counter() - t0
        out: dict[str, Any] = {"tickets": n, "planned": planned}
        if trace:
            out["peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 1e6, 1)
            tracemalloc.stop()
        else:
            out["seconds"] = round(seconds, 2)
        app.close()
    return out


def planning(make_url: Any, n: int) -> dict[str, Any]:
    timed = bench_planning(make_url(), n, trace=False)
    traced = bench_planning(make_url(), n, trace=True)
    return {**timed, "peak_mb": traced["peak_mb"]}


class StartTimes(SipDialer):
    def __init__(self, phone: Any, target: str) -> None:
        super().__init__(phone, target_host=target)
        self.starts: list[float] = []

    def dial(self, number_or_uri: str, **kw: Any) -> Any:
        self.starts.append(time.monotonic())
        return super().dial(number_or_uri, **kw)


def bench_pacing(calls: int, cps: float) -> dict[str, Any]:
    from tests.sipkit import start_sipp

    with tempfile.TemporaryDirectory() as tmp:
        settings = settings_for(
            f"sqlite:///{tmp}/pace.sqlite3", Path(tmp), calls_per_second=cps, max_concurrent=10
        )
        from tests.sipfix import sip_settings

        settings = sip_settings(settings, Path(tmp)).model_copy(
            update={"surveys": settings.surveys}
        )
        upgrade(settings.resolved_database_url)
        app = Hotline.open(settings, FixedClock(MONDAY_10))
        add_tickets(app, calls)
        cid, _ = create_campaign(app, Actor.system("bench"), "pace")
        phone = build_phone(app, load_asr=False)
        phone.start()
        with start_sipp("uas_busy", calls=calls, timeout=calls / cps + 120) as callee:
            dialer = StartTimes(phone, callee.uri_hostport)
            t0 = time.monotonic()
            summary = run_campaign(app, dialer, cid)
            wall = time.monotonic() - t0
        phone.stop()
        app.close()
    starts = sorted(dialer.starts)
    gaps = [b - a for a, b in pairwise(starts)]
    per_second = Counter(int(t - starts[0]) for t in starts)
    return {
        "calls": len(starts),
        "outcomes": dict(summary.outcomes),
        "configured_cps": cps,
        "achieved_cps": round((len(starts) - 1) / (starts[-1] - starts[0]), 3),
        "max_starts_in_one_second": max(per_second.values()),
        "gap_median_s": round(statistics.median(gaps), 4),
        "gap_min_s": round(min(gaps), 4),
        "gap_max_s": round(max(gaps), 4),
        "wall_s": round(wall, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tickets", type=int, default=100_000)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--cps", type=float, default=5.0)
    ap.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "campaigns.json")
    args = ap.parse_args()
    result: dict[str, Any] = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with tempfile.TemporaryDirectory() as tmp:
        names = iter(range(10))
        result["planning_sqlite"] = planning(
            lambda: f"sqlite:///{tmp}/plan{next(names)}.sqlite3", args.tickets
        )
    dbs: list[Any] = []

    def pg_db() -> str:
        made = fresh_postgres(args.postgres)
        if made is None:
            raise RuntimeError("PostgreSQL not reachable")
        dbs.append(made[1])
        return made[0]

    try:
        result["planning_postgres"] = planning(pg_db, args.tickets)
    except RuntimeError as exc:
        print(f"planning on PostgreSQL skipped: {exc}", file=sys.stderr)
    finally:
        for drop in dbs:
            drop()
    result["pacing"] = bench_pacing(args.calls, args.cps)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
