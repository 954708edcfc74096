"""Labelled statements: the shipped corpus (ivr/intake/corpus/statements-*.tsv) and an
office's own tables (history / cases as .csv or .xlsx)."""

from __future__ import annotations

import csv
import hashlib
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ivr.tables import read_rows

CORPUS_DIR = Path(__file__).resolve().parent / "corpus"
CORPUS_GLOB = "statements-*.tsv"
URGENCIES = ("normal", "urgent", "emergency")
TEST_SHARE = 0.15


@dataclass(frozen=True)
class Example:
    text: str
    category: str
    department: str
    # None where the source does not say (a history table without an urgent column).
    urgency: str | None = None
    scope: str | None = None
    split: str = "train"


def corpus_files(folder: Path = CORPUS_DIR) -> list[Path]:
    return sorted(folder.glob(CORPUS_GLOB))


def corpus_hash(files: Sequence[Path], salt: str = "") -> str:
    digest = hashlib.sha256(salt.encode())
    for path in files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def load_corpus(files: Iterable[Path] | None = None) -> list[Example]:
    """Every labelled line of the corpus files (all writers' parts)."""
    rows = []
    for path in corpus_files() if files is None else files:
        with path.open(encoding="utf-8", newline="") as f:
            for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
                text = (r.get("text") or "").strip()
                if not text or not r.get("category"):
                    continue
                rows.append(
                    Example(
                        text=text,
                        category=r["category"].strip(),
                        department=(r.get("department") or "").strip(),
                        urgency=(r.get("urgency") or "normal").strip(),
                        scope=(r.get("scope") or "in").strip(),
                        split=(r.get("split") or "train").strip(),
                    )
                )
    return rows


_TRUE = {"1", "true", "yes", "y", "是", "紧急", "urgent", "emergency"}


def _urgency(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    v = value.strip().lower()
    if v in URGENCIES:
        return v
    return "urgent" if v in _TRUE else "normal"


def held_out(text: str) -> bool:
    """A stable ~15 % of an office's rows is its test split (the same rows every run)."""
    return zlib.crc32(text.encode()) % 1000 < TEST_SHARE * 1000


def load_table(path: Path) -> list[Example]:
    """An office's table: columns text, category, department[, urgent][, scope][, split]."""
    rows = read_rows(path)
    if rows and not {"text", "category", "department"} <= set(rows[0]):
        raise ValueError(f"{path}: needs the columns text, category, department (optional urgent)")
    examples = []
    for r in rows:
        text = r["text"].strip()
        if not text:
            continue
        split = (r.get("split") or "").strip() or ("test" if held_out(text) else "train")
        examples.append(
            Example(
                text=text,
                category=r["category"].strip(),
                department=r["department"].strip(),
                urgency=_urgency(r.get("urgency") or r.get("urgent")),
                scope=(r.get("scope") or "").strip() or None,
                split=split,
            )
        )
    return examples
