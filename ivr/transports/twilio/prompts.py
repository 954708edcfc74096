"""Prompt audio for TwiML <Play>: the same 8 kHz clips the SIP phone plays.

A Say verb becomes one URL naming its clips in order (the pause clip is "p");
the web app serves that URL as one WAV, concatenated like the SIP phone plays it,
so a read-back of a ticket number has no gaps between the digits.
"""

from __future__ import annotations

import io
import logging
import re
import wave
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from ivr.flow import Flow, Say
from ivr.prompts import (
    CHANNELS,
    SAMPLE_RATE,
    SAMPLE_WIDTH,
    PromptAudioError,
    PromptLibrary,
    read_pcm,
)

log = logging.getLogger(__name__)

PAUSE_ID = "p"
_CLIP_ID = re.compile(r"^(?:[0-9a-f]{16}|p)$")
MAX_CLIPS = 200


class BadClipList(ValueError):
    pass


class PromptAudio:
    def __init__(self, library: PromptLibrary) -> None:
        self.library = library
        self._wav = lru_cache(maxsize=512)(self._build)

    def clip_ids(self, flow: Flow, say: Say, variables: Mapping[str, Any]) -> list[str]:
        template = flow.prompts.get(say.prompt)
        paths = (
            self.library.clips_for(template, variables)
            if template is not None
            else self.library.clips_for_text(say.text)
        )
        return [PAUSE_ID if p == self.library.pause else p.stem for p in paths]

    def parse(self, joined: str) -> tuple[str, ...]:
        """'ab12...-p-cd34...' from a URL -> clip ids; BadClipList if it is not one."""
        ids = tuple(joined.split("-"))
        if not ids or len(ids) > MAX_CLIPS or not all(_CLIP_ID.match(i) for i in ids):
            raise BadClipList(f"not a list of prompt clips: {joined[:80]!r}")
        return ids

    def path(self, clip_id: str) -> Path:
        return self.library.pause if clip_id == PAUSE_ID else self.library.dir / f"{clip_id}.wav"

    def wav(self, ids: Sequence[str]) -> bytes:
        """The clips as one 8 kHz mono 16-bit WAV; FileNotFoundError if a clip is missing."""
        return self._wav(tuple(ids))

    def _build(self, ids: tuple[str, ...]) -> bytes:
        pcm = bytearray()
        for clip_id in ids:
            path = self.path(clip_id)
            if not path.is_file():
                raise FileNotFoundError(f"no prompt clip {clip_id}")
            try:
                pcm += _clip(path)
            except PromptAudioError as exc:
                log.warning("prompt clip skipped: %s", exc)
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(CHANNELS)
            w.setsampwidth(SAMPLE_WIDTH)
            w.setframerate(SAMPLE_RATE)
            w.writeframes(bytes(pcm))
        return buf.getvalue()


@lru_cache(maxsize=1024)
def _clip(path: Path) -> bytes:
    return read_pcm(path)
