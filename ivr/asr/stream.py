"""Streaming recognition of one call: audio chunks in, events and a transcript out.

Input of any supported encoding and rate is converted to 16-bit PCM at the
model's rate and handed to Vosk in fixed 100 ms blocks, so the result depends
only on the audio, never on how the transport cut it into packets (20 ms RTP
frames, Twilio media messages and 0.5 s file chunks give the same text).

End of speech is decided by an energy detector (`ivr.asr.vad`; the decoder's
own results trail the audio by ~1.5 s). `EndOfSpeech` comes at most once:

- reason "silence": speech was heard and has been followed by
  `end_of_speech_ms` of non-speech. The utterance in progress is closed first,
  so its `Final` comes just before the `EndOfSpeech`;
- reason "no_speech": no speech at all within the first `no_speech_timeout_ms`
  of audio (default 5 s: the caller said nothing; None disables it).

Recognition goes on after the event; the caller decides when to `finish()`.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np

from ivr.asr.audio import PcmConverter, check_format, to_int16
from ivr.asr.models import LoadedModel
from ivr.asr.vad import EnergyVad

log = logging.getLogger(__name__)

BLOCK_SECONDS = 0.1
DEFAULT_NO_SPEECH_TIMEOUT_MS = 5000
_DITHER_SEED = 12345


@dataclass(frozen=True)
class Word:
    word: str
    start: float  # seconds from the start of the stream
    end: float
    conf: float


@dataclass(frozen=True)
class Partial:
    """The current guess for the utterance in progress (changes as audio arrives)."""

    text: str


@dataclass(frozen=True)
class Final:
    """An utterance the decoder's endpointer has closed; its text will not change."""

    text: str
    words: tuple[Word, ...]


@dataclass(frozen=True)
class EndOfSpeech:
    reason: Literal["silence", "no_speech"]
    at: float  # seconds of audio decoded when it was detected


Event = Partial | Final | EndOfSpeech


def normalize_text(text: str) -> str:
    """The transcript as the rest of the system wants it (spaces gone, digits as digits)."""
    try:
        from ivr.asr.normalize import normalize_transcript
    except ImportError:
        return "".join(text.split())
    return normalize_transcript(text)


@dataclass(frozen=True)
class TranscriptResult:
    text: str  # Vosk's words joined by spaces
    words: list[Word]
    confidence: float  # mean word confidence; 0.0 without words
    model_name: str
    audio_seconds: float
    decode_seconds: float  # time spent converting and decoding
    rtf: float  # decode_seconds / audio_seconds

    @cached_property
    def normalized_text(self) -> str:
        return normalize_text(self.text)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "normalized_text": self.normalized_text,
            "words": [
                {"word": w.word, "start": w.start, "end": w.end, "conf": w.conf} for w in self.words
            ],
            "confidence": round(self.confidence, 4),
            "model": self.model_name,
            "audio_seconds": round(self.audio_seconds, 3),
            "decode_seconds": round(self.decode_seconds, 3),
            "rtf": round(self.rtf, 4),
        }


def _words(raw: Any) -> list[Word]:
    return [
        Word(str(w["word"]), float(w["start"]), float(w["end"]), float(w.get("conf", 1.0)))
        for w in raw or []
    ]


class StreamingRecognizer:
    """One per call. Not thread-safe itself; many may share one model across threads."""

    def __init__(
        self,
        model: LoadedModel,
        input_format: str = "s16le",
        input_rate: int = 16000,
        end_of_speech_ms: int = 1500,
        *,
        no_speech_timeout_ms: int | None = DEFAULT_NO_SPEECH_TIMEOUT_MS,
    ) -> None:
        import vosk

        check_format(input_format, input_rate)
        if end_of_speech_ms <= 0:
            raise ValueError("end_of_speech_ms must be positive")
        self.model = model
        self.input_format = input_format
        self.input_rate = input_rate
        self.end_of_speech_s = end_of_speech_ms / 1000
        self.no_speech_timeout_s = (
            None if no_speech_timeout_ms is None else no_speech_timeout_ms / 1000
        )
        self._converter = PcmConverter(input_format, input_rate, model.sample_rate)
        self._rec = vosk.KaldiRecognizer(model.vosk_model, float(model.sample_rate))
        self._rec.SetWords(True)
        self._vad = EnergyVad(model.sample_rate)
        self._block_bytes = int(model.sample_rate * BLOCK_SECONDS) * 2
        self._pending = bytearray()
        self._decoded_samples = 0
        self._segments: list[Final] = []
        self._partial = ""
        self._ended = False
        self._finished = False
        self._busy = 0.0

    @property
    def speech_started(self) -> bool:
        return self._vad.speech_started

    @property
    def ended(self) -> bool:
        """True once EndOfSpeech has been emitted."""
        return self._ended

    def feed(self, chunk: bytes) -> list[Event]:
        """Add audio in the input format; return what the decoder can say about it so far."""
        if self._finished:
            raise RuntimeError("feed() after finish()")
        started = time.perf_counter()
        self._pending += self._converter.convert(bytes(chunk))
        events: list[Event] = []
        while len(self._pending) >= self._block_bytes:
            block = bytes(self._pending[: self._block_bytes])
            del self._pending[: self._block_bytes]
            self._accept(block, events)
        self._busy += time.perf_counter() - started
        return events

    def _accept(self, block: bytes, events: list[Event]) -> None:
        samples = np.frombuffer(block, dtype="<i2")
        self._vad.process(samples)
        if self.model.dither:
            # Kaldi's own dither is off (it is not reproducible, see models._without_dither);
            # this noise depends only on the block's position in the stream.
            rng = np.random.default_rng((_DITHER_SEED, self._decoded_samples))
            noise = rng.standard_normal(len(samples)) * self.model.dither
            block = to_int16(samples + noise).astype("<i2").tobytes()
        self._decoded_samples += len(samples)
        if self._rec.AcceptWaveform(block):
            self._close_segment(self._rec.Result(), events)
        else:
            text = json.loads(self._rec.PartialResult()).get("partial", "")
            if text != self._partial:
                self._partial = text
                if text:
                    events.append(Partial(text))
        self._check_end(events)

    def _close_segment(self, result_json: str, events: list[Event] | None) -> None:
        raw = json.loads(result_json)
        text = raw.get("text", "").strip()
        self._partial = ""
        if not text:
            return
        final = Final(text, tuple(_words(raw.get("result"))))
        self._segments.append(final)
        if events is not None:
            events.append(final)

    def _check_end(self, events: list[Event]) -> None:
        if self._ended:
            return
        vad = self._vad
        if vad.speech_started and vad.trailing_silence >= self.end_of_speech_s:
            self._ended = True
            # Vosk's endpointer does not fire on digital silence: close the utterance here.
            self._close_segment(self._rec.FinalResult(), events)
            events.append(EndOfSpeech("silence", round(vad.position, 3)))
        elif (
            not vad.speech_started
            and self.no_speech_timeout_s is not None
            and vad.position >= self.no_speech_timeout_s
        ):
            self._ended = True
            events.append(EndOfSpeech("no_speech", round(vad.position, 3)))

    def finish(self) -> TranscriptResult:
        """Decode what is left and return the whole transcript. The recognizer is then done."""
        if self._finished:
            raise RuntimeError("finish() called twice")
        self._finished = True
        started = time.perf_counter()
        self._pending += self._converter.flush()
        events: list[Event] = []
        while self._pending:
            block = bytes(self._pending[: self._block_bytes])
            del self._pending[: self._block_bytes]
            self._accept(block, events)
        self._close_segment(self._rec.FinalResult(), None)
        self._busy += time.perf_counter() - started
        words = [w for seg in self._segments for w in seg.words]
        audio_seconds = self._converter.input_samples / self.input_rate
        return TranscriptResult(
            text=" ".join(seg.text for seg in self._segments),
            words=words,
            confidence=sum(w.conf for w in words) / len(words) if words else 0.0,
            model_name=self.model.name,
            audio_seconds=audio_seconds,
            decode_seconds=self._busy,
            rtf=self._busy / audio_seconds if audio_seconds else 0.0,
        )
