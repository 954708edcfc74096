"""`ivr serve` starts the HTTP app on the embedded default and keeps answering."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ivr.store import upgrade

from .conftest import ROOT

# How long `ivr serve` may take to start: generous, the machine may be busy (a wait
# for it to answer, not a time it must meet).
STARTUP_S = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_cmd(port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "ivr.cli",
        "--config",
        str(ROOT / "config.yaml"),
        "serve",
        "--port",
        str(port),
    ]


def test_serve_answers_healthz(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'serve.sqlite3'}"
    upgrade(url)
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url}
    proc = subprocess.Popen(
        serve_cmd(port),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        body = None
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    body = json.loads(r.read())
                    break
            except OSError:
                if proc.poll() is not None:
                    break
                time.sleep(0.1)
        assert body is not None, proc.stdout.read() if proc.poll() is not None else "no answer"
        assert body["status"] == "ok"
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert f"serving on http://127.0.0.1:{port}" in out


def test_serve_refuses_unmigrated_database(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'none.sqlite3'}"}
    result = subprocess.run(
        serve_cmd(free_port()),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "run `ivr db upgrade`" in result.stderr


def test_serve_runs_the_sip_phone_when_enabled(tmp_path: Path) -> None:
    import shutil

    import yaml

    from harness.sipkit import options_ping
    from harness.sipkit.ports import free_sip_port

    if shutil.which("sipp") is None:
        pytest.skip("SIP peers not installed (Debian packages: see scripts/system-deps.sh)")
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    sip_port = free_sip_port()
    data["sip"].update(enabled=True, port=sip_port, rtp_port_min=41000, rtp_port_max=41100)
    data["flows"]["dir"] = str(ROOT / "callflows")
    data["asr"]["models_dir"] = str(ROOT / "asr_models")
    data["storage_dir"] = str(tmp_path / "var")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'serve.sqlite3'}"
    upgrade(url)
    cmd = [
        sys.executable,
        "-m",
        "ivr.cli",
        "--config",
        str(cfg),
        "serve",
        "--port",
        str(free_port()),
    ]
    proc = subprocess.Popen(
        cmd,
        env={**os.environ, "DATABASE_URL": url},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        status = None
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            status = options_ping(("127.0.0.1", sip_port))
            if status is not None or proc.poll() is not None:
                break
            time.sleep(0.2)
        assert status == 200
        # A second `ivr serve` with the same config must not share the SIP port.
        second = subprocess.run(
            [*cmd[:-1], str(free_port())],
            env={**os.environ, "DATABASE_URL": url},
            capture_output=True,
            text=True,
            timeout=STARTUP_S,
        )
        assert second.returncode == 2, (second.stdout, second.stderr)
        in_use = f"SIP port 127.0.0.1:{sip_port} is already in use"
        assert f"error: {in_use}" in second.stderr
        assert "ERROR" in second.stderr and in_use in second.stderr.split("error:")[0]
        assert options_ping(("127.0.0.1", sip_port)) == 200
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert "SIP phone on 127.0.0.1" in out
