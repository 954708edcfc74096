"""Live transcription of SIP statements in separate ASR processes.

The RTP pacer needs the GIL every 20 ms. Vosk itself releases it, but the
resampler and the speech detector around it are Python, and with them in the
SIP process the pacer's packets went out late (p99 gap 30-60 ms at 5-20 calls).
So recognizers live in worker processes (`asr.sip_processes`), each loading the
model once; a call's audio goes there in 200 ms batches through a queue and a
sender thread, so the RTP receiver never blocks on a slow worker.

A caller waits at most `wait_s` for the transcript; a later one is handed to
`when_late` (the draft is filled in then). A worker that dies loses the
transcripts of its calls in progress: their recordings stay "transcription
pending" (`ivr transcribe --pending`), and the next call starts a new worker.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from ivr.asr.models import ModelError, locate
from ivr.config import AsrConfig
from ivr.transports.sip.outbox import Outbox

log = logging.getLogger(__name__)

Transcript = dict[str, object]

RATE = 8000
BATCH_BYTES = RATE * 2 // 5  # 200 ms of 8 kHz 16-bit audio
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 5.0  # a worker not gone this long after its stop message is killed
# Audio waiting for one worker, at most (the oldest is dropped beyond it): 60 s.
MAX_QUEUED_AUDIO_BYTES = RATE * 2 * 60


class CallRecognizer:
    """One call's recognizer, running in an ASR worker process."""

    def __init__(self, worker: _Worker, key: int, wait_s: float) -> None:
        self._worker, self._key, self.wait_s = worker, key, wait_s
        self._buf = bytearray()
        self._eos = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._result: Transcript | None = None
        self._late: Callable[[Transcript], None] | None = None
        self._heard = ""

    def feed(self, pcm16: bytes) -> bool:
        """Accept 8 kHz 16-bit audio; True once the worker heard the end of speech."""
        self._buf += pcm16
        if len(self._buf) >= BATCH_BYTES:
            self._worker.post(("audio", self._key, bytes(self._buf)))
            self._buf.clear()
        return self._eos.is_set()

    def finish(self) -> Transcript | None:
        """The transcript, or None if it is not ready within `wait_s` (see `when_late`)."""
        if self._buf:
            self._worker.post(("audio", self._key, bytes(self._buf)))
            self._buf.clear()
        self._worker.post(("finish", self._key))
        if not self._done.wait(self.wait_s):
            log.info("transcript not ready after %.0f s; the draft is made without it", self.wait_s)
            return None
        return self._result

    def heard(self) -> str:
        """What the recognizer has heard so far (closed utterances and the current guess)."""
        with self._lock:
            return self._heard

    def when_late(self, handler: Callable[[Transcript], None]) -> None:
        """Call `handler` with the transcript once the worker has it (now, if it has)."""
        with self._lock:
            if not self._done.is_set():
                self._late = handler
                return
            result = self._result
        if result is not None:
            _hand_over(handler, result)

    # from the worker's reader thread
    def end_of_speech(self) -> None:
        self._eos.set()

    def hear(self, text: str) -> None:
        with self._lock:
            self._heard = text

    def deliver(self, result: Transcript | None) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self._result = result
            late = self._late
            self._done.set()
        if late is not None and result is not None:
            _hand_over(late, result)


def _hand_over(handler: Callable[[Transcript], None], result: Transcript) -> None:
    try:
        handler(result)
    except Exception:
        log.exception("a late transcript could not be stored; the statement stays pending")


class _Worker:
    """The parent's end of one ASR process: a sender thread, a reader thread."""

    def __init__(
        self,
        asr: AsrConfig,
        base_dir: Path | None,
        index: int,
        on_death: Callable[[], None] = lambda: None,
    ) -> None:
        self.index, self._on_death = index, on_death
        ctx = multiprocessing.get_context("spawn")  # no fork of a process full of threads
        self._conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=serve,
            args=(child, asr.model_dump(mode="json"), base_dir, asr.end_of_speech_ms),
            name=f"ivr-asr-{index}",
            daemon=True,
        )
        self.proc.start()
        child.close()
        self._calls: dict[int, CallRecognizer] = {}
        self._lock = threading.Lock()
        self.outbox = Outbox(MAX_QUEUED_AUDIO_BYTES, f"ivr-asr-{index}")
        self.alive = True
        self.model = ""
        self._threads = False

    def wait_ready(self) -> None:
        """Wait for the process to load its model (started in __init__, so several load at once)."""
        if not self._conn.poll(START_TIMEOUT_S):
            self.stop()
            raise ModelError(f"ASR worker did not start in {START_TIMEOUT_S:.0f} s")
        try:
            kind, detail = self._conn.recv()
        except (EOFError, OSError):
            kind, detail = "error", f"ASR worker exited with code {self.proc.exitcode}"
        if kind != "ready":
            self.stop()
            raise ModelError(str(detail))
        self.model = str(detail)
        self._threads = True
        for job, name in ((self._send, "send"), (self._read, "read")):
            threading.Thread(target=job, name=f"asr-{name}-{self.index}", daemon=True).start()

    @property
    def load(self) -> int:
        return len(self._calls)

    def open(self, key: int, wait_s: float) -> CallRecognizer:
        rec = CallRecognizer(self, key, wait_s)
        with self._lock:
            self._calls[key] = rec
        self.post(("open", key))
        return rec

    def post(self, msg: tuple[Any, ...]) -> None:
        self.outbox.put(msg)

    def _send(self) -> None:
        while (msg := self.outbox.get()) is not None:
            try:
                self._conn.send(msg)
            except (OSError, ValueError):
                self._died("cannot write to it")
                return

    def _read(self) -> None:
        while True:
            try:
                kind, key, *rest = self._conn.recv()
            except (EOFError, OSError):
                self._died("it exited")
                return
            with self._lock:
                rec = self._calls.get(key) if kind != "result" else self._calls.pop(key, None)
            if rec is None:
                continue
            if kind == "eos":
                rec.end_of_speech()
            elif kind == "heard":
                rec.hear(rest[0])
            else:
                rec.deliver(rest[0])

    def _died(self, how: str) -> None:
        if not self.alive:
            return  # stopped on purpose
        self.alive = False
        orphans = self._orphans()
        log.error(
            "ASR worker %s (pid %s) lost, %s: %d statement(s) stay transcription pending",
            self.proc.name,
            self.proc.pid,
            how,
            orphans,
        )
        self._on_death()

    def _orphans(self) -> int:
        """Calls in progress get no transcript (their statements stay pending)."""
        with self._lock:
            orphans, self._calls = list(self._calls.values()), {}
        for rec in orphans:
            rec.deliver(None)
        return len(orphans)

    def request_stop(self) -> None:
        """Ask the process to exit (after the messages already queued); see `join`."""
        if not self.alive and not self.proc.is_alive():
            return
        self.alive = False
        if self._threads:
            self.outbox.put(("stop", 0))
            self.outbox.put(None)
        else:  # no sender thread yet (the model did not load)
            with contextlib.suppress(OSError, ValueError):
                self._conn.send(("stop", 0))

    def join(self, deadline: float) -> None:
        """Wait until `deadline` (monotonic) for the process to exit, then kill it."""
        self.proc.join(max(0.0, deadline - time.monotonic()))
        if self.proc.is_alive():
            log.warning("ASR worker %s did not stop; killing it", self.proc.name)
            self.proc.kill()
            self.proc.join(5)
        # Closed only now: closing a pipe another thread is reading does not wake that read.
        with contextlib.suppress(OSError):
            self._conn.close()
        self._orphans()

    def stop(self) -> None:
        self.request_stop()
        self.join(time.monotonic() + STOP_TIMEOUT_S)


class AsrPool:
    """ASR worker processes for a SIP phone; `recognizer()` gives each call its own."""

    def __init__(
        self, asr: AsrConfig, base_dir: Path | None = None, processes: int | None = None
    ) -> None:
        self.asr, self.base_dir = asr, base_dir
        locate(asr, base_dir)  # a missing model: ModelError at once, no process started
        n = processes or asr.sip_processes or os.cpu_count() or 1
        self._keys = itertools.count(1)
        self._lock = threading.Lock()
        self._closed = False
        self.workers = [self._start(i) for i in range(n)]
        for w in self.workers:
            w.wait_ready()
        self.model = self.workers[0].model
        log.info("%d ASR worker process(es) with model %s", n, self.model)

    def _start(self, i: int) -> _Worker:
        return _Worker(self.asr, self.base_dir, i + 1, lambda: self._replace(i))

    def _replace(self, i: int) -> None:
        """A dead worker's replacement loads in the background, not in a caller's call."""

        def load() -> None:
            try:
                fresh = self._start(i)
                fresh.wait_ready()
            except ModelError:
                log.exception("ASR worker %d could not be restarted", i + 1)
                return
            with self._lock:
                dead, self.workers[i] = self.workers[i], fresh
            dead.stop()
            if self._closed:
                fresh.stop()
            else:
                log.warning("ASR worker %d restarted", i + 1)

        threading.Thread(target=load, name=f"asr-restart-{i + 1}", daemon=True).start()

    def recognizer(self) -> CallRecognizer | None:
        """A recognizer on the least busy live worker; None while every worker is down."""
        with self._lock:
            alive = [w for w in self.workers if w.alive]
            if not alive:
                return None
            worker = min(alive, key=lambda w: w.load)
            return worker.open(next(self._keys), self.asr.transcript_wait_s)

    def close(self) -> None:
        """Stop every worker: all are told at once, then joined (each has STOP_TIMEOUT_S)."""
        with self._lock:
            self._closed = True
            workers = list(self.workers)
        for w in workers:
            w.request_stop()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for w in workers:
            w.join(deadline)


def serve(conn: Connection, asr: dict[str, Any], base_dir: Path | None, eos_ms: int) -> None:
    """An ASR worker process: recognizers by call key, one model."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    from ivr.asr.models import get_model
    from ivr.asr.stream import EndOfSpeech, StreamingRecognizer

    try:
        model = get_model(AsrConfig.model_validate(asr), base_dir)
    except Exception as exc:  # reported to the parent, which logs it
        conn.send(("error", str(exc)))
        return
    conn.send(("ready", model.name))
    recs: dict[int, StreamingRecognizer] = {}
    heard_end: set[int] = set()
    # Closed utterances per call: with the current partial, what the caller said so far
    # (the call checks it for emergencies while the caller is still speaking).
    finals: dict[int, list[str]] = {}
    while True:
        try:
            kind, key, *rest = conn.recv()
        except (EOFError, OSError):
            return
        if kind == "stop":
            # Nothing here to flush or save; skip freeing the model (a second or more).
            logging.shutdown()
            os._exit(0)
        try:
            if kind == "open":
                # No "no speech" end: the call decides how long to wait for a caller who
                # has not started talking; a recognizer that gave up would drop the speech.
                recs[key] = StreamingRecognizer(
                    model, "s16le", RATE, eos_ms, no_speech_timeout_ms=None
                )
                finals[key] = []
            elif kind == "audio" and key in recs:
                events = recs[key].feed(rest[0])
                heard = _heard_so_far(finals[key], events)
                if heard is not None:
                    conn.send(("heard", key, heard))
                if key not in heard_end and any(isinstance(e, EndOfSpeech) for e in events):
                    heard_end.add(key)
                    conn.send(("eos", key))
            elif kind == "finish":
                rec = recs.pop(key, None)
                heard_end.discard(key)
                finals.pop(key, None)
                conn.send(("result", key, rec.finish().to_dict() if rec else None))
        except (EOFError, OSError):
            return
        except Exception:
            log.exception("ASR worker: call %d failed; its statement stays pending", key)
            recs.pop(key, None)
            finals.pop(key, None)
            conn.send(("result", key, None))


def _heard_so_far(finals: list[str], events: list[Any]) -> str | None:
    """The call's text so far after these recognizer events; None if they changed nothing."""
    from ivr.asr.stream import Final, Partial

    partial, changed = "", False
    for e in events:
        if isinstance(e, Final):
            finals.append(e.text)
            partial, changed = "", True
        elif isinstance(e, Partial):
            partial, changed = e.text, True
    return " ".join([*finals, partial]).strip() if changed else None
