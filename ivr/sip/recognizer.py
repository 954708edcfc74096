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
        self._thread = threading.Thread(target=self._work, name="asr-call", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while (chunk := self._audio.get()) is not None:
            try:
                if any(isinstance(e, EndOfSpeech) for e in self._rec.feed(chunk)):
                    self._eos.set()
            except Exception:
                log.exception("recognizer failed on a chunk")
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
