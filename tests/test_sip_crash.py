"""Nothing a caller said is lost when `ivr serve` dies mid-statement (issue 14, item 2).

A real `ivr serve --role sip,web` process takes a SIPp call; it is killed with
SIGKILL while the caller speaks, then started again: the call is closed as
interrupted, what was said before the kill is stored, transcribed and drafted
(flagged 通话中断), and /metrics counts it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from harness.sipfix import KO, caller_pcap, need_peers, short_prompt_flows
from harness.sipkit.attacks import send_raw
from harness.sipkit.kamailio import options_ping
from harness.sipkit.ports import free_port_block, free_sip_port
from harness.sipkit.procs import wait_until
from harness.sipkit.sipmsg import build_request
from harness.sipkit.sipp import SippProcess
from ivr.calls.recordings import WAV_HEADER
from ivr.config import Settings
from ivr.runtime.presence import dead_node
from ivr.store import Call, Recording, Ticket, upgrade
from ivr.store.db import Database

from .conftest import ROOT
from .test_serve import STARTUP_S, free_port


class Serve:
    """`ivr serve` as its own process, on a config of the test's."""

    def __init__(
        self, tmp: Path, db_url: str, sip_port: int, http_port: int, flows_dir: Path
    ) -> None:
        self.tmp, self.db_url, self.http_port = tmp, db_url, http_port
        self.log = tmp / "serve.log"
        data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
        low = free_port_block(100)
        data["sip"].update(
            enabled=True,
            port=sip_port,
            rtp_port_min=low,
            rtp_port_max=low + 99,
            answer_delay_ms=300,
        )
        data["flows"]["dir"] = str(flows_dir)
        data["asr"].update(models_dir=str(ROOT / "asr_models"), model=KO, sip_processes=1)
        data["storage_dir"] = str(tmp / "var")
        self.config = tmp / "config.yaml"
        self.config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        self.sip = ("127.0.0.1", sip_port)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        cmd = [sys.executable, "-m", "ivr.cli", "--config", str(self.config), "serve"]
        cmd += ["--role", "sip,web", "--port", str(self.http_port)]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                cmd,
                env={**os.environ, "DATABASE_URL": self.db_url},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        ready = wait_until(
            lambda: self.proc.poll() is not None or options_ping(self.sip) == 200,
            STARTUP_S,
            interval=0.2,
        )
        assert ready and self.proc.poll() is None, self.log.read_text(errors="replace")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, sig)  # the ASR worker process dies with it
        self.proc.wait(30)

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.http_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.read().decode()


def rows(db: Database) -> dict[str, Any]:
    with db.read() as s:
        return {
            "calls": list(s.scalars(select(Call))),
            "recordings": list(s.scalars(select(Recording))),
            "tickets": list(s.scalars(select(Ticket))),
            "transcripts": [r.transcript for r in s.scalars(select(Recording))],
        }


def test_kill_9_mid_statement_keeps_what_was_said(base_settings: Settings, tmp_path: Path) -> None:
    need_peers("sipp")
    db_url = f"sqlite:///{tmp_path / 'ivr.sqlite3'}"
    upgrade(db_url)
    # About what survives the kill, not what the caller hears: the prompts are cut short.
    settings = short_prompt_flows(base_settings, tmp_path)
    serve = Serve(tmp_path, db_url, free_sip_port(), free_port(), settings.flows_path)
    spool_dir = tmp_path / "var" / "recordings" / "live"
    serve.start()
    sipp = None
    try:
        pcap = caller_pcap(settings, tmp_path, "12345", digit="2", n=1)
        sipp = SippProcess(
            "uac_call",
            serve.sip,
            service="12345",
            keys={"caller": "13800138000"},
            media={"media.pcap": pcap},
            timeout=120,
            recv_timeout=110,
        )

        def spooled() -> int:
            return sum(p.stat().st_size for p in spool_dir.glob("*.wav"))

        # Four seconds of the statement (beep, pause, speech) are on disk: kill -9.
        assert wait_until(lambda: spooled() >= WAV_HEADER + 4 * 16000, 90), (
            f"nothing spooled: {serve.log.read_text(errors='replace')}"
        )
        db = Database(db_url)
        try:
            (call,) = rows(db)["calls"]
            # The periodic open-call check sees the node alive while its process runs,
            # and gone the moment it is killed (ivr.runtime.presence).
            with dead_node(db, call.node, tmp_path / "var") as dead:
                assert not dead
            serve.kill()
            sipp.stop()
            with dead_node(db, call.node, tmp_path / "var") as dead:
                assert dead
            (call,) = rows(db)["calls"]
            assert call.status == "in-progress" and rows(db)["recordings"] == []

            serve.start()

            def reconciled() -> bool:
                r = rows(db)
                return bool(r["tickets"]) and all(t is not None for t in r["transcripts"])

            assert wait_until(reconciled, 120), serve.log.read_text(errors="replace")
            r = rows(db)
            (call,) = r["calls"]
            assert call.status == "interrupted" and call.ended_at is not None
            assert call.duration_s is not None and call.duration_s > 4
            (rec,) = r["recordings"]
            assert rec.duration_s is not None and rec.duration_s >= 3.5
            assert rec.path and Path(rec.path).exists()
            (ticket,) = r["tickets"]
            assert ticket.category == "投诉" and ticket.category_source == "menu"
            assert ticket.intake and ticket.intake.get("interrupted") is True
            assert ticket.transcription == "done"
            assert list(spool_dir.glob("*.wav")) == []

            # The caller's BYE for the dialog the dead process held: 481 (RFC 3261), and
            # nothing of the call is touched by it.
            def bye(local: tuple[str, int]) -> bytes:
                return build_request(
                    "BYE",
                    f"sip:12345@{serve.sip[0]}:{serve.sip[1]}",
                    local=local,
                    call_id=call.provider_call_id.partition("@")[0],
                )

            assert send_raw(serve.sip, bye, name="late-bye").statuses == [481]
            assert rows(db)["calls"][0].status == "interrupted"
            text = serve.metrics()
            assert 'ivr_calls_interrupted_total{provider="sip"} 1.0' in text
            assert "ivr_calls_open{" not in text  # the open-calls gauge is back to none
        finally:
            db.dispose()
    finally:
        if sipp is not None:
            sipp.stop()
        if serve.proc is not None and serve.proc.poll() is None:
            serve.kill(signal.SIGTERM)
