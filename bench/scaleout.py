"""Scale-out on PostgreSQL: throughput with 1, 2 and 4 worker processes, and a 10,000-call claim.

    .venv/bin/python -m bench.scaleout [--procs 1,2,4] [--reps 3] [--seconds 10]
                                       [--campaign 10000] [--out bench/results/scaleout.json]

1. Ticket creation: N processes each take simulated inbound calls (menu key,
   statement text -> intake analysis -> draft ticket) against one PostgreSQL
   database for --seconds; tickets per second of all processes together.
2. Webhook handling: `gunicorn` with N worker processes (gthread, 4 threads) in
   front of PostgreSQL; two load-generator processes of 8 threads each POST
   Twilio-signed voice webhooks (each a new call: a Call row, its events, the
   greeting TwiML) for --seconds; answered requests per second.
3. Claiming: a campaign of --campaign tickets, all due; 1 or 2 processes run the
   scheduler's dispatcher on it (SELECT ... FOR UPDATE SKIP LOCKED, up to
   jobs.dispatch_backlog claims per transaction; each queued job is taken as
   dialed at once) until none is left; seconds until all are claimed, and a
   check that none was claimed twice.

Every figure is the median of --reps runs on a fresh database. The machine has
2 shared CPU cores and the load generator runs on them too, so the curve shows
where the cores run out, not what more machines would give.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import func, select, update
from twilio.request_validator import RequestValidator

from bench.campaigns import MONDAY_10, add_tickets, settings_for
from bench.drafts import STATEMENTS
from bench.pg import fresh_postgres
from bench.twilio_webhooks import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    PG_ADMIN,
    PUBLIC,
    bench_config,
    free_port,
    start_gunicorn,
)
from ivr.app import Hotline
from ivr.calls.simulate import simulate_inbound
from ivr.clock import FixedClock
from ivr.services import Actor
from ivr.services.campaigns import create_campaign, resume_campaign
from ivr.store import Campaign, SurveyAttempt, Ticket, upgrade
from ivr.surveys.dispatch import CampaignDispatcher

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
CTX = mp.get_context("spawn")


def median(values: list[float]) -> float:
    return round(statistics.median(values), 1)


def in_processes(n: int, target: Callable[..., None], *args: Any) -> list[Any]:
    """Run target(barrier, results, index, *args) in n processes started together."""
    barrier = CTX.Barrier(n + 1)
    results = CTX.Queue()
    procs = [CTX.Process(target=target, args=(barrier, results, i, *args)) for i in range(n)]
    for p in procs:
        p.start()
    barrier.wait()
    out = [results.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(60)
    return out


# -- 1. tickets ---------------------------------------------------------------------
def _ticket_worker(barrier: Any, results: Any, index: int, url: str, seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = Hotline.open(settings_for(url, Path(tmp)))
        # Warm up outside the timed window (lazy loads: address data, flows).
        simulate_inbound(app, line="12345", caller=f"1370000{index:04d}", digits="2", text="测试")
        n = 0
        barrier.wait()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            n += 1
            simulate_inbound(
                app,
                line="12345",
                caller=f"13{index}{n:09d}"[:11],
                digits="2",
                text=STATEMENTS[n % len(STATEMENTS)],
            )
        app.close()
    results.put(n)


def tickets_per_second(url: str, procs: int, seconds: float) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        upgrade(settings_for(url, Path(tmp)).resolved_database_url)
    made = sum(in_processes(procs, _ticket_worker, url, seconds))
    with tempfile.TemporaryDirectory() as tmp:
        app = Hotline.open(settings_for(url, Path(tmp)))
        with app.db.session() as s:
            assert s.scalar(select(func.count()).select_from(Ticket)) == made + procs
        app.close()
    return made / seconds


# -- 2. webhooks --------------------------------------------------------------------
def _load_worker(
    barrier: Any, results: Any, index: int, base: str, seconds: float, threads: int, token: str
) -> None:
    validator = RequestValidator(token)
    counts = [0] * threads
    errors = [0] * threads
    barrier.wait()
    deadline = time.monotonic() + seconds

    def run(t: int) -> None:
        http = requests.Session()
        while time.monotonic() < deadline:
            params = {
                "CallSid": "CA" + uuid.uuid4().hex,
                "AccountSid": ACCOUNT_SID,
                "From": f"+86139{index}{t:02d}{counts[t]:05d}"[:15],
                "To": "+8612345",
                "CallStatus": "ringing",
                "Direction": "inbound",
            }
            sig = validator.compute_signature(f"{PUBLIC}/twilio/voice", params)
            try:
                r = http.post(
                    f"{base}/twilio/voice",
                    data=params,
                    headers={"X-Twilio-Signature": sig},
                    timeout=15,
                )
                ok = r.status_code == 200
            except requests.RequestException:
                ok = False
            if ok:
                counts[t] += 1
            else:
                errors[t] += 1

    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    results.put((sum(counts), sum(errors)))


def webhooks_per_second(url: str, workers: int, seconds: float) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        upgrade(url)
        cfg = bench_config(tmp, "http://127.0.0.1:9")
        port = free_port()
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(tmp / "prom")
        (tmp / "prom").mkdir()
        server = start_gunicorn(cfg, url, port, workers, "gthread", 4, tmp / "gunicorn.log")
        try:
            base = f"http://127.0.0.1:{port}"
            out = in_processes(2, _load_worker, base, seconds, 8, AUTH_TOKEN)
        finally:
            server.terminate()
            server.wait(30)
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return sum(ok for ok, _ in out) / seconds, sum(err for _, err in out)


# -- 3. claiming --------------------------------------------------------------------
class _Dialed:
    """Jobs as the dispatcher sees them: the attempts it claimed count as dialed at once,
    so the backlog never fills."""

    def __init__(self, app: Hotline) -> None:
        self.app = app
        self.queued: list[int] = []

    def submit(self, name: str, payload: Any, **kw: Any) -> bool:
        self.queued.append(int(payload["attempt_id"]))
        return True

    def drain(self, worker: str) -> int:
        """Its own claims done; those of the other process it queued again are left."""
        ids, self.queued = self.queued, []
        with self.app.db.session() as s:
            done = s.execute(
                update(SurveyAttempt)
                .where(
                    SurveyAttempt.id.in_(ids),
                    SurveyAttempt.status == "claimed",
                    SurveyAttempt.claimed_by == worker,
                )
                .values(status="done")
            )
        return int(done.rowcount)


def _claim_worker(barrier: Any, results: Any, index: int, url: str, campaign_id: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = Hotline.open(settings_for(url, Path(tmp)), FixedClock(MONDAY_10))
        jobs = _Dialed(app)
        dispatcher = CampaignDispatcher(app, jobs)
        claimed = 0
        barrier.wait()
        t0 = time.perf_counter()
        while dispatcher.dispatch(campaign_id):
            claimed += jobs.drain(dispatcher.book.worker)
        seconds = time.perf_counter() - t0
        app.close()
    results.put((claimed, seconds))


def claim_seconds(url: str, n: int, procs: int, reps: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = settings_for(url, Path(tmp))
        upgrade(settings.resolved_database_url)
        app = Hotline.open(settings, FixedClock(MONDAY_10))
        add_tickets(app, n)
        cid, planned = create_campaign(app, Actor.system("bench"), "bench")
        resume_campaign(app, Actor.system("bench"), cid)
        times, shares = [], []
        for _ in range(reps):
            with app.db.session() as s:
                s.execute(
                    update(SurveyAttempt).values(status="planned", claimed_by=None, claimed_at=None)
                )
                # The last rep finished the campaign: running again for this one.
                s.execute(update(Campaign).where(Campaign.id == cid).values(status="running"))
            out = in_processes(procs, _claim_worker, url, cid)
            with app.db.session() as s:
                claimed = s.scalar(select(func.count()).where(SurveyAttempt.status == "done"))
            assert claimed == planned == sum(c for c, _ in out), (claimed, planned, out)
            times.append(max(sec for _, sec in out))
            shares.append(sorted(c for c, _ in out))
        app.close()
    return {"attempts": n, "processes": procs, "seconds": median(times), "split": shares}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--procs", default="1,2,4")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--campaign", type=int, default=10_000)
    ap.add_argument("--out", type=Path, default=RESULTS / "scaleout.json")
    ap.add_argument(
        "--parts", default="tickets,webhooks,claim", help="which to run; others kept from --out"
    )
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    procs = [int(p) for p in args.procs.split(",")]

    def fresh() -> tuple[str, Callable[[], None]]:
        got = fresh_postgres(PG_ADMIN)
        if got is None:
            raise SystemExit("PostgreSQL is needed (IVR_BENCH_POSTGRES_URL)")
        return got

    def measured(fn: Callable[[str], Any]) -> list[Any]:
        values = []
        for _ in range(args.reps):
            url, drop = fresh()
            try:
                values.append(fn(url))
            finally:
                drop()
        return values

    old = json.loads(args.out.read_text()) if args.out.exists() else {}
    results: dict[str, Any] = {**old, **{
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "note": "2 shared cores; the load generators run on them too"},
        "seconds_per_run": args.seconds,
        "reps": args.reps,
    }}  # fmt: skip
    for n in procs if "tickets" in parts else []:
        results.setdefault("tickets_per_second", {})
        load = os.getloadavg()[0]
        rates = measured(lambda url, n=n: tickets_per_second(url, n, args.seconds))
        results["tickets_per_second"][str(n)] = {
            "median": median(rates),
            "runs": [round(r, 1) for r in rates],
            "load_average_before": round(load, 1),
        }
        print(f"tickets, {n} process(es): {median(rates)}/s", flush=True)
    for n in procs if "webhooks" in parts else []:
        results.setdefault("webhooks_per_second", {})
        load = os.getloadavg()[0]
        runs = measured(lambda url, n=n: webhooks_per_second(url, n, args.seconds))
        rates = [r for r, _ in runs]
        results["webhooks_per_second"][str(n)] = {
            "median": median(rates),
            "runs": [round(r, 1) for r in rates],
            "errors": sum(e for _, e in runs),
            "load_average_before": round(load, 1),
        }
        print(f"webhooks, {n} gunicorn worker(s): {median(rates)}/s", flush=True)
    for p in (1, 2) if "claim" in parts else []:
        if p == 1:
            results["claim"] = []
        url, drop = fresh()
        try:
            results["claim"].append(claim_seconds(url, args.campaign, p, args.reps))
        finally:
            drop()
        print(f"claim {args.campaign}: {results['claim'][-1]}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
