"""The queue of messages to one ASR worker process, with a cap on the audio it holds.

A worker that stalls (a stopped process, a machine swapping) used to let every
call's audio pile up in an unbounded queue in the SIP process. Here control
messages (open, finish, stop) are always kept, and once more than
`max_audio_bytes` of audio waits, the oldest audio batches are dropped: the
recording on disk keeps everything, only the live transcript loses those
moments. Each drop is counted (`dropped_bytes`) and logged, once a minute.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any

from ivr.transports.sip.ratelog import RateLimitedLog

log = logging.getLogger(__name__)
_warn = RateLimitedLog(log)

Message = tuple[Any, ...] | None


def _audio_bytes(msg: Message) -> int:
    return len(msg[2]) if msg is not None and msg[0] == "audio" else 0


class Outbox:
    def __init__(self, max_audio_bytes: int, name: str) -> None:
        self.max_audio_bytes, self.name = max_audio_bytes, name
        self._items: deque[Message] = deque()
        self._cond = threading.Condition()
        self.audio_bytes = 0  # audio waiting now
        self.dropped_bytes = 0  # audio dropped since the start

    def put(self, msg: Message) -> None:
        dropped = 0
        with self._cond:
            self._items.append(msg)
            self.audio_bytes += _audio_bytes(msg)
            if self.audio_bytes > self.max_audio_bytes:
                dropped = self._drop_oldest_audio()
            self._cond.notify()
        if dropped:
            _warn.warning(
                self.name,
                "backlog",
                "ASR worker %s is behind: %d bytes of waiting audio dropped (oldest first, "
                "%d in all); the recordings keep it, live transcripts miss it",
                self.name,
                dropped,
                self.dropped_bytes,
            )

    def _drop_oldest_audio(self) -> int:
        kept: deque[Message] = deque()
        dropped = 0
        while self._items and self.audio_bytes > self.max_audio_bytes:
            msg = self._items.popleft()
            size = _audio_bytes(msg)
            if size:
                self.audio_bytes -= size
                dropped += size
            else:
                kept.append(msg)
        self._items.extendleft(reversed(kept))
        self.dropped_bytes += dropped
        return dropped

    def get(self) -> Message:
        with self._cond:
            while not self._items:
                self._cond.wait()
            msg = self._items.popleft()
            self.audio_bytes -= _audio_bytes(msg)
            return msg
