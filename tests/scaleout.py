"""Helpers for the multi-process tests: settings on PostgreSQL + Redis, child processes, logs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ivr.config import Settings

from .conftest import REDIS_URL, ROOT, settings_for


def scaleout_settings(
    base: Settings, tmp: Path, database_url: str, namespace: str, **surveys: Any
) -> Settings:
    s = settings_for(base, tmp, database_url)
    return s.model_copy(
        update={
            "jobs": s.jobs.model_copy(
                update={
                    "broker_url": REDIS_URL,
                    "namespace": namespace,
                    "worker_threads": 4,
                    "heartbeat_timeout_ms": 2000,
                    "call_slot_ttl_s": 6,
                    "dispatch_backlog": 10,
                    "schedule_interval_s": 0.3,
                    "max_retries": 3,
                    "min_backoff_ms": 100,
                }
            ),
            "surveys": s.surveys.model_copy(update=surveys),
        }
    )


@dataclass
class Child:
    role: str
    proc: subprocess.Popen[bytes]
    output: Path
    info: dict[str, Any]

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def spawn(
    role: str, settings: Settings, tmp: Path, at: str, calls_log: Path, hold_s: float, n: int
) -> Child:
    cfg = tmp / "settings.json"
    cfg.write_text(settings.model_dump_json())
    out = tmp / f"{role}-{n}.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "tests.scaleout_child", role, str(cfg), at, str(calls_log)]
    with out.open("wb") as f:
        proc = subprocess.Popen([*cmd, str(hold_s)], cwd=ROOT, env=env, stdout=f, stderr=f)
    child = Child(role, proc, out, {})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for line in child.text().splitlines():
            if line.startswith('{"ready"'):
                child.info = json.loads(line)
                return child
        if proc.poll() is not None:
            raise AssertionError(f"{role} child exited:\n{child.text()[-3000:]}")
        time.sleep(0.1)
    child.stop()
    raise AssertionError(f"{role} child not ready in 60 s:\n{child.text()[-3000:]}")


def wait_until(what: str, check: Callable[[], bool], timeout: float, children: list[Child]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    logs = "\n".join(f"--- {c.role} {c.proc.pid}\n{c.text()[-2500:]}" for c in children)
    raise AssertionError(f"timed out waiting for {what}\n{logs}")


def read_calls(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def most_in_any_window(times: list[float], window: float = 1.0) -> int:
    """The largest number of times inside any half-open interval [t, t + window)."""
    ts = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(ts):
        while ts[lo] <= t - window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def most_at_once(spans: list[tuple[float, float]]) -> int:
    events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    best = cur = 0
    for _, d in events:
        cur += d
        best = max(best, cur)
    return best
