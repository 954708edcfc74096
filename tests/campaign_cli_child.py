"""`ivr campaign run` in its own process, for the multi-process tests.

argv: settings JSON file, ISO time (the fixed clock), calls log, seconds each call
lasts, then the `ivr` arguments (e.g. `campaign run 1`).

The command runs as a user starts it (`ivr.cli.main`); only the settings and the
clock are given directly, and the transport is the recording dialer of
`tests.scaleout_child` (a line per call start and end).
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from ivr.app import Hotline
from ivr.cli import campaigns, common, main
from ivr.clock import FixedClock
from ivr.config import Settings

from .scaleout_child import RecordingDialer


def run() -> None:
    settings_file, at, calls_log, hold = sys.argv[1:5]
    settings = Settings.model_validate_json(Path(settings_file).read_text())
    clock = FixedClock(datetime.fromisoformat(at))

    def hotline(self: common.Ctx) -> Hotline:
        return Hotline.open(settings, clock)

    def dialer(app: Hotline, name: str) -> tuple[Any, Any]:
        return RecordingDialer(app, Path(calls_log), float(hold)), lambda: None

    common.Ctx.settings = property(lambda self: settings)  # type: ignore[assignment,method-assign]
    common.Ctx.hotline = hotline  # type: ignore[method-assign]
    campaigns._dialer = dialer
    main(sys.argv[5:], prog_name="ivr")


if __name__ == "__main__":
    run()
