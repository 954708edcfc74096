"""Keyword rules that hear what the caller means: synonyms, negation, place words, mentions.

`Matcher` is built once per Settings from config.yaml `intake:`; every keyword
list of the file (scope rules, urgency, hints, routing overrides) goes through it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, cached_property

from ivr.config import IntakeConfig

# No punctuation in ASR output: the clause before a trigger is at most this many
# characters back, or up to the last punctuation mark.
CLAUSE_CHARS = 6
PAST_CLAUSE_CHARS = 12
_CLAUSE_END = set("。！？；，,.!?;、 ")


def _find(text: str, keyword: str, start: int = 0) -> int:
    """Next position of the keyword, skipping places where it ends inside a doubled
    character: in 正在偷偷排污 the caller said 偷偷 (secretly), not 正在偷 (stealing now)."""
    pos = text.find(keyword, start)
    while pos >= 0:
        end = pos + len(keyword)
        if text[end : end + 1] != keyword[-1] or keyword[-2:-1] == keyword[-1]:
            return pos
        pos = text.find(keyword, pos + 1)
    return -1


def _clause_before(text: str, pos: int, width: int) -> str:
    start = max(0, pos - width)
    before = text[start:pos]
    cut = max((i for i, ch in enumerate(before) if ch in _CLAUSE_END), default=-1)
    return before[cut + 1 :]


@dataclass(frozen=True)
class Matcher:
    negations: tuple[str, ...]
    place_words: tuple[str, ...]
    mention_before: tuple[str, ...]
    mention_after: tuple[str, ...]
    past_words: tuple[str, ...]
    past_after: tuple[str, ...]
    shadow_words: tuple[str, ...]
    synonyms: tuple[tuple[str, ...], ...]

    def variants(self, keyword: str) -> tuple[str, ...]:
        """The keyword and what callers also say for it (its synonym groups)."""
        known = self._variants.get(keyword)
        if known is not None:
            return known
        words = [keyword]
        for group in self.synonyms:
            if keyword in group:
                words.extend(w for w in group if w not in words)
        self._variants[keyword] = tuple(words)
        return self._variants[keyword]

    @cached_property
    def _variants(self) -> dict[str, tuple[str, ...]]:
        # Filled as keywords are first heard: every statement asks for the same ones.
        return {}

    def _meant(self, text: str, pos: int, word: str, *, emergency: bool, mentions: bool) -> bool:
        end = pos + len(word)
        clause = _clause_before(text, pos, CLAUSE_CHARS)
        if any(n in clause for n in self.negations):
            return False
        after = text[end : end + CLAUSE_CHARS]
        if any(after.startswith(p) for p in self.place_words):
            return False
        if mentions and (
            any(m in clause for m in self.mention_before)
            or any(m in after for m in self.mention_after)
        ):
            return False
        for shadow in self.shadow_words:
            at = pos - shadow.find(word)
            if word in shadow and at >= 0 and text.startswith(shadow, at):
                return False
        if emergency:
            earlier = _clause_before(text, pos, PAST_CLAUSE_CHARS)
            if any(p in earlier for p in self.past_words):
                return False
            if any(after.startswith(p) for p in self.past_after):
                return False
        return True

    def position(
        self, text: str, keyword: str, *, emergency: bool = False, mentions: bool = False
    ) -> tuple[int, str]:
        """Where the caller first means the keyword (or a synonym of it) and the word said;
        (-1, "") if nowhere."""
        best = (-1, "")
        for word in self.variants(keyword.casefold()):
            pos = _find(text, word)
            while pos >= 0:
                if self._meant(text, pos, word, emergency=emergency, mentions=mentions):
                    if best[0] < 0 or pos < best[0]:
                        best = (pos, word)
                    break
                pos = _find(text, word, pos + 1)
        return best

    def hits(
        self,
        text: str,
        keywords: Iterable[str],
        *,
        emergency: bool = False,
        mentions: bool = False,
    ) -> list[tuple[int, str]]:
        """(first position, word said) for each distinct word meant in the text that is one
        of the keywords or their synonyms, in text order. `emergency`: a past event does
        not count; `mentions`: a word only mentioned or asked about does not count."""
        folded = text.casefold()
        found: dict[str, int] = {}
        for keyword in dict.fromkeys(k for k in keywords if k):
            pos, word = self.position(folded, keyword, emergency=emergency, mentions=mentions)
            if pos >= 0 and word not in found:
                found[word] = pos
        return sorted((pos, word) for word, pos in found.items())


def matcher(config: IntakeConfig) -> Matcher:
    return _matcher(config.model_dump_json())


@cache
def _matcher(dumped: str) -> Matcher:
    config = IntakeConfig.model_validate_json(dumped)
    return Matcher(
        negations=tuple(config.negations),
        place_words=tuple(config.place_words),
        mention_before=tuple(config.mention_before),
        mention_after=tuple(config.mention_after),
        past_words=tuple(config.past_words),
        past_after=tuple(config.past_after),
        shadow_words=tuple(config.shadow_words),
        synonyms=tuple(tuple(w.casefold() for w in g) for g in config.synonyms),
    )
