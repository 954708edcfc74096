"""Transcribe recordings on disk (WAV of any encoding, MP3, anything ffmpeg reads).

ffmpeg decodes the file to 16-bit mono PCM at the file's own rate and writes
it as a WAV stream to a pipe; the audio is read in chunks and goes through the
same converter and recognizer as live calls, so a recording and the live
stream of the same audio give the same text and hours of audio never sit in
memory. Without ffmpeg, plain WAV files (PCM, mu-law, A-law) are still read.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from ivr.asr.audio import AudioError, WavInfo, downmix, iter_wav_data, read_wav_header
from ivr.asr.models import LoadedModel
from ivr.asr.stream import StreamingRecognizer, TranscriptResult

log = logging.getLogger(__name__)

CHUNK_SECONDS = 0.5


@contextmanager
def open_audio(path: str | Path) -> Iterator[tuple[WavInfo, Iterator[bytes]]]:
    """(format of the chunks, iterator of mono audio chunks) for a recording; AudioError if bad."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise AudioError(f"{p}: cannot read: {exc.strerror or exc}") from None
    if p.is_dir():
        raise AudioError(f"{p}: is a folder, not an audio file")
    if size == 0:
        raise AudioError(f"{p}: file is empty")
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        with _open_wav_without_ffmpeg(p) as opened:
            yield opened
        return
    with _open_with_ffmpeg(ffmpeg, p) as opened:
        yield opened


def _chunks(stream: BinaryIO, info: WavInfo) -> Iterator[bytes]:
    size = max(1, int(info.sample_rate * CHUNK_SECONDS)) * info.frame_bytes
    for data in iter_wav_data(stream, info, size):
        yield data if info.channels == 1 else downmix(data, info)


def _mono(info: WavInfo) -> WavInfo:
    fmt = info.input_format if info.channels == 1 else "s16le"
    return WavInfo(fmt, info.sample_rate, 1, None)


@contextmanager
def _open_wav_without_ffmpeg(p: Path) -> Iterator[tuple[WavInfo, Iterator[bytes]]]:
    try:
        f = p.open("rb")
    except OSError as exc:
        raise AudioError(f"{p}: cannot read: {exc.strerror or exc}") from None
    with f:
        try:
            info = read_wav_header(f)
        except AudioError as exc:
            raise AudioError(
                f"{p}: {exc} (install ffmpeg to read other formats: apt-get install ffmpeg)"
            ) from None
        yield _mono(info), _chunks(f, info)


@contextmanager
def _open_with_ffmpeg(ffmpeg: str, p: Path) -> Iterator[tuple[WavInfo, Iterator[bytes]]]:
    cmd = [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error",
        "-i", str(p), "-map", "0:a:0", "-vn", "-ac", "1", "-c:a", "pcm_s16le", "-f", "wav", "-",
    ]  # fmt: skip
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors
        )
        assert proc.stdout is not None
        try:
            try:
                info = read_wav_header(proc.stdout)
            except AudioError:
                proc.wait()
                raise AudioError(f"{p}: cannot decode audio: {_ffmpeg_reason(errors)}") from None
            yield info, _checked(_chunks(proc.stdout, info), proc, errors, p)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stdout.close()
            proc.wait()


def _checked(
    chunks: Iterator[bytes], proc: subprocess.Popen[bytes], errors: BinaryIO, p: Path
) -> Iterator[bytes]:
    yield from chunks
    if proc.wait() != 0:
        raise AudioError(f"{p}: cannot decode audio: {_ffmpeg_reason(errors)}")


def _ffmpeg_reason(errors: BinaryIO) -> str:
    errors.seek(0)
    text = errors.read().decode("utf-8", "replace")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines or "matches no streams" in text:
        return "the file has no audio stream"
    # ffmpeg prefixes its last word with the input's path; keep only the reason.
    reason = lines[-1].rsplit(": ", 1)[-1]
    return f"not a readable audio file (ffmpeg: {reason})"


def transcribe_file(
    path: str | Path,
    model: LoadedModel,
    *,
    end_of_speech_ms: int = 1500,
) -> TranscriptResult:
    """Transcribe a whole recording; AudioError (one clear line) if it cannot be decoded."""
    p = Path(path)
    with open_audio(p) as (info, chunks):
        rec = StreamingRecognizer(model, info.input_format, info.sample_rate, end_of_speech_ms)
        got_audio = False
        for chunk in chunks:
            got_audio = True
            rec.feed(chunk)
        if not got_audio:
            raise AudioError(f"{p}: contains no audio samples")
        result = rec.finish()
    log.info(
        "transcribed %s: %.1f s of audio in %.1f s (RTF %.2f)",
        p.name, result.audio_seconds, result.decode_seconds, result.rtf,
    )  # fmt: skip
    return result
