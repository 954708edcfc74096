"""Character error rate of a model on a labelled set (`file<TAB>...<TAB>text` TSV files).

Reference and hypothesis go through the same normalisation (the transcript
normaliser, then punctuation and spaces removed), so CER counts recognition
errors, not formatting. Needs `jiwer` (a test/benchmark dependency).
"""

from __future__ import annotations

import csv
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from ivr.asr.files import transcribe_file
from ivr.asr.models import LoadedModel
from ivr.asr.stream import normalize_text


@dataclass(frozen=True)
class Scored:
    file: str
    reference: str
    hypothesis: str
    cer: float


@dataclass(frozen=True)
class Evaluation:
    items: list[Scored]
    cer: float  # over the whole set: all edits / all reference characters
    audio_seconds: float
    decode_seconds: float


def labelled_set(tsv: Path, *, phone: bool = False) -> list[tuple[Path, str]]:
    """(audio file, reference text) pairs; phone=True picks the `*_8k_ulaw.wav` twins."""
    with tsv.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    out = []
    for row in rows:
        name = row["file"]
        if phone:
            name = name.removesuffix(".wav") + "_8k_ulaw.wav"
        out.append((tsv.parent / name, row["text"]))
    return out


def cer_text(text: str) -> str:
    text = normalize_text(text)
    return "".join(
        ch for ch in text if not ch.isspace() and not unicodedata.category(ch).startswith("P")
    )


def evaluate(model: LoadedModel, items: list[tuple[Path, str]]) -> Evaluation:
    import jiwer

    scored, audio, busy = [], 0.0, 0.0
    for path, reference in items:
        result = transcribe_file(path, model)
        audio += result.audio_seconds
        busy += result.decode_seconds
        ref, hyp = cer_text(reference), cer_text(result.text)
        scored.append(Scored(path.name, ref, hyp, float(jiwer.cer(ref, hyp))))
    total = float(jiwer.cer([s.reference for s in scored], [s.hypothesis for s in scored]))
    return Evaluation(scored, total, audio, busy)
