"""A simulated recognizer: characters replaced by others with the same toneless pinyin.

Speech recognition mostly errs by homophones (走失 -> 走实); the channel measures
how the intake model degrades at a given character error rate (CER).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from functools import cache

from pypinyin import Style, lazy_pinyin


def _is_han(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff"


@cache
def common_characters() -> tuple[str, ...]:
    """GB2312 level 1: the 3,755 most common characters, what a recognizer writes."""
    chars = []
    for hi in range(0xB0, 0xD8):
        for lo in range(0xA1, 0xFF):
            try:
                ch = bytes([hi, lo]).decode("gb2312")
            except UnicodeDecodeError:
                continue
            if _is_han(ch):
                chars.append(ch)
    return tuple(chars)


def _sound(ch: str) -> str:
    return lazy_pinyin(ch, style=Style.NORMAL)[0]


class HomophoneChannel:
    def __init__(self, inventory: Iterable[str] = (), seed: int = 0) -> None:
        by_sound: dict[str, set[str]] = defaultdict(set)
        for ch in {*common_characters(), *inventory}:
            if _is_han(ch):
                by_sound[_sound(ch)].add(ch)
        self._by_sound = {s: sorted(chars) for s, chars in by_sound.items() if len(chars) > 1}
        self._sounds: dict[str, str] = {}
        self._random = random.Random(seed)

    def _homophones(self, ch: str) -> list[str]:
        if not _is_han(ch):
            return []
        sound = self._sounds.get(ch)
        if sound is None:
            sound = self._sounds[ch] = _sound(ch)
        return self._by_sound.get(sound, [])

    def corrupt(self, text: str, rate: float) -> tuple[str, int]:
        """The text with about `rate` of its characters replaced; (text, substitutions).
        Characters without a homophone stay, so the others are hit more often."""
        chars = list(text)
        options = [i for i, ch in enumerate(chars) if len(self._homophones(ch)) > 1]
        if not options or rate <= 0:
            return text, 0
        p = min(1.0, rate * len(chars) / len(options))
        changed = 0
        for i in options:
            if self._random.random() < p:
                others = [c for c in self._homophones(chars[i]) if c != chars[i]]
                chars[i] = self._random.choice(others)
                changed += 1
        return "".join(chars), changed

    def corrupt_all(self, texts: Sequence[str], rate: float) -> tuple[list[str], float]:
        """Every text through the channel, and the character error rate it really had."""
        out, errors = [], 0
        for text in texts:
            noisy, changed = self.corrupt(text, rate)
            out.append(noisy)
            errors += changed
        total = sum(len(t) for t in texts)
        return out, (errors / total if total else 0.0)
