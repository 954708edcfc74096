"""The embedded campaign scheduler: `ivr serve` runs campaigns that are set to running."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from sqlalchemy import select

from ivr.lease import Lease
from ivr.store.models import Campaign
from ivr.surveys.campaigns import CampaignError
from ivr.surveys.dialer import Dialer
from ivr.surveys.dispatch import CampaignDispatcher
from ivr.surveys.runner import CampaignRunner

if TYPE_CHECKING:
    from ivr.app import Hotline
    from ivr.twilio.media import Jobs

log = logging.getLogger(__name__)


class CampaignScheduler:
    def __init__(self, app: Hotline, dialer: Dialer, interval_s: float = 30.0) -> None:
        self.app, self.dialer, self.interval_s = app, dialer, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="campaigns", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

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

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.tick()


class DispatchScheduler:
    """The campaign scheduler of `ivr serve --role scheduler|all`.

    Runs only while it holds the scheduler lease (one active scheduler among all
    processes and machines); the others wait and take over when it dies. Each
    tick queues due survey attempts as dial jobs (`ivr.surveys.dispatch`).
    """

    def __init__(self, app: Hotline, jobs: Jobs, lease: Lease, interval_s: float) -> None:
        self.app, self.lease, self.interval_s = app, lease, interval_s
        self.dispatcher = CampaignDispatcher(app, jobs)
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
        return self.dispatcher.tick()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("scheduler tick failed; trying again")
            self._stop.wait(self.interval_s)
