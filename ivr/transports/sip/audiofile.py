"""Read an audio file as 8 kHz 16-bit mono PCM (what the RTP sender plays)."""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

from ivr.asr.audio import decode, lin2lin, ratecv, tomono

RATE = 8000


def read_pcm8k(path: Path) -> bytes:
    try:
        with wave.open(str(path), "rb") as w:
            width, rate, channels = w.getsampwidth(), w.getframerate(), w.getnchannels()
            data = w.readframes(w.getnframes())
    except wave.Error:
        return _ffmpeg(path)  # mu-law, MP3, ...
    if width == 1:
        data = decode(data, "u8").astype("<i2").tobytes()  # unsigned 8-bit
    elif width != 2:
        data = lin2lin(data, width)
    if channels == 2:
        data = tomono(data)
    if rate != RATE:
        data = ratecv(data, rate, RATE)
    return data


def _ffmpeg(path: Path) -> bytes:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise ValueError(f"{path}: not a PCM WAV and ffmpeg is not installed")
    out = subprocess.run(
        [
            ffmpeg,
            "-nostdin",
            "-v",
            "error",
            "-i",
            str(path),
            "-f",
            "s16le",
            "-ac",
            "1",
            "-ar",
            str(RATE),
            "-",
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    if out.returncode != 0:
        raise ValueError(f"{path}: {out.stderr.decode(errors='replace').strip()}")
    return out.stdout
