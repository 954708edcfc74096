"""How alike two statements are in what they ask for: content words, weighted by rarity.

A statement is cut into words (jieba), fillers and stop words are dropped, and
synonyms are folded into one word (没水, 断水 -> 停水). Two statements score the
IDF-weighted Jaccard of their word sets, the IDF coming from the intake corpus
(ivr/intake/corpus/statements-*.tsv): 小区 occurs in many statements and weighs
little, 停水 and 停电 are rarer and dominate, so 我们小区停水了 and 我们小区停电了
differ while 我们楼从昨天开始就没水了 and 小区停水一天了什么时候来水 agree.

What a request is about is named by topic words: the synonym groups and the
departments' routing keywords (found in the text even inside a longer word:
烧烤店 -> 烧烤). They weigh `topic_weight` times their IDF, so the problem and
its object outweigh how the caller tells it (黑漆漆, 睡不着, 走路很危险).
"""

from __future__ import annotations

import csv
import logging
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from ivr.asr.normalize import normalize_transcript
from ivr.config import DuplicateConfig

if TYPE_CHECKING:
    import jieba

__all__ = ["ContentWords", "content_words", "similarity"]

CORPUS = Path(__file__).parent / "corpus"
_NOT_CONTENT = re.compile(r"[\W_]+")
# 3, 三个, 两天, 888号: amounts and numbers, not what is asked for.
_NUMBER = re.compile(r"^[\d零一二三四五六七八九十百千万两幺几半]+[个天月年号次点层栋]?$")


@dataclass(frozen=True)
class ContentWords:
    """The word list of one duplicates configuration, with IDF over the intake corpus."""

    stop: frozenset[str]
    canonical: dict[str, str]
    topics: frozenset[str]
    keywords: tuple[str, ...]
    topic_weight: float
    tokenizer: jieba.Tokenizer
    idf: dict[str, float]
    unseen_idf: float

    def words(self, text: str) -> frozenset[str]:
        content = _NOT_CONTENT.sub("", normalize_transcript(text)).casefold()
        keywords = [k for k in self.keywords if k in content]
        found = set(keywords)
        for word in self.tokenizer.lcut(content, HMM=True):
            # 烧烤店, 月工资: the keyword inside already stands for the word.
            if word in self.stop or _NUMBER.match(word) or any(k in word for k in keywords):
                continue
            found.add(word)
        return frozenset(self.canonical.get(w, w) for w in found)

    def weight(self, word: str) -> float:
        idf = self.idf.get(word, self.unseen_idf)
        return idf * self.topic_weight if word in self.topics else idf

    def similarity(self, a: str, b: str) -> float:
        words_a, words_b = self.words(a), self.words(b)
        if not words_a or not words_b:
            text_a = _NOT_CONTENT.sub("", a)
            return 1.0 if text_a and text_a == _NOT_CONTENT.sub("", b) else 0.0
        common = sum(self.weight(w) for w in words_a & words_b)
        return common / sum(self.weight(w) for w in words_a | words_b)


def _corpus_statements() -> list[str]:
    texts: list[str] = []
    for path in sorted(CORPUS.glob("statements-*.tsv")):
        with path.open(encoding="utf-8", newline="") as f:
            texts += [row["text"] for row in csv.DictReader(f, delimiter="\t")]
    return texts


@cache
def _content_words(
    stop: frozenset[str],
    topic_groups: tuple[tuple[str, ...], ...],
    place_groups: tuple[tuple[str, ...], ...],
    keywords: tuple[str, ...],
    topic_weight: float,
) -> ContentWords:
    import jieba  # seconds to import: only when the first duplicate is looked for

    jieba.setLogLevel(logging.WARNING)
    # A tokenizer of our own: jieba's default one is global and others may use it.
    tokenizer = jieba.Tokenizer()
    canonical: dict[str, str] = {}
    for group in (*topic_groups, *place_groups):
        for word in group:
            canonical.setdefault(word, group[0])
    for word in (*canonical, *keywords):
        tokenizer.add_word(word)
    topics = frozenset(g[0] for g in topic_groups) | {canonical.get(k, k) for k in keywords}
    words = ContentWords(stop, canonical, topics, keywords, topic_weight, tokenizer, {}, 0.0)
    statements = _corpus_statements()
    df = Counter(w for text in statements for w in words.words(text))
    n = len(statements)
    idf = {w: math.log((n + 1) / (c + 1)) + 1 for w, c in df.items()}
    unseen = math.log(n + 1) + 1
    return ContentWords(stop, canonical, topics, keywords, topic_weight, tokenizer, idf, unseen)


def content_words(rules: DuplicateConfig, keywords: Iterable[str] = ()) -> ContentWords:
    """The (cached) content words of a configuration and the departments' routing keywords.

    The first call for a configuration loads jieba and reads the corpus (a second or two).
    """
    stop = frozenset(rules.stop_words) | frozenset(rules.extra_stop_words)
    topics = tuple(tuple(g) for g in [*rules.extra_synonyms, *rules.synonyms] if g)
    places = tuple(tuple(g) for g in rules.place_synonyms if g)
    found = tuple(sorted(set(keywords)))
    return _content_words(stop, topics, places, found, rules.topic_weight)


def similarity(a: str, b: str, rules: DuplicateConfig | None = None) -> float:
    """0..1: how much of the two statements' content words they share, topic and rare words
    weighing more (without the departments' keywords; `content_words` takes them)."""
    return content_words(rules or DuplicateConfig()).similarity(a, b)
