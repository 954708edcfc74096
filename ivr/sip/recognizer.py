"""A call's streaming recognizer on its own worker thread.

RTP arrives every 20 ms on the receiver thread; decoding there would delay the
next packets, so audio is queued and a worker feeds Vosk. Only that worker ever
touches the Vosk recognizer, finishing included: finishing it from another thread
while the worker still fed it crashed the process (Vosk assertion, then SIGSEGV)
under load. A caller waits at most `wait_s` for the transcript; after that the
draft is made without it and the worker hands the late transcript on when done.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from ivr.asr.stream import EndOfSpeech, StreamingRecognizer

log = logging.getLogger(__name__)

Transcript = dict[str, object]

BATCH_BYTES = 8000 * 2 // 5  # 200 ms of 8 kHz 16-bit audio


class CallRecognizer:
    def __init__(self, recognizer: StreamingRecognizer, wait_s: float = 10.0) -> None:
        self._rec = recognizer
        self.wait_s = wait_s
        self._audio: queue.Queue[bytes | None] = queue.Queue()
        self._eos = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._result: Transcript | None = None
        self._late: Callable[[Transcript], None] | None = None
        self._finishing = False
        self._thread = threading.Thread(target=self._work, name="asr-call", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while (batch := self._next_batch()) is not None:
            try:
                if any(isinstance(e, EndOfSpeech) for e in self._rec.feed(batch)):
                    self._eos.set()
            except Exception:
                log.exception("recognizer failed on a chunk")
            if self._finishing:
                break
        result: Transcript | None = None
        try:
            result = self._rec.finish().to_dict()
        except Exception:
            log.exception("recognizer failed to finish; the statement stays pending")
        with self._lock:
            self._result = result
            late = self._late
            self._done.set()
        if late is not None and result is not None:
            self._hand_over(late, result)

    def _next_batch(self) -> bytes | None:
        """Queued audio in batches of BATCH_BYTES: the resampler and VAD are Python code
        holding the GIL, and calling them per 20 ms packet starved the RTP pacer."""
        first = self._audio.get()
        if first is None:
            return None
        parts, size = [first], len(first)
        while size < BATCH_BYTES:
            nxt = self._audio.get()
            if nxt is None:
                self._finishing = True
                break
            parts.append(nxt)
            size += len(nxt)
        return b"".join(parts)

    @staticmethod
    def _hand_over(late: Callable[[Transcript], None], result: Transcript) -> None:
        try:
            late(result)
        except Exception:
            log.exception("a late transcript could not be stored; the statement stays pending")

    def feed(self, pcm16: bytes) -> bool:
        self._audio.put(pcm16)
        return self._eos.is_set()

    def finish(self) -> Transcript | None:
        """The transcript, or None if it is not ready within `wait_s` (see `when_late`)."""
        self._audio.put(None)
        if not self._done.wait(self.wait_s):
            log.info("transcript not ready after %.0f s; the draft is made without it", self.wait_s)
            return None
        return self._result

    def when_late(self, handler: Callable[[Transcript], None]) -> None:
        """Call `handler` with the transcript once the worker has it (now, if it has)."""
        with self._lock:
            if not self._done.is_set():
                self._late = handler
                return
            result = self._result
        if result is not None:
            self._hand_over(handler, result)


def factory(
    model: object, end_of_speech_ms: int, wait_s: float = 10.0
) -> Callable[[], CallRecognizer]:
    """Recognizers for 8 kHz 16-bit telephone audio sharing one loaded model."""

    def make() -> CallRecognizer:
        rec = StreamingRecognizer(model, "s16le", 8000, end_of_speech_ms)  # type: ignore[arg-type]
        return CallRecognizer(rec, wait_s)

    return make
