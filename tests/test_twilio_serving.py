"""Twilio webhooks against the real servers `ivr serve` runs (waitress, gunicorn).

- A recording whose fetch was in flight when `ivr serve` died is fetched after a
  restart: the all-in-one `ivr serve` (embedded job queue) behind the signing driver
  over HTTP, the fake REST API's media host stalled, SIGKILL mid-fetch, a new serve.
- A huge chunked body is refused with 413 while it arrives, never read whole.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

from harness.twiliokit import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    PUBLIC_BASE,
    FakeTwilioApi,
    HttpTransport,
    Speak,
    TwilioDriver,
)
from ivr.store import upgrade

from .asr_fixtures import speech_file
from .conftest import ROOT
from .test_serve import STARTUP_S, free_port

H01 = "hotline/h01_8k_ulaw.wav"


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.fixture
def api() -> Iterator[FakeTwilioApi]:
    fake = FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN).start()
    try:
        yield fake
    finally:
        if fake.hold_media is not None:
            fake.hold_media.set()
        fake.stop()


def _config(tmp: Path, api: FakeTwilioApi) -> Path:
    text_ = (ROOT / "config.yaml").read_text()
    text_ = text_.replace("public_base_url: null", f"public_base_url: {PUBLIC_BASE}")
    text_ = text_.replace("api_base_url: https://api.twilio.com", f"api_base_url: {api.base_url}")
    text_ = text_.replace("dir: callflows", f"dir: {ROOT / 'callflows'}")
    text_ = text_.replace("models_dir: asr_models", f"models_dir: {ROOT / 'asr_models'}")
    cfg = tmp / "config.yaml"
    cfg.write_text(text_)
    return cfg


class Serve:
    def __init__(
        self, cfg: Path, env: dict[str, str], port: int, log: Path, role: str = "all"
    ) -> None:
        self.port, self.log = port, log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ivr.cli", "--config", str(cfg), "serve", "--port", str(port),
             "--role", role, "--web-workers", "1"],
            env=env, cwd=cfg.parent, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        )  # fmt: skip

    def up(self) -> bool:
        try:
            r = requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1)
            return r.status_code == 200
        except requests.RequestException:
            return False

    def wait_up(self) -> None:
        ok = wait_for(lambda: self.up() or self.proc.poll() is not None, STARTUP_S)
        assert ok and self.proc.poll() is None, self.log.read_text()[-3000:]

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


def _env(tmp: Path) -> tuple[str, dict[str, str]]:
    url = f"sqlite:///{tmp / 'ivr.sqlite3'}"
    upgrade(url)
    return url, {
        **os.environ,
        "DATABASE_URL": url,
        "REDIS_URL": "",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
    }


def test_fetch_in_flight_at_a_crash_is_done_after_restart(
    tmp_path: Path, api: FakeTwilioApi
) -> None:
    url, env = _env(tmp_path)
    cfg, port = _config(tmp_path, api), free_port()
    engine = create_engine(url)

    def recording_status() -> str | None:
        with engine.connect() as c:
            return c.execute(text("SELECT status FROM recordings")).scalar()

    first = Serve(cfg, env, port, tmp_path / "serve1.log")
    second: Serve | None = None
    try:
        first.wait_up()
        api.hold_media = threading.Event()
        driver = TwilioDriver(HttpTransport(f"http://127.0.0.1:{port}"), api)
        audio = speech_file(H01)
        call = driver.inbound(script=["2", Speak(audio)])
        assert call.errors == []
        assert wait_for(lambda: api.media_held == 1, 60)
        first.kill()  # mid-fetch: the in-process queue dies with it
        api.hold_media.set()
        api.hold_media = None
        assert recording_status() == "fetching"
        second = Serve(cfg, env, port, tmp_path / "serve2.log")
        second.wait_up()
        assert wait_for(lambda: recording_status() != "fetching", 120), second.log.read_text()[
            -3000:
        ]
        assert recording_status() in ("transcription_pending", "transcribed")
        with engine.connect() as c:
            path = c.execute(text("SELECT path FROM recordings")).scalar()
        assert path and Path(path).read_bytes() == audio.read_bytes()
        assert "queued again at start-up" in second.log.read_text()
    finally:
        first.stop()
        if second is not None:
            second.stop()
        engine.dispose()


MB = 1024 * 1024
CHUNK = b"A=" + b"x" * (64 * 1024 - 2)


@pytest.mark.parametrize("role", ["web", "all"], ids=["gunicorn", "waitress"])
def test_a_huge_chunked_body_is_refused_while_it_arrives(
    tmp_path: Path, api: FakeTwilioApi, role: str
) -> None:
    _, env = _env(tmp_path)
    if role == "web":  # gunicorn's workers share their metrics through files
        env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "prom")
    serve = Serve(_config(tmp_path, api), env, free_port(), tmp_path / "serve.log", role)
    try:
        serve.wait_up()
        sock = socket.create_connection(("127.0.0.1", serve.port))
        sock.settimeout(10)
        sock.sendall(
            b"POST /twilio/voice HTTP/1.1\r\nHost: ivr.example.org\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Transfer-Encoding: chunked\r\nX-Twilio-Signature: forged\r\n\r\n"
        )
        sent, reply = 0, b""
        while sent < 100 * MB and not reply:
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK))
            except (OSError, TimeoutError):
                break  # the server stopped reading: its answer is below
            sent += len(CHUNK)
            if select.select([sock], [], [], 0)[0]:
                reply = sock.recv(4096)
        if not reply:
            sock.settimeout(30)
            reply = sock.recv(4096)
        sock.close()
        assert reply.split(b"\r\n")[0].split(b" ")[1] == b"413", (reply[:300], sent)
        assert sent < 16 * MB  # answered long before the 100 MB were sent
        assert serve.proc.poll() is None  # and still serving
        assert serve.up()
    finally:
        serve.stop()
