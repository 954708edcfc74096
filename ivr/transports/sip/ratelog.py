"""Warnings about what peers send, at most one per source and kind per minute.

A scanner or a broken peer can send thousands of bad datagrams a minute: one
WARNING each would flood the log and hide everything else. The first of a kind
from a source is logged at once; the rest in the window are counted, and the
next warning says how many were not logged. Memory is bounded: the least
recently seen (source, kind) pairs are forgotten first.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict


class RateLimitedLog:
    def __init__(
        self, logger: logging.Logger, window_s: float = 60.0, max_sources: int = 1024
    ) -> None:
        self.logger, self.window_s, self.max_sources = logger, window_s, max_sources
        self._seen: OrderedDict[tuple[str, str], tuple[float, int]] = OrderedDict()
        self._lock = threading.Lock()

    def warning(self, source: str, kind: str, msg: str, *args: object) -> bool:
        """Log `msg % args` unless `kind` from `source` was logged within the window.

        True when it was logged.
        """
        now = time.monotonic()
        key = (source, kind)
        with self._lock:
            last = self._seen.get(key)
            if last is not None and now - last[0] < self.window_s:
                self._seen[key] = (last[0], last[1] + 1)
                self._seen.move_to_end(key)
                return False
            self._seen[key] = (now, 0)
            self._seen.move_to_end(key)
            while len(self._seen) > self.max_sources:
                self._seen.popitem(last=False)
        suppressed = last[1] if last is not None else 0
        if suppressed:
            msg += " (and %d more like it from %s, not logged, since the last warning)"
            args = (*args, suppressed, source)
        self.logger.warning(msg, *args)
        return True
