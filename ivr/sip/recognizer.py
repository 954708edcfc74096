"""A call's streaming recognizer on its own worker thread.

RTP arrives every 20 ms on the receiver thread; decoding there would delay the
next packets, so audio is queued and a worker feeds Vosk.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from ivr.asr.stream import EndOfSpeech, StreamingRecognizer

log = logging.getLogger(__name__)


class CallRecognizer:
    def __init__(self, recognizer: StreamingRecognizer) -> None:
        self._rec = recognizer
        self._audio: queue.Queue[bytes | None] = queue.Queue()
        self._eos = threading.Event()
        self._thread = threading.Thread(target=self._work, name="asr-call", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while (chunk := self._audio.get()) is not None:
            try:
                if any(isinstance(e, EndOfSpeech) for e in self._rec.feed(chunk)):
                    self._eos.set()
            except Exception:
                log.exception("recognizer failed on a chunk")

    def feed(self, pcm16: bytes) -> bool:
        self._audio.put(pcm16)
        return self._eos.is_set()

    def finish(self) -> dict[str, object]:
        self._audio.put(None)
        self._thread.join(timeout=60)
        return self._rec.finish().to_dict()


def factory(model: object, end_of_speech_ms: int) -> Callable[[], CallRecognizer]:
    """Recognizers for 8 kHz 16-bit telephone audio sharing one loaded model."""

    def make() -> CallRecognizer:
        rec = StreamingRecognizer(model, "s16le", 8000, end_of_speech_ms)  # type: ignore[arg-type]
        return CallRecognizer(rec)

    return make
