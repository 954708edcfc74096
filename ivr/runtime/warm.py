"""A web worker made ready before its first request: lazy loads done, the heap frozen.

The first draft in a process loads jieba, the intake model and the corpus IDF
(1-2 s): done here, a caller never waits for it. Those loads leave some 400,000
long-lived objects that every full garbage collection would walk again (150-200 ms
with the GIL held, so every request in the process waits: the webhooks' p99).
`gc.freeze()` moves them out of the collector's view; what later requests allocate is
still collected. Without Redis the process's own job worker is started here too,
not by the first recording callback (its threads take a while to start).
"""

from __future__ import annotations

import gc
import logging
import time
from typing import TYPE_CHECKING

from ivr.intake.duplicates import duplicate_words
from ivr.intake.live import warm_up

if TYPE_CHECKING:
    from ivr.app import Hotline
    from ivr.jobs import DramatiqJobs

log = logging.getLogger(__name__)


def ready_worker(app: Hotline, jobs: DramatiqJobs) -> None:
    """Load what the first call's draft loads, then freeze what is loaded."""
    started = time.perf_counter()
    if jobs.embedded:
        jobs.start_worker()
    warm_up(app.settings)
    duplicate_words(app)
    gc.collect()
    gc.freeze()
    log.info(
        "worker ready in %.1f s (%d objects frozen out of garbage collection)",
        time.perf_counter() - started,
        gc.get_freeze_count(),
    )
