"""The audio and statements the tests and benchmarks use (see README.md beside this file)."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent
SPEECH = DATA / "speech"
HOTLINE = SPEECH / "hotline"
CORPUS = SPEECH / "corpus"


class MissingData(FileNotFoundError):
    """A data file the harness expects in the repository is not there."""


def speech(*parts: str) -> Path:
    """A file under harness/data/speech/, e.g. speech("hotline", "h01.wav")."""
    path = SPEECH.joinpath(*parts)
    if not path.exists():
        raise MissingData(f"test data {path} is missing from the repository checkout")
    return path


def statement(n: int, *, phone: bool = True) -> Path:
    """Hotline statement n (1-16): the 8 kHz mu-law phone-line version by default."""
    return speech("hotline", f"h{n:02d}_8k_ulaw.wav" if phone else f"h{n:02d}.wav")
