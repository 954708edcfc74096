"""The embedded campaign scheduler: `ivr serve` runs campaigns that are set to running."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from sqlalchemy import select

from ivr.runtime.lease import Lease
from ivr.store.models import Campaign
from ivr.surveys.campaigns import CampaignError
from ivr.surveys.dialer import Dialer
from ivr.surveys.dispatch import CampaignDispatcher
from ivr.surveys.runner import CampaignRunner

if TYPE_CHECKING:
    from ivr.app import Hotline
    from ivr.jobs.protocol import Jobs

log = logging.getLogger(__name__)


class _Ticking:
    """A daemon thread calling `tick()` every `interval_s` until stopped."""

    def __init__(self, interval_s: float, name: str) -> None:
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def tick(self) -> int | None:
        raise NotImplementedError

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("%s tick failed; trying again", self._thread.name)
            self._stop.wait(self.interval_s)


class CampaignScheduler(_Ticking):
    """Single-process: runs each running campaign with a CampaignRunner (`ivr campaign run`)."""

    def __init__(self, app: Hotline, dialer: Dialer, interval_s: float = 30.0) -> None:
        super().__init__(interval_s, "campaigns")
        self.app, self.dialer = app, dialer

    def tick(self) -> int:
        """Run every running campaign until it is idle; the number of calls placed."""
        with self.app.db.session() as s:
            ids = list(s.scalars(select(Campaign.id).where(Campaign.status == "running")))
        placed = 0
        for cid in ids:
            if self._stop.is_set():
                break
            try:
                placed += CampaignRunner(self.app, self.dialer).run(cid).dialed
            except CampaignError as exc:
                log.info("campaign %d not run now: %s", cid, exc)
            except Exception:
                log.exception("campaign %d failed; retrying at the next tick", cid)
        return placed


class DispatchScheduler(_Ticking):
    """The campaign scheduler of `ivr serve --role scheduler|all`.

    Runs only while it holds the scheduler lease (one active scheduler among all
    processes and machines); the others wait and take over when it dies. Each
    tick queues due survey attempts as dial jobs (`ivr.surveys.dispatch`).
    """

    def __init__(self, app: Hotline, jobs: Jobs, lease: Lease, interval_s: float) -> None:
        super().__init__(interval_s, "scheduler")
        self.app, self.lease = app, lease
        self.dispatcher = CampaignDispatcher(app, jobs)

    def stop(self) -> None:
        super().stop()
        self.lease.release()

    def tick(self) -> int | None:
        """Jobs submitted, or None when another process is the active scheduler."""
        if not self.lease.try_acquire():
            return None
        return self.dispatcher.tick()
