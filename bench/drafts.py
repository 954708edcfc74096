"""Benchmark: offline calls to drafts, the flow engine, and intake analysis.

    .venv/bin/python -m bench.drafts [--calls 300] [--postgres URL] [--out FILE]

Reports medians over repetitions (this machine is shared and noisy):
- flow engine steps per second (pure, no database),
- intake analysis time per statement,
- complete simulated calls (start -> menu -> statement -> draft) per second on
  SQLite and, when reachable, PostgreSQL.
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

from bench.pg import fresh_postgres
from ivr.app import Hotline
from ivr.calls.simulate import simulate_inbound
from ivr.config import load_config
from ivr.flow import Digits, Engine, RecordingFinished
from ivr.flow.configured import load_flows
from ivr.intake.analyze import analyze
from ivr.store import upgrade

ROOT = Path(__file__).resolve().parents[1]

STATEMENTS = [
    "我要投诉我们小区楼下的烧烤店每天晚上噪音扰民到凌晨两点",
    "请问办理社保卡需要带哪些材料在哪里可以办",
    "我家已经停水两天了一直没有人来修请尽快处理",
    "建议在人民路和解放路路口增加一个红绿灯现在过马路很危险",
    "我要举报一家药店在卖过期的药品",
    "五华区青年路一百二十三号的下水道堵了请尽快处理",
]


def median_rate(fn: Any, n: int, reps: int) -> float:
    rates = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn(n)
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates)


def bench_engine(reps: int) -> float:
    settings = load_config(ROOT / "config.yaml", env={})
    flow = load_flows(settings)["inbound"]
    engine = Engine(flow, {"create_draft": lambda v: {"ticket_no": "x"}})

    def run(n: int) -> None:
        for _ in range(n // 3):
            s = engine.start({"greeting": "您好"})
            s = engine.step(s.state, Digits("2"))
            engine.step(s.state, RecordingFinished({"recording_id": 1}))

    return median_rate(run, 30000, reps)


def bench_analyze(reps: int) -> float:
    settings = load_config(ROOT / "config.yaml", env={})
    line = settings.lines[0]
    analyze(settings, STATEMENTS[0], line=line)  # warm-up (cpca loads its tables)
    times = []
    for _ in range(reps):
        for s in STATEMENTS:
            t0 = time.perf_counter()
            analyze(settings, s, line=line)
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def bench_calls(url: str, calls: int, reps: int) -> float:
    base = load_config(ROOT / "config.yaml", env={})
    with tempfile.TemporaryDirectory() as tmp:
        settings = base.model_copy(update={"database_url": url, "storage_dir": Path(tmp)})
        upgrade(settings.resolved_database_url)
        app = Hotline.open(settings)
        i = 0

        def run(n: int) -> None:
            nonlocal i
            for _ in range(n):
                i += 1
                caller = f"139{i:08d}"
                simulate_inbound(
                    app,
                    line="12345",
                    caller=caller,
                    digits="2",
                    text=STATEMENTS[i % len(STATEMENTS)],
                )

        rate = median_rate(run, calls, reps)
        app.close()
        return rate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "drafts.json")
    args = ap.parse_args()
    result: dict[str, Any] = {
        "machine": f"{platform.node()} {platform.machine()} python {platform.python_version()}",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "reps": args.reps,
        "engine_calls_per_s": round(bench_engine(args.reps) / 3, 1),
        "analyze_ms_median": round(bench_analyze(args.reps), 3),
    }
    with tempfile.TemporaryDirectory() as tmp:
        result["sqlite_calls_per_s"] = round(
            bench_calls(f"sqlite:///{tmp}/bench.sqlite3", args.calls, args.reps), 1
        )
    pg = fresh_postgres(args.postgres)
    if pg:
        url, drop = pg
        try:
            result["postgres_calls_per_s"] = round(bench_calls(url, args.calls, args.reps), 1)
        finally:
            drop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
