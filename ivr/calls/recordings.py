"""Recordings on disk (written and fsynced before the row exists) and their transcripts;
statements spooled to disk while they are spoken."""

from __future__ import annotations

import io
import os
import re
import struct
import time
import uuid
import wave
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.store.models import Call, Recording, RecordingStatus, Ticket, Transcript

if TYPE_CHECKING:
    from ivr.app import Hotline

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def _write_durably(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # A name of its own: two workers writing the same recording never share a temp file.
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def pcm16_wav(pcm16: bytes, rate: int) -> bytes:
    """16-bit mono PCM as a WAV file."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm16)
    return buf.getvalue()


WAV_HEADER = 44  # RIFF + fmt + data chunk headers of 16-bit mono PCM


def _wav_header(nbytes: int, rate: int) -> bytes:
    return (
        b"RIFF"
        + struct.pack("<I", 36 + nbytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", nbytes)
    )


def spool_dir(app: Hotline) -> Path:
    """Statements being recorded now; what is left here after a crash is recovered."""
    return app.settings.storage_path / "recordings" / "live"


def spool_path(app: Hotline, provider: str, provider_call_id: str) -> Path:
    return spool_dir(app) / _SAFE.sub("_", f"{provider}-{provider_call_id}.wav")


class StatementSpool:
    """A statement written to disk while it is recorded, so that a crash keeps what was
    said: a WAV file whose sizes are fixed up at the end, its audio appended and
    fsynced at most every `sync_s`. `read_spooled` reads one a crash left behind."""

    def __init__(self, path: Path, rate: int, sync_s: float = 0.5) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.rate, self.sync_s = path, rate, sync_s
        self._fh = open(path, "wb")  # noqa: SIM115 - open for the call's statement
        self._fh.write(_wav_header(0, rate))  # sizes 0 until the end
        self._synced = time.monotonic()
        self.bytes = 0

    def append(self, pcm16: bytes, *, sync: bool = False) -> None:
        if pcm16:
            self._fh.write(pcm16)
            self.bytes += len(pcm16)
        if sync or time.monotonic() - self._synced >= self.sync_s:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._synced = time.monotonic()

    def close(self) -> None:
        """Fix up the WAV header (the statement is complete)."""
        if self._fh.closed:
            return
        self._fh.seek(0)
        self._fh.write(_wav_header(self.bytes, self.rate))
        self._fh.close()

    def discard(self) -> None:
        """The statement is stored as a recording (or was never a call): drop the spool."""
        self.close()
        self.path.unlink(missing_ok=True)


def read_spooled(path: Path) -> tuple[bytes, int]:
    """The 16-bit PCM and rate of a spooled statement, whatever state a crash left its
    header in (the sizes may still be 0)."""
    data = path.read_bytes()
    if len(data) < WAV_HEADER or data[:4] != b"RIFF":
        raise ValueError(f"{path.name} is not a spooled statement")
    rate = int.from_bytes(data[24:28], "little")
    pcm = data[WAV_HEADER:]
    return pcm[: len(pcm) // 2 * 2], rate


def write_audio(
    app: Hotline, call: Call, provider_recording_id: str, data: bytes, audio_format: str
) -> Path:
    """The audio on disk (fsynced) under recordings/YYYY/MM/DD/; its path."""
    local = app.clock.now().astimezone(app.settings.tz)
    name = _SAFE.sub("_", f"{call.provider}-{call.id}-{provider_recording_id}.{audio_format}")
    path = app.settings.storage_path / "recordings" / local.strftime("%Y/%m/%d") / name
    _write_durably(path, data)
    return path


def find_recording(session: Session, provider: str, provider_recording_id: str) -> Recording | None:
    return session.scalars(
        select(Recording).where(
            Recording.provider == provider,
            Recording.provider_recording_id == provider_recording_id,
        )
    ).first()


def store_recording(
    app: Hotline,
    session: Session,
    call: Call,
    provider_recording_id: str,
    *,
    data: bytes | None,
    audio_format: str,
    duration_s: float | None = None,
) -> Recording:
    """Keep the audio (or, for a typed statement, only the row); idempotent per recording id."""
    existing = find_recording(session, call.provider, provider_recording_id)
    if existing is not None:
        return existing
    now = app.clock.now()
    path: Path | None = None
    if data is not None:
        path = write_audio(app, call, provider_recording_id, data, audio_format)
    rec = Recording(
        call_id=call.id,
        provider=call.provider,
        provider_recording_id=provider_recording_id,
        path=str(path) if path else None,
        audio_format=audio_format,
        duration_s=duration_s,
        status=RecordingStatus.PENDING if data is not None else RecordingStatus.STORED,
        created_at=now,
    )
    session.add(rec)
    session.flush()
    return rec


def add_transcript(
    app: Hotline,
    session: Session,
    recording: Recording,
    *,
    text: str,
    model: str,
    words: list[Any] | None = None,
    confidence: float | None = None,
    rtf: float | None = None,
) -> Transcript:
    """Attach a transcript (once per recording) and fill in the call's draft if it exists.

    The text is normalized here, in one place: spaces removed, the configured domain
    vocabulary corrected by pinyin, spoken digit strings turned into digits.
    """
    from ivr.asr.normalize import normalize_with_vocabulary
    from ivr.intake.drafts import refresh_draft

    if recording.transcript is not None:
        return recording.transcript
    tr = Transcript(
        recording_id=recording.id,
        text=text,
        normalized_text=normalize_with_vocabulary(text, app.settings.asr.vocabulary),
        words=words or [],
        confidence=confidence,
        model=model,
        rtf=rtf,
        created_at=app.clock.now(),
    )
    session.add(tr)
    recording.status = RecordingStatus.TRANSCRIBED
    recording.transcript = tr
    session.flush()
    ticket = session.scalars(
        select(Ticket).where(Ticket.call_id == recording.call_id).with_for_update()
    ).first()
    if ticket is not None:
        refresh_draft(app, session, ticket, tr)
    return tr
