"""/metrics, /readyz, JSON logs, the scheduler lease and `ivr serve --role web` (gunicorn)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from ivr.app import Hotline
from ivr.cli import main
from ivr.clock import FixedClock
from ivr.config import Settings
from ivr.runtime import logs
from ivr.runtime.lease import Lease
from ivr.services import Actor
from ivr.services.campaigns import create_campaign
from ivr.store import Database, upgrade
from ivr.surveys.outcomes import record_score
from webhooks import create_app

from .conftest import ROOT, settings_for
from .surveykit import completed_tickets
from .test_serve import free_port

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _metric(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        series, _, value = line.rpartition(" ")
        if series == f"{name}{{{want}}}":
            return float(value)
    raise AssertionError(f"{name}{{{want}}} not in metrics:\n{text[:3000]}")


def test_metrics_show_survey_results_queue_depth_and_request_latency(hotline: Hotline) -> None:
    completed_tickets(hotline, ["13900000001"], datetime(2026, 11, 23, 1, 0, tzinfo=UTC))
    create_campaign(hotline, Actor.system("test"), "m")
    with hotline.db.session() as s:
        record_score(s, {"attempt_id": 1, "score": "unsatisfied"}, hotline.clock.now())
    client = create_app(hotline).test_client()
    health = client.get("/healthz")
    assert health.status_code == 200
    # Every response tells a proxy's log how long the app itself took, how much of it
    # was its thread's CPU time and how long it waited for SQLite's write lock.
    timing = dict(
        (name.strip(), float(dur))
        for name, _, dur in (
            m.partition(";dur=") for m in health.headers["Server-Timing"].split(",")
        )
    )
    assert list(timing) == ["app", "cpu", "lock"]
    assert 0 < timing["app"] < 10_000 and timing["cpu"] >= 0 and timing["lock"] >= 0
    resp = client.get("/metrics")
    assert resp.status_code == 200 and resp.mimetype == "text/plain"
    text = resp.get_data(as_text=True)
    assert _metric(text, "ivr_survey_results", score="unsatisfied") == 1
    assert _metric(text, "ivr_queue_depth", queue="asr") == 0
    assert _metric(text, "ivr_webhook_seconds_count", endpoint="/healthz", method="GET") >= 1
    assert "ivr_calls_in_progress" in text and "ivr_asr_real_time_factor" in text


def test_metrics_count_finished_calls(hotline: Hotline) -> None:
    from ivr.calls.simulate import simulate_inbound

    client = create_app(hotline).test_client()
    series = 'ivr_calls_total{direction="inbound",outcome="completed"}'
    before = client.get("/metrics").get_data(as_text=True)
    done = (
        _metric(before, "ivr_calls_total", direction="inbound", outcome="completed")
        if (series in before)
        else 0.0
    )
    simulate_inbound(hotline, line="12315", caller="13800138000", digits="2", text="商家不退款")
    text = client.get("/metrics").get_data(as_text=True)
    assert _metric(text, "ivr_calls_total", direction="inbound", outcome="completed") == done + 1
    assert "ivr_calls_open" in text


def test_readyz_checks_database_and_migrations(settings: Settings) -> None:
    fresh = Hotline.open(settings, check_schema=False)  # nothing migrated yet
    client = create_app(fresh).test_client()
    resp = client.get("/readyz")
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["checks"]["database"]["ok"] and not body["checks"]["migrations"]["ok"]
    assert "ivr db upgrade" in body["checks"]["migrations"]["detail"]
    upgrade(settings.resolved_database_url)
    resp = client.get("/readyz")
    assert resp.status_code == 200 and resp.get_json()["status"] == "ready"
    fresh.close()


def test_readyz_checks_the_broker(
    settings: Settings, redis_namespace: str, migrate: Callable[[str], None]
) -> None:
    from .conftest import REDIS_URL

    migrate(settings.resolved_database_url)
    s = settings.model_copy(
        update={
            "jobs": settings.jobs.model_copy(
                update={"broker_url": REDIS_URL, "namespace": redis_namespace}
            )
        }
    )
    app = Hotline.open(s)
    body = create_app(app).test_client().get("/readyz").get_json()
    assert body["checks"]["broker"] == {"ok": True, "detail": "reachable"}
    app.close()


def test_readyz_warns_from_december_when_next_year_is_only_estimated(
    settings: Settings, migrate: Callable[[str], None]
) -> None:
    migrate(settings.resolved_database_url)
    clock = FixedClock(datetime(2026, 12, 2, 10, 0, tzinfo=SHANGHAI))
    app = Hotline.open(settings, clock)
    client = create_app(app).test_client()
    resp = client.get("/readyz")
    body = resp.get_json()
    assert resp.status_code == 200 and body["status"] == "ready"  # a warning, not a failure
    assert body["checks"]["calendar"]["ok"] and body["checks"]["calendar"]["warning"]
    assert len(body["warnings"]) == 1 and "2027" in body["warnings"][0]
    clock.set(datetime(2026, 11, 30, 10, 0, tzinfo=SHANGHAI))
    body = client.get("/readyz").get_json()
    assert body["warnings"] == []
    assert body["checks"]["calendar"] == {"ok": True, "detail": "official for 2026"}
    app.close()


def test_json_logs_carry_call_and_ticket_and_mask_numbers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.setup("INFO", "json")
    try:
        with logs.log_context(call_id="CA123", ticket="12345-20261123-00001"):
            logging.getLogger("ivr.test").info("caller %s pressed 2", "13800138000")
        logging.getLogger("ivr.test").warning("plain", extra={"call_id": "CA9"})
    finally:
        logs.setup("WARNING")
    first, second = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert first["msg"] == "caller 138****8000 pressed 2"
    assert first["call_id"] == "CA123" and first["ticket"] == "12345-20261123-00001"
    assert first["level"] == "INFO" and first["logger"] == "ivr.test"
    assert second["call_id"] == "CA9" and "ticket" not in second


@pytest.mark.db  # its own database, not the `settings` fixture
def test_bad_log_format_and_role_are_clear_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(main, ["check"], env={"IVR_LOG_FORMAT": "xml"})
    assert out.exit_code == 2 and "IVR_LOG_FORMAT" in out.output
    url = f"sqlite:///{tmp_path / 'r.sqlite3'}"
    upgrade(url)
    out = runner.invoke(main, ["serve", "--role", "web,dialer"], env={"DATABASE_URL": url})
    assert out.exit_code == 2 and "unknown role(s) dialer" in out.output
    out = runner.invoke(
        main,
        ["serve", "--role", "worker"],
        env={"DATABASE_URL": url, "REDIS_URL": "redis://127.0.0.1:1/0"},
    )
    assert out.exit_code == 2 and "Redis is not reachable" in out.output


@pytest.mark.db  # its own database, not the `settings` fixture
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_only_one_scheduler_lease_holder(
    backend: str, base_settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else None
    s = settings_for(base_settings, tmp_path, url)
    db_a, db_b = Database(s.resolved_database_url), Database(s.resolved_database_url)
    a = Lease(db_a, "scheduler", s.storage_path)
    b = Lease(db_b, "scheduler", s.storage_path)
    assert a.try_acquire() and a.try_acquire()  # held, and still held
    assert not b.try_acquire()
    a.release()
    assert b.try_acquire() and not a.try_acquire()
    b.release()
    db_a.dispose()
    db_b.dispose()


@pytest.mark.db  # its own database, not the `settings` fixture
def test_role_web_runs_gunicorn_workers_and_metrics_add_up_across_them(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'web.sqlite3'}"
    upgrade(url)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"),
    }
    cmd = [sys.executable, "-m", "ivr.cli", "--config", str(ROOT / "config.yaml")]
    cmd += ["serve", "--role", "web", "--web-workers", "2", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=2).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                time.sleep(0.2)
        for _ in range(40):
            with urllib.request.urlopen(f"{base}/readyz", timeout=5) as r:
                assert r.status == 200
        text = urllib.request.urlopen(f"{base}/metrics", timeout=5).read().decode()
        # 40 requests to /readyz, whichever of the gunicorn workers answered each.
        assert _metric(text, "ivr_webhook_seconds_count", endpoint="/readyz", method="GET") == 40
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0].decode(errors="replace")
    assert "Booting worker" in out and out.count("Booting worker") >= 2
