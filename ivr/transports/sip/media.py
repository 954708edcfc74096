"""What a call sounds like: prompts out, keys and the caller's statement in.

Turns the flow's Say/Gather/Record verbs into RTP playback, RFC 2833 digit
collection (with barge-in and type-ahead) and recording that stops on the
finish key, end of speech or the maximum length.
"""

from __future__ import annotations

import logging
import math
import queue
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ivr.asr.audio import rms
from ivr.calls.recordings import StatementSpool, pcm16_wav
from ivr.flow import Digits, Event, Gather, Record, Timeout
from ivr.transports.sip.rtp import RtpStream

log = logging.getLogger(__name__)

RATE = 8000
SPEECH_RMS = 400  # about -38 dBFS: above line noise, below any voice


class Recognizer(Protocol):
    """A streaming recognizer fed 8 kHz 16-bit PCM (see ivr.asr)."""

    def feed(self, pcm16: bytes) -> bool:
        """Accept audio; True once the recognizer heard the end of speech."""
        ...

    def finish(self) -> dict[str, object] | None:
        """The transcript (text, words, confidence, model, rtf); None if not ready in time."""
        ...

    def when_late(self, handler: Callable[[dict[str, object]], None]) -> None:
        """Hand a transcript that `finish` did not wait for to `handler` once it is done."""
        ...

    def heard(self) -> str:
        """What was recognized so far, while the caller is still speaking."""
        ...


# Looks at what the recognizer heard so far; anything but None stops the recording.
Watch = Callable[[str], Any]


@dataclass
class Recorded:
    pcm16: bytes
    reason: str  # finish-key | silence | max-length | hangup | heard
    transcript: dict[str, object] | None
    heard: Any = None  # what the watch found when reason == "heard"
    speech: bool = True  # the caller's level went above line noise at some point

    @property
    def duration_s(self) -> float:
        return len(self.pcm16) / 2 / RATE

    def wav(self) -> bytes:
        return pcm16_wav(self.pcm16, RATE)


def tone(freq: float = 1000.0, ms: int = 250, level: float = 0.3) -> bytes:
    n = RATE * ms // 1000
    amp = int(32767 * level)
    return b"".join(
        struct.pack("<h", int(amp * math.sin(2 * math.pi * freq * i / RATE))) for i in range(n)
    )


BEEP = tone()


class CallMedia:
    def __init__(self, stream_factory: Callable[[CallMedia], RtpStream]) -> None:
        self.digits: queue.Queue[str] = queue.Queue()
        self.hung_up = threading.Event()
        self._sink: Callable[[bytes], None] | None = None
        self.last_loud = 0.0  # monotonic time the peer last made a sound
        self._sink_lock = threading.Lock()
        self.stream = stream_factory(self)

    # RTP callbacks (receiver thread)
    def on_digit(self, digit: str) -> None:
        log.debug("digit %s", digit)
        self.digits.put(digit)
        self.stream.stop_playback()  # barge-in: a key press interrupts the prompt

    def on_audio(self, pcm16: bytes) -> None:
        if pcm16 and rms(pcm16) > SPEECH_RMS:
            self.last_loud = time.monotonic()
        with self._sink_lock:
            sink = self._sink
        if sink is not None:
            sink(pcm16)

    def wait_quiet(self, quiet_s: float, timeout: float) -> bool:
        """Wait until the peer has spoken and then been quiet for `quiet_s` (a prompt ended)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end and not self.hung_up.is_set():
            if self.last_loud and time.monotonic() - self.last_loud >= quiet_s:
                return True
            time.sleep(0.02)
        return False

    # verbs
    def play(self, pcm16: bytes, *, interruptible: bool = False) -> bool:
        """Play to the end; False if the caller hung up (or pressed a key, when allowed)."""
        if self.hung_up.is_set():
            return False
        self.stream.play(pcm16)
        limit = len(pcm16) / 2 / RATE + 5

        def stop() -> bool:
            return self.hung_up.is_set() or (interruptible and not self.digits.empty())

        done = self.stream.wait_played(limit, stop)
        if not done:
            self.stream.stop_playback()
        return done and not self.hung_up.is_set()

    def gather(self, verb: Gather, prompt_audio: list[bytes]) -> Event | None:
        """Keys for a menu; None when the caller hung up."""
        for pcm in prompt_audio:
            if not self.digits.empty() or not self.play(pcm, interruptible=True):
                break
        keys = ""
        deadline = time.monotonic() + verb.timeout_s
        while not self.hung_up.is_set():
            try:
                key = self.digits.get(timeout=max(0.0, min(0.1, deadline - time.monotonic())))
            except queue.Empty:
                if time.monotonic() >= deadline:
                    return Digits(keys) if keys else Timeout()
                continue
            if verb.finish_on_key and key == verb.finish_on_key:
                return Digits(keys + key)
            keys += key
            if len(keys) >= verb.num_digits:
                return Digits(keys)
            deadline = time.monotonic() + verb.timeout_s
        return None

    def record(
        self,
        verb: Record,
        recognizer: Recognizer | None,
        watch: Watch | None = None,
        spool: StatementSpool | None = None,
    ) -> Recorded:
        """The caller's statement until the finish key, end of speech or max length, or
        until `watch` finds something in what the recognizer has heard so far.

        `spool` gets the audio as it comes (written here, not on the RTP thread)."""
        if verb.beep:
            self.play(BEEP)
        while not self.digits.empty():  # keys pressed during the prompt are not the finish key
            self.digits.get_nowait()
        audio = bytearray()
        state = {"speech": False, "quiet_since": time.monotonic(), "eos": False}
        lock = threading.Lock()

        def sink(pcm: bytes) -> None:
            with lock:
                audio.extend(pcm)
                loud = rms(pcm) > SPEECH_RMS if pcm else False
                now = time.monotonic()
                if loud:
                    state["speech"], state["quiet_since"] = True, now
                if recognizer is not None and recognizer.feed(pcm):
                    state["eos"] = True

        with self._sink_lock:
            self._sink = sink
        start = time.monotonic()
        no_speech_limit = max(verb.silence_end_s * 3, 8.0)
        reason = "max-length"
        checked, found = "", None
        spooled = 0

        def to_spool(final: bool = False) -> None:
            nonlocal spooled, spool
            if spool is None:
                return
            with lock:
                chunk = bytes(audio[spooled:])
            spooled += len(chunk)
            try:
                spool.append(chunk, sync=final)
            except OSError:  # the recording is still kept in memory and stored at the end
                log.exception("statement spool %s failed; not spooling", spool.path.name)
                spool = None

        try:
            while time.monotonic() - start < verb.max_length_s:
                to_spool()
                if self.hung_up.is_set():
                    reason = "hangup"
                    break
                try:
                    key = self.digits.get(timeout=0.05)
                    if verb.finish_on_key and key == verb.finish_on_key:
                        reason = "finish-key"
                        break
                except queue.Empty:
                    pass
                if watch is not None and recognizer is not None:
                    heard = recognizer.heard()
                    if heard != checked:
                        checked = heard
                        try:
                            found = watch(heard)
                        except Exception:  # a failing check must not lose the statement
                            log.exception("the live check of the statement failed; not checking")
                            watch = None
                        if found is not None:
                            reason = "heard"
                            break
                with lock:
                    quiet = time.monotonic() - float(state["quiet_since"])
                    heard = bool(state["speech"])
                    eos = bool(state["eos"])
                if verb.silence_end_s and heard and (eos or quiet >= verb.silence_end_s):
                    reason = "silence"
                    break
                if not heard and time.monotonic() - start >= no_speech_limit:
                    reason = "silence"
                    break
        finally:
            with self._sink_lock:
                self._sink = None
            to_spool(final=True)
        with lock:
            pcm = bytes(audio)
        transcript = None
        if recognizer is not None:
            try:
                transcript = recognizer.finish()
            except Exception:
                log.exception("transcription of the statement failed; it stays pending")
        return Recorded(pcm, reason, transcript, found, bool(state["speech"]))
