"""One `ivr serve` role in its own process, for the multi-process tests (killed with -9).

argv: role (worker | scheduler), settings JSON file, ISO time (the fixed clock),
calls log (JSON lines the dialer appends), seconds each call lasts.

It runs the same `ivr.runtime.roles.Node` as `ivr serve --role ...`; only the dialer is
a recording stand-in for the transport: it writes a line when a call starts and
one when it ends (so a killed call shows a start without an end) and answers
"satisfied" through the survey flow's own `record_score`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ivr.app import Hotline
from ivr.clock import FixedClock
from ivr.config import Settings
from ivr.runtime.roles import Node
from ivr.runtime.serving import wait_for_signal
from ivr.surveys.dialer import DialResult
from ivr.surveys.outcomes import record_score


class RecordingDialer:
    def __init__(self, app: Hotline, log_path: Path, hold_s: float) -> None:
        self.app, self.log_path, self.hold_s = app, log_path, hold_s

    def _write(self, **entry: Any) -> None:
        line = (json.dumps({**entry, "pid": os.getpid()}) + "\n").encode()
        fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def dial(
        self,
        number_or_uri: str,
        *,
        flow: str = "survey",
        variables: Mapping[str, Any] | None = None,
        ring_timeout: float | None = None,
    ) -> DialResult:
        attempt = (variables or {}).get("attempt_id")
        self._write(event="start", phone=number_or_uri, attempt_id=attempt, t=time.time())
        time.sleep(self.hold_s)
        with self.app.db.session() as s:
            record_score(s, {**(variables or {}), "score": "satisfied"}, datetime.now(UTC))
        self._write(event="end", phone=number_or_uri, attempt_id=attempt, t=time.time())
        return DialResult("answered", 200, vars={"score": "satisfied"})


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(process)d %(name)s: %(message)s")
    role, settings_file, at, calls_log, hold = sys.argv[1:6]
    settings = Settings.model_validate_json(Path(settings_file).read_text())
    app = Hotline.open(settings, FixedClock(datetime.fromisoformat(at)))
    dialer = RecordingDialer(app, Path(calls_log), float(hold)) if role == "worker" else None
    node = Node(app, frozenset({role}), explicit=True, dialer=dialer).start()
    broker_id = getattr(node.jobs.broker, "broker_id", "")
    print(json.dumps({"ready": role, "pid": os.getpid(), "broker_id": broker_id}), flush=True)
    try:
        wait_for_signal()
    finally:
        node.stop()


if __name__ == "__main__":
    main()
