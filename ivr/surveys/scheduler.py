"""The campaign scheduler of `ivr serve --role scheduler|all`: due survey calls queued as jobs,
every `lifecycle.supervision_scan_minutes` the 督办 scan (overdue, repeat complaints), and
every `jobs.open_call_check_s` the open-call check (ivr.runtime.open_calls)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ivr.runtime.lease import Lease
from ivr.services import Actor, supervision
from ivr.surveys.dispatch import CampaignDispatcher

if TYPE_CHECKING:
    from ivr.app import Hotline
    from ivr.jobs.protocol import Jobs

log = logging.getLogger(__name__)


class DispatchScheduler:
    """A daemon thread ticking every `interval_s` until stopped.

    Runs only while it holds the scheduler lease (one active scheduler among all
    processes and machines); the others wait and take over when it dies. Each
    tick queues due survey attempts as dial jobs (`ivr.surveys.dispatch`).
    """

    def __init__(
        self,
        app: Hotline,
        jobs: Jobs,
        lease: Lease,
        interval_s: float,
        open_calls: Callable[[], Any] | None = None,
    ) -> None:
        self.app, self.lease, self.interval_s = app, lease, interval_s
        self.dispatcher = CampaignDispatcher(app, jobs)
        self.scanned_at: datetime | None = None
        self.open_calls, self.open_checked_at = open_calls, None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.lease.release()

    def tick(self) -> int | None:
        """Jobs submitted, or None when another process is the active scheduler."""
        if not self.lease.try_acquire():
            return None
        try:
            self.scan_supervision()
        except Exception:  # supervision must never hold up the survey calls
            log.exception("supervision scan failed; trying again at the next scan")
        try:
            self.check_open_calls()
        except Exception:
            log.exception("open-call check failed; trying again at the next check")
        return self.dispatcher.tick()

    def check_open_calls(self) -> Any:
        """The open-call check when it is due (what it closed), else None."""
        now = self.app.clock.now()
        every = timedelta(seconds=self.app.settings.jobs.open_call_check_s)
        if self.open_calls is None or (
            self.open_checked_at is not None and now - self.open_checked_at < every
        ):
            return None
        self.open_checked_at = now
        return self.open_calls()

    def scan_supervision(self) -> dict[str, int] | None:
        """The 督办 scan when it is due (what it supervised, by reason), else None."""
        now = self.app.clock.now()
        every = timedelta(minutes=self.app.settings.lifecycle.supervision_scan_minutes)
        if self.scanned_at is not None and now - self.scanned_at < every:
            return None
        self.scanned_at = now
        counts = supervision.scan(self.app, Actor.system("supervision"))
        if any(counts.values()):
            log.info("supervision scan: %s", counts)
        return counts

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("scheduler tick failed; trying again")
            self._stop.wait(self.interval_s)
