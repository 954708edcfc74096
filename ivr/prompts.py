"""Prompt audio: which texts must have a clip, and which clips speak a prompt.

Every text a caller can hear has an 8 kHz mono 16-bit WAV clip in
callflows/prompts/, named by the SHA-1 of the text (scripts/render_prompts.py
renders them offline). A prompt is spoken as a sequence of clips: the literal
parts of its template, the clips of its variables' values (a line's greeting or
name, a scope rule's advice), ticket numbers digit by digit and dates as month
and day clips, with a short pause at punctuation between clips.

Standard library and PyYAML only: the render script imports this module from
its own virtual environment, so both agree on which texts must exist.
"""

from __future__ import annotations

import hashlib
import logging
import string
import unicodedata
import wave
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from ivr.config import Settings

log = logging.getLogger(__name__)

SAMPLE_RATE = 8000
SAMPLE_WIDTH = 2
CHANNELS = 1
MANIFEST = "manifest.json"
PAUSE_MS = 300
PAUSE_FILE = f"pause_{PAUSE_MS}ms.wav"
# How ivr.spoken reads ticket digits; "，" between groups becomes a pause.
DIGIT_CLIPS = tuple("零幺二三四五六七八九")
# ivr.spoken.date_spoken says 11月24日: one clip for the month, one for the day.
MONTH_CLIPS = tuple(f"{m}月" for m in range(1, 13))
DAY_CLIPS = tuple(f"{d}日" for d in range(1, 32))
_DEFAULT_FLOWS = {"inbound": "inbound.yaml", "survey": "survey.yaml"}


class PromptAudioError(ValueError):
    """A clip that is not 8 kHz mono 16-bit PCM WAV, or cannot be read."""


def clip_name(text: str) -> str:
    """The file name of a text's clip: the first 16 hex digits of its SHA-1."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16] + ".wav"


def is_punctuation(ch: str) -> bool:
    return unicodedata.category(ch).startswith("P")


def is_audible(text: str) -> bool:
    """True when the text has something to say (not only punctuation and spaces)."""
    return any(ch.isalnum() for ch in text)


_Part = tuple[str, str | None, str | None, str | None]


def _parse(template: str) -> list[_Part]:
    """string.Formatter().parse with the literal text around {{ and }} kept in one piece."""
    parts: list[_Part] = []
    literal = ""
    for text, field, spec, conversion in string.Formatter().parse(template):
        literal += text
        if field is not None:
            parts.append((literal, field, spec, conversion))
            literal = ""
    if literal:
        parts.append((literal, None, None, None))
    return parts


def template_segments(template: str) -> list[str]:
    """The audible literal parts of a prompt template, split at its {fields}."""
    parts = (literal.strip() for literal, *_ in _parse(template))
    return [p for p in parts if is_audible(p)]


def fixed_texts() -> tuple[str, ...]:
    """Clips every installation needs whatever its flows say: digits, months, days."""
    return DIGIT_CLIPS + MONTH_CLIPS + DAY_CLIPS


def config_texts(config_data: Mapping[str, Any]) -> set[str]:
    """Texts from config.yaml that prompts speak whole: line names, greetings, advice."""
    texts: set[str] = set()
    for line in config_data.get("lines") or []:
        texts.update(str(line.get(key) or "").strip() for key in ("name", "greeting"))
    for rule in config_data.get("scope_rules") or []:
        texts.add(str(rule.get("advice") or "").strip())
    return {t for t in texts if is_audible(t)}


def flow_files(flows_dir: Path, config_data: Mapping[str, Any]) -> list[Path]:
    """The flow files config.yaml names (flows.inbound, flows.survey, ...)."""
    names = dict(_DEFAULT_FLOWS)
    for key, value in (config_data.get("flows") or {}).items():
        if key != "dir" and isinstance(value, str):
            names[key] = value
    return [flows_dir / name for name in names.values()]


def flow_templates(path: Path) -> list[str]:
    """The prompt templates of one flow file (its `prompts:` mapping)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return [str(t) for t in (data.get("prompts") or {}).values()]


def required_texts(flows_dir: Path, config_data: Mapping[str, Any]) -> set[str]:
    """Every text that must have a clip for these flows and this configuration."""
    texts = set(fixed_texts()) | config_texts(config_data)
    for path in flow_files(flows_dir, config_data):
        for template in flow_templates(path):
            texts.update(template_segments(template))
    return texts


def load_config_data(config_path: Path) -> tuple[Path, dict[str, Any]]:
    """config.yaml read with PyYAML alone: (flows dir, raw data)."""
    data = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    flows_dir = config_path.parent / str((data.get("flows") or {}).get("dir") or "callflows")
    return flows_dir, data


class PromptLibrary:
    """The clips in one prompts folder and the texts they must cover."""

    def __init__(self, prompts_dir: Path, required: Iterable[str]) -> None:
        self.dir = prompts_dir
        self.required = frozenset(required)
        # Candidate texts by first character, longest first, for decomposing a text.
        self._index: dict[str, list[str]] = {}
        for text in sorted(self.required, key=len, reverse=True):
            self._index.setdefault(text[0], []).append(text)

    @classmethod
    def from_config_file(cls, config_path: Path, prompts_dir: Path | None = None) -> PromptLibrary:
        flows_dir, data = load_config_data(config_path)
        return cls(prompts_dir or flows_dir / "prompts", required_texts(flows_dir, data))

    @classmethod
    def from_settings(cls, settings: Settings, prompts_dir: Path | None = None) -> PromptLibrary:
        flows_dir = settings.flows_path
        data = settings.model_dump(mode="json")
        return cls(prompts_dir or flows_dir / "prompts", required_texts(flows_dir, data))

    @property
    def pause(self) -> Path:
        return self.dir / PAUSE_FILE

    def path_for(self, text: str) -> Path:
        return self.dir / clip_name(text)

    def has(self, text: str) -> bool:
        return self.path_for(text).is_file()

    def missing(self) -> list[str]:
        """Required texts without a clip (and the pause file), for the start-up check."""
        out = sorted(t for t in self.required if not self.has(t))
        if not self.pause.is_file():
            out.append(PAUSE_FILE)
        return out

    def clips_for(self, template: str, variables: Mapping[str, Any]) -> list[Path]:
        """The clips that speak a prompt template with these call variables.

        Never raises: a part without a clip is logged and left out.
        """
        items: list[Path | None] = []
        try:
            parsed = _parse(template)
        except ValueError:
            log.warning("prompt template cannot be parsed: %r", template)
            return []
        for literal, field, spec, conversion in parsed:
            self._scan(literal, items)
            if field is not None:
                self._scan(_value_text(field, spec, conversion, variables), items)
        return self._tidy(items)

    def clips_for_text(self, text: str) -> list[Path]:
        """The clips that speak an already rendered text (e.g. a Say verb's text)."""
        items: list[Path | None] = []
        self._scan(text, items)
        return self._tidy(items)

    def _scan(self, text: str, items: list[Path | None]) -> None:
        """Cover `text` with known clips, longest first; None marks a pause."""
        text = text.strip()
        i, unknown = 0, ""
        while i < len(text):
            match = next(
                (t for t in self._index.get(text[i], ()) if text.startswith(t, i)),
                None,
            )
            ch = text[i]
            if match is None and (is_punctuation(ch) or ch.isspace()):
                self._unknown(unknown, text)
                unknown = ""
                if not ch.isspace():
                    items.append(None)
                i += 1
            elif match is None:
                unknown += ch
                i += 1
            else:
                self._unknown(unknown, text)
                unknown = ""
                if is_punctuation(match[0]):
                    items.append(None)
                if self.has(match):
                    items.append(self.path_for(match))
                else:
                    log.warning("prompt clip missing for %r (%s)", match, clip_name(match))
                if is_punctuation(match[-1]):
                    items.append(None)
                i += len(match)
        self._unknown(unknown, text)

    @staticmethod
    def _unknown(part: str, text: str) -> None:
        if part:
            log.warning("no prompt clip for %r in %r; it is skipped", part, text)

    def _tidy(self, items: list[Path | None]) -> list[Path]:
        """Pauses only between clips, one at a time."""
        out: list[Path] = []
        pending = False
        for item in items:
            if item is None:
                pending = bool(out)
                continue
            if pending:
                out.append(self.pause)
                pending = False
            out.append(item)
        return out


def _value_text(
    field: str, spec: str | None, conversion: str | None, values: Mapping[str, Any]
) -> str:
    """A placeholder's value as rendered text; unknown or unrenderable ones are empty."""
    try:
        value, _ = string.Formatter().get_field(field, (), values)
        if value is None:
            return ""
        if conversion:
            value = string.Formatter().convert_field(value, conversion)
        return format(value, spec or "")
    except (KeyError, IndexError, AttributeError, ValueError, TypeError):
        return ""


def read_pcm(path: Path) -> bytes:
    """The 16-bit PCM frames of an 8 kHz mono WAV clip."""
    try:
        with wave.open(str(path), "rb") as w:
            params = (w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getcomptype())
            if params != (SAMPLE_RATE, CHANNELS, SAMPLE_WIDTH, "NONE"):
                raise PromptAudioError(f"{path}: expected 8000 Hz mono 16-bit PCM, got {params}")
            return w.readframes(w.getnframes())
    except (OSError, EOFError, wave.Error) as exc:
        raise PromptAudioError(f"{path}: cannot read WAV: {exc}") from exc


def concat_pcm(paths: Iterable[Path], read: Callable[[Path], bytes] = read_pcm) -> bytes:
    """8 kHz 16-bit little-endian mono PCM of the clips in turn; bad clips are logged, skipped."""
    out = bytearray()
    for path in paths:
        try:
            out += read(path)
        except PromptAudioError as exc:
            log.warning("prompt clip skipped: %s", exc)
    return bytes(out)


def write_wav(path: Path, pcm: bytes) -> None:
    """Write 8 kHz mono 16-bit PCM as a WAV file."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(CHANNELS)
        w.setsampwidth(SAMPLE_WIDTH)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm)


def write_pause(prompts_dir: Path) -> Path:
    """The silence clip played between groups of digits and at punctuation."""
    path = prompts_dir / PAUSE_FILE
    write_wav(path, b"\x00\x00" * (SAMPLE_RATE * PAUSE_MS // 1000))
    return path
