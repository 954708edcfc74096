"""Twilio webhook latency under load, with the production server (gunicorn).

    .venv/bin/python bench/twilio_webhooks.py [--rates 10,50,100] [--duration 60]
        [--call-seconds 60] [--workers 2] [--db sqlite,postgres] [--stalled-hosts 0,16]

A typical inbound call makes 6 webhook requests in about 60 s: the voice URL, an
invalid key, the menu key, the <Record> action, the recording status callback
(which stores the row and queues the fetch of the audio from a local fake of the
REST API as a job) and the
final status callback. Calls start at rate/6 per second for --duration seconds;
each call's requests are --call-seconds/6 apart, in order, so at 10 req/s about
100 calls are in progress. Every request is signed exactly as Twilio signs it
(precomputed before the run). The load generator sends only to 127.0.0.1 and
stops after --duration + --call-seconds seconds or --max-requests requests.
Transcription is off (no ASR model is configured for the run): the figures are
the webhooks' own. With --stalled-hosts N the media of the first N calls of each
level hang (a recording host that accepts and never answers) until the level ends:
the recording callback must not wait for them (its fetch is a job). Results:
bench/results/twilio-webhooks-<start>.json, one file a run, and
bench/results/twilio-webhooks.md over them all.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import queue
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import requests
import yaml
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.data import statement  # noqa: E402
from harness.twiliokit.fake_api import FakeTwilioApi  # noqa: E402
from ivr.store import upgrade  # noqa: E402

RESULTS = ROOT / "bench" / "results"
AUDIO = statement(1)
PUBLIC = "https://ivr.example.org"
ACCOUNT_SID = "AC" + "be4c4be4" * 4
AUTH_TOKEN = "bench-" + uuid.uuid4().hex
GOAL_P99_MS = 50.0
STEPS = ("voice", "gather-invalid", "gather", "record", "recording", "status")
# The requests a caller waits for (the callbacks are off the call's path).
IN_CALL_STEPS = ("voice", "gather-invalid", "gather", "record")
PG_ADMIN = os.environ.get(
    "IVR_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@dataclass
class Req:
    at: float  # seconds after the run starts
    call: int
    step: int
    path: str
    data: dict[str, str]
    signature: str


@dataclass
class Sample:
    step: str
    status: int
    latency_ms: float
    late_ms: float
    at: float  # scheduled, seconds after the start
    app_ms: float | None  # the app's own time (Server-Timing), without server and client
    cpu_ms: float | None  # its thread's CPU time (Server-Timing cpu)
    lock_ms: float | None  # its wait for SQLite's write lock (Server-Timing lock)


@dataclass
class CallState:
    done: list[threading.Event] = field(default_factory=lambda: [threading.Event() for _ in STEPS])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_config(tmp: Path, api_base: str) -> Path:
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["storage_dir"] = str(tmp / "var")
    data["flows"]["dir"] = str(ROOT / "callflows")
    data["asr"]["models_dir"] = str(tmp / "no-models")  # no ASR: webhook latency only
    data["http"]["public_base_url"] = PUBLIC
    data["twilio"]["api_base_url"] = api_base
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def plan(
    rate: float,
    duration: float,
    call_s: float,
    api: FakeTwilioApi,
    cap: int,
    stalled: int = 0,
    stall: threading.Event | None = None,
) -> list[Req]:
    """Every request of the run, signed, in time order; the first `stalled` calls'
    recordings hang on the fake API until `stall` is set."""
    v = RequestValidator(AUTH_TOKEN)
    audio = AUDIO.read_bytes()
    calls_per_s = rate / len(STEPS)
    gap = call_s / len(STEPS)
    out: list[Req] = []
    n_calls = int(duration * calls_per_s)
    for c in range(n_calls):
        start = c / calls_per_s
        sid = "CA" + uuid.uuid4().hex
        rec_sid, rec_url = api.add_recording(audio, stall=stall if c < stalled else None)
        base = {
            "AccountSid": ACCOUNT_SID,
            "ApiVersion": "2010-04-01",
            "CallSid": sid,
            "Direction": "inbound",
            "From": f"+86139{c % 100000000:08d}",
            "To": "+8687112345",
        }
        live = {**base, "CallStatus": "in-progress"}
        rec = {"RecordingSid": rec_sid, "RecordingUrl": rec_url, "RecordingDuration": "5"}
        steps: list[tuple[str, dict[str, str]]] = [
            ("/twilio/voice", {**base, "CallStatus": "ringing"}),
            ("/twilio/gather?seq=1", {**live, "Digits": "9"}),
            ("/twilio/gather?seq=2", {**live, "Digits": "2"}),
            ("/twilio/record?seq=3", {**live, **rec, "Digits": "#"}),
            (
                "/twilio/recording",
                {
                    "AccountSid": ACCOUNT_SID,
                    "CallSid": sid,
                    **rec,
                    "RecordingStatus": "completed",
                },
            ),
            ("/twilio/status", {**base, "CallStatus": "completed", "CallDuration": "60"}),
        ]
        for i, (path, data) in enumerate(steps):
            sig = v.compute_signature(PUBLIC + path, data)
            out.append(Req(start + i * gap, c, i, path, data, sig))
    out.sort(key=lambda r: r.at)
    return out[:cap]


def run_load(base_url: str, reqs: list[Req], threads: int) -> tuple[list[Sample], float, list[str]]:
    assert base_url.startswith("http://127.0.0.1:"), "load goes to loopback only"
    calls: dict[int, CallState] = {}
    for r in reqs:
        calls.setdefault(r.call, CallState())
    work: queue.Queue[Req | None] = queue.Queue()
    samples: list[Sample] = []
    failures: list[str] = []
    lock = threading.Lock()
    t0 = time.monotonic() + 0.5

    def worker() -> None:
        http = requests.Session()
        while (r := work.get()) is not None:
            state = calls[r.call]
            if r.step > 0:
                state.done[r.step - 1].wait(30)  # a call's requests stay in order
            sent = time.monotonic()
            try:
                resp = http.post(
                    base_url + r.path,
                    data=r.data,
                    headers={
                        "X-Twilio-Signature": r.signature,
                        "User-Agent": "TwilioProxy/1.1",
                        # A new connection per request: no race with the server's keep-alive
                        # timeout closing a connection the client is about to reuse.
                        "Connection": "close",
                    },
                    timeout=15,  # what Twilio allows before it gives up
                )
                status = resp.status_code
                timing = server_timing(resp.headers.get("Server-Timing"))
            except requests.RequestException as exc:
                status, timing = 0, {}
                with lock:
                    failures.append(f"{r.path}: {type(exc).__name__}: {str(exc)[:200]}")
            got = time.monotonic()
            state.done[r.step].set()
            with lock:
                samples.append(
                    Sample(
                        STEPS[r.step],
                        status,
                        (got - sent) * 1000,
                        (sent - t0 - r.at) * 1000,
                        r.at,
                        timing.get("app"),
                        timing.get("cpu"),
                        timing.get("lock"),
                    )
                )

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    for r in reqs:
        delay = t0 + r.at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        work.put(r)
    for _ in pool:
        work.put(None)
    for t in pool:
        t.join(60)
    return samples, time.monotonic() - t0, failures


class LoadSampler:
    """os.getloadavg() every 5 s while in use: the machine is shared."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.samples.append(os.getloadavg()[0])
            if self._stop.wait(5):
                return

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def server_timing(header: str | None) -> dict[str, float]:
    """The metrics of a Server-Timing header (`app;dur=12.3, cpu;dur=4.5`), in ms."""
    out = {}
    for metric in (header or "").split(","):
        name, _, dur = metric.partition(";dur=")
        if dur:
            out[name.strip()] = float(dur)
    return out


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s)) - 1))]


def summarize(
    rate: float,
    call_s: float,
    duration: float,
    samples: list[Sample],
    cpu: dict[str, float],
) -> dict[str, Any]:
    """Latency over the steady part (every call slot busy: call_s <= t < duration); errors
    over the whole run."""
    errors = [s for s in samples if s.status not in (200, 204)]
    steady_from, steady_to = (call_s, duration) if duration > call_s else (0.0, duration + call_s)
    steady = [s for s in samples if steady_from <= s.at < steady_to]
    ok = [s.latency_ms for s in steady if s.status in (200, 204)]
    answered = [s for s in steady if s.status in (200, 204)]
    app = [s.app_ms for s in answered if s.app_ms is not None]
    cpu_ms = [s.cpu_ms for s in answered if s.cpu_ms is not None]
    lock = [s.lock_ms for s in answered if s.lock_ms is not None]
    # Where the slowest 1 % went: their medians of latency, app time, CPU and lock wait.
    p99 = pct(ok, 99)
    tail = [s for s in answered if s.latency_ms >= p99]
    per_step = {
        step: {
            "p50_ms": round(pct(lat, 50), 1),
            "p99_ms": round(pct(lat, 99), 1),
        }
        for step in STEPS
        if (lat := [s.latency_ms for s in steady if s.step == step and s.status in (200, 204)])
    }
    span = steady_to - steady_from
    return {
        "rate_target": rate,
        "calls_in_progress": round(rate / len(STEPS) * call_s),
        "requests": len(samples),
        "steady_requests": len(steady),
        "rate_achieved": round(len(steady) / span, 1) if span else None,
        "errors": len(errors),
        "error_statuses": sorted({s.status for s in errors}),
        "p50_ms": round(pct(ok, 50), 1),
        "p90_ms": round(pct(ok, 90), 1),
        "p99_ms": round(pct(ok, 99), 1),
        "max_ms": round(max(ok), 1) if ok else None,
        "mean_ms": round(statistics.fmean(ok), 1) if ok else None,
        "app_p50_ms": round(pct(app, 50), 1),
        "app_p99_ms": round(pct(app, 99), 1),
        "app_cpu_p50_ms": round(pct(cpu_ms, 50), 1),
        "app_cpu_p99_ms": round(pct(cpu_ms, 99), 1),
        "lock_p99_ms": round(pct(lock, 99), 1),
        "slowest_1pct": {
            "n": len(tail),
            "latency_ms": _median([s.latency_ms for s in tail]),
            "app_ms": _median([s.app_ms for s in tail if s.app_ms is not None]),
            "cpu_ms": _median([s.cpu_ms for s in tail if s.cpu_ms is not None]),
            "lock_ms": _median([s.lock_ms for s in tail if s.lock_ms is not None]),
            "steps": sorted({s.step for s in tail}),
        },
        "generator_late_p99_ms": round(pct([s.late_ms for s in samples], 99), 1),
        "per_step": per_step,
        "server_cpu_s": cpu,
        "goal_met": bool(ok) and pct(ok, 99) < GOAL_P99_MS and not errors,
    }


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def proc_cpu(pids: list[int]) -> float:
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [pid] + [int(p) for p in out.split()]


def start_gunicorn(
    cfg: Path, db_url: str, port: int, workers: int, worker_class: str, threads: int, log: Path
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "IVR_CONFIG": str(cfg),
        "DATABASE_URL": db_url,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
    }
    cmd = [
        # This interpreter's gunicorn: a copied venv's bin/gunicorn may name another python.
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        str(workers),
        "--worker-class",
        worker_class,
        "--threads",
        str(threads),
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "--chdir",
        str(ROOT),
        "webhooks.wsgi:app",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    for _ in range(300):
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except requests.RequestException:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("gunicorn did not start")


def postgres_db() -> tuple[str, Any] | None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:
        print(f"PostgreSQL not reachable ({type(exc).__name__}); skipped", file=sys.stderr)
        return None
    name = f"ivr_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    url = make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    return url, drop


def bench_db(kind: str, args: argparse.Namespace) -> dict[str, Any] | None:
    cleanup = None
    with tempfile.TemporaryDirectory(prefix="twilio-bench-") as tmpdir:
        tmp = Path(tmpdir)
        if kind == "sqlite":
            db_url = f"sqlite:///{tmp / 'ivr.sqlite3'}"
        else:
            made = postgres_db()
            if made is None:
                return None
            db_url, cleanup = made
        try:
            upgrade(db_url)
            api = FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN).start()
            cfg = bench_config(tmp, api.base_url)
            port = free_port()
            proc = start_gunicorn(
                cfg,
                db_url,
                port,
                args.workers,
                args.worker_class,
                args.server_threads,
                tmp / "gunicorn.log",
            )
            levels = []
            try:
                warm = plan(4, 3, 3, api, 100)  # imports, caches and connections warmed up
                run_load(f"http://127.0.0.1:{port}", warm, 4)
                for rate, stalled in [(r, n) for n in args.stalled_hosts for r in args.rates]:
                    stall = threading.Event()
                    reqs = plan(
                        rate,
                        args.duration,
                        args.call_seconds,
                        api,
                        args.max_requests,
                        stalled,
                        stall,
                    )
                    pids = children(proc.pid)
                    cpu0 = proc_cpu(pids)
                    load0 = os.getloadavg()[0]
                    with LoadSampler() as loads:
                        samples, wall, failures = run_load(
                            f"http://127.0.0.1:{port}", reqs, args.threads
                        )
                    cpu = {
                        "gunicorn": round(proc_cpu(pids) - cpu0, 1),
                        "wall_s": round(wall, 1),
                        "loadavg_before": round(load0, 2),
                        "loadavg_after": round(os.getloadavg()[0], 2),
                        # 1-minute load average every 5 s while the level ran
                        "loadavg_during": round(statistics.fmean(loads.samples), 2),
                        "loadavg_max": round(max(loads.samples), 2),
                    }
                    stall.set()
                    level = summarize(rate, args.call_seconds, args.duration, samples, cpu)
                    level["stalled_hosts"] = stalled
                    level["client_failures"] = failures[:20]
                    print(f"{kind} {rate:>5} req/s: {json.dumps(level, ensure_ascii=False)}")
                    levels.append(level)
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                api.stop()
            log_tail = (tmp / "gunicorn.log").read_text(errors="replace")[-3000:]
            return {"database": kind, "levels": levels, "server_log_tail": log_tail}
        finally:
            if cleanup is not None:
                cleanup()


def markdown(results: list[dict[str, Any]]) -> str:
    """One table over every run (bench/results/twilio-webhooks*.json)."""
    first = results[0]
    m = first["machine"]
    lines = [
        "# Twilio webhook latency under load",
        "",
        "Made by `bench/twilio_webhooks.py` from the `twilio-webhooks*.json` files beside this "
        f"one. gunicorn {m['gunicorn']} on 127.0.0.1, the load generator on the same "
        f"{m['cpus']}-core machine. A call is {len(STEPS)} signed requests "
        f"({', '.join(STEPS)}) spread over {first['call_seconds']:.0f} s, so 10 req/s is "
        f"{round(10 / len(STEPS) * first['call_seconds'])} calls in progress; calls start for "
        f"{first['duration']:.0f} s per level and latency is taken while every call slot is "
        "busy (after the first call's length). The recording callback stores its row and "
        "queues the fetch of 41 KB of audio from a local fake of the REST API (runs 1-7: "
        "fetched and stored before answering); `stalled hosts`: that many recordings' "
        "media hang until the level ends; "
        "transcription is off. Latency: from sending a request to its full response. "
        "Goal: p99 < 50 ms and no errors. `in-call steps p99` is the worst p99 of the "
        "requests a caller waits on (voice, keys, the end of the statement); the recording "
        "and status callbacks are off the call's path. `app` is the Flask app's own time "
        "(its Server-Timing header): the rest is gunicorn, TCP and the load generator. "
        "The machine is shared: `load avg` shows how busy it was, and the notes say what else ran.",
        "",
        "| run | server | database | req/s target | stalled hosts | achieved (steady) "
        "| calls in progress "
        "| requests | errors | p50 ms | p90 ms | p99 ms | max ms | slowest step p99 "
        "| in-call steps p99 | app p50 / p99 ms | app CPU p99 / lock wait p99 ms "
        "| slowest 1 %: latency / app / CPU / lock ms | server CPU s / wall s "
        "| load avg (during) | goal |",
        "| --- " * 21 + "|",
    ]
    notes = []
    for n, result in enumerate(results, start=1):
        server = f"{result['workers']} x {result['worker_class']}"
        if result.get("server_threads", 1) > 1:
            server += f" x {result['server_threads']} threads"
        if result.get("note"):
            notes.append(f"{n}. {result['started']}: {result['note']}")
        for db in result["databases"]:
            for lv in db["levels"]:
                slowest = max(lv["per_step"].items(), key=lambda kv: kv[1]["p99_ms"])
                in_call = max(v["p99_ms"] for k, v in lv["per_step"].items() if k in IN_CALL_STEPS)
                cpu = lv["server_cpu_s"]
                tail = lv.get("slowest_1pct") or {}
                during = f" ({cpu['loadavg_during']})" if "loadavg_during" in cpu else ""
                lines.append(
                    f"| {n} | {server} | {db['database']} | {lv['rate_target']:g} "
                    f"| {lv.get('stalled_hosts', 0)} | {lv['rate_achieved']} "
                    f"| {lv['calls_in_progress']} | {lv['requests']} "
                    f"| {lv['errors']} | {lv['p50_ms']} | {lv['p90_ms']} | {lv['p99_ms']} "
                    f"| {lv['max_ms']} | {slowest[0]} {slowest[1]['p99_ms']} | {in_call} "
                    f"| {lv.get('app_p50_ms', '-')} / {lv.get('app_p99_ms', '-')} "
                    f"| {lv.get('app_cpu_p99_ms', '-')} / {lv.get('lock_p99_ms', '-')} "
                    f"| {tail.get('latency_ms', '-')} / {tail.get('app_ms', '-')} "
                    f"/ {tail.get('cpu_ms', '-')} / {tail.get('lock_ms', '-')} "
                    f"| {cpu['gunicorn']} / {cpu['wall_s']} "
                    f"| {cpu['loadavg_before']} -> {cpu['loadavg_after']}{during} "
                    f"| {'yes' if lv['goal_met'] else 'no'} |"
                )
    lines += ["", f"Machine: {m['platform']}, Python {m['python']}.", ""]
    if notes:
        lines += ["Notes:", "", *notes, ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rates", default="10,50,100", help="request rates per second")
    ap.add_argument("--duration", type=float, default=120.0, help="seconds of call starts")
    ap.add_argument("--call-seconds", type=float, default=60.0, help="length of one call")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--worker-class", default="sync", help="sync or gthread")
    ap.add_argument("--server-threads", type=int, default=1, help="threads per gthread worker")
    ap.add_argument("--threads", type=int, default=64, help="load generator threads")
    ap.add_argument("--max-requests", type=int, default=20000)
    ap.add_argument("--db", default="sqlite,postgres")
    ap.add_argument(
        "--stalled-hosts", default="0", help="recording fetches that hang, per level (0,16)"
    )
    ap.add_argument("--out", type=Path, help="default: bench/results/twilio-webhooks-<start>.json")
    ap.add_argument("--note", default="", help="what else ran on the machine, say")
    ap.add_argument("--md-only", action="store_true", help="only rebuild the .md from the JSON")
    args = ap.parse_args()
    if args.md_only:
        print(write_markdown())
        return
    args.rates = [float(r) for r in args.rates.split(",")]
    args.stalled_hosts = [int(n) for n in args.stalled_hosts.split(",")]
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the fake API's access log
    if not AUDIO.is_file():
        sys.exit(f"test audio {AUDIO} is missing")
    result: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "workers": args.workers,
        "worker_class": args.worker_class,
        "server_threads": args.server_threads,
        "duration": args.duration,
        "call_seconds": args.call_seconds,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "gunicorn": version("gunicorn"),
        },
        "databases": [],
        "note": args.note,
    }
    for kind in args.db.split(","):
        db = bench_db(kind.strip(), args)
        if db is not None:
            result["databases"].append(db)
    out = args.out or RESULTS / f"twilio-webhooks-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(write_markdown())


def write_markdown() -> str:
    """bench/results/twilio-webhooks.md over every run there, oldest first."""
    runs = [
        json.loads(f.read_text(encoding="utf-8")) for f in RESULTS.glob("twilio-webhooks*.json")
    ]
    md = markdown(sorted(runs, key=lambda r: r["started"]))
    (RESULTS / "twilio-webhooks.md").write_text(md, encoding="utf-8")
    return md


if __name__ == "__main__":
    main()
