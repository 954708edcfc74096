"""Mandarin text normalization for recognizer output.

Vosk writes Chinese as space-separated words and numbers as spoken characters
("幺 三 八 零 ..."). Intake wants compact text with Arabic digits where a caller
spells out a phone, house or ticket number, while ordinary quantities (三个月,
两天, 一直) stay as they were said.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

__all__ = [
    "VocabularyCorrector",
    "extract_phone_numbers",
    "normalize_transcript",
    "spoken_digits_to_digits",
    "strip_spaces",
]

# CJK ideographs, radicals, CJK punctuation (incl. 〇), kana, full-width forms.
_CJK_RANGES = (
    ("\u2e80", "\u2fff"),
    ("\u3000", "\u30ff"),
    ("\u3400", "\u4dbf"),
    ("\u4e00", "\u9fff"),
    ("\uf900", "\ufaff"),
    ("\ufe30", "\ufe4f"),
    ("\uff00", "\uffef"),
    ("\U00020000", "\U0003ffff"),
)
_IDEOGRAPH = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff]")
_WHITESPACE = re.compile(r"\s+")


def _is_cjk(ch: str) -> bool:
    return any(lo <= ch <= hi for lo, hi in _CJK_RANGES)


def strip_spaces(text: str) -> str:
    """Remove the recognizer's word spaces; keep one space between two Latin words.

    >>> strip_spaces("我 要 投诉  WiFi 信号")
    '我要投诉WiFi信号'
    """
    text = text.strip()

    def join(m: re.Match[str]) -> str:
        left, right = text[m.start() - 1], text[m.end()]
        if _is_cjk(left) or _is_cjk(right) or (left.isdecimal() and right.isdecimal()):
            return ""
        return " "

    return _WHITESPACE.sub(join, text)


# -- spoken digits ---------------------------------------------------------

_DIGIT_VALUE = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "幺": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_UNIT_VALUE = {"十": 10, "百": 100, "千": 1000}
_SPOKEN = "".join(_DIGIT_VALUE)
_NUMERAL = _SPOKEN + "".join(_UNIT_VALUE)

# A number in place before an address unit (人民路一百二十三号, 三栋二单元五零一室).
# 号人/号召/号称 and 楼盘/楼市 are words, not units.
_ADDRESS_NUMBER = re.compile(
    rf"[{_NUMERAL}]+(?=号楼|号院|号(?![人召称])|栋|幢|单元|室|楼(?![盘市])|层)"
)
# A run of single digits, possibly mixed with Arabic digits (幺三八零零一三八零零零).
_DIGIT_RUN = re.compile(rf"[0-9{_SPOKEN}]{{3,}}")
# "一" right after these is part of a word (同一栋楼, 每一层, 统一), not a number.
_ONE_IN_WORD_AFTER = set("同每任统唯另这那哪万单整")
# Idioms made of digits, and approximate counts (三四五个人) are not numbers to spell out.
_DIGIT_IDIOMS = {"三三两两", "七七八八"}
_MEASURE_WORD = re.compile(r"[个天次年月岁人只家位名辆块元周回遍件条张]|分钟|小时")


def _digits(s: str) -> str:
    return "".join(str(_DIGIT_VALUE[c]) if c in _DIGIT_VALUE else c for c in s)


def _place_value(s: str) -> int | None:
    """Value of a numeral with 十/百/千 (一百零五, 十二, 两千三), None if malformed."""
    total, pending, last_unit, after_zero = 0, None, 0, False
    for ch in s:
        if ch in _UNIT_VALUE:
            unit = _UNIT_VALUE[ch]
            if last_unit and unit >= last_unit:
                return None
            if pending is None:
                if unit != 10 or last_unit or after_zero:
                    return None
                pending = 1  # 十五 = 15
            total += pending * unit
            pending, last_unit, after_zero = None, unit, False
        elif _DIGIT_VALUE[ch] == 0:
            if pending is not None or not last_unit or after_zero:
                return None
            after_zero = True
        else:
            if pending is not None:
                return None
            pending = _DIGIT_VALUE[ch]
    if pending is None:
        return None if after_zero else total
    if not last_unit:
        return None
    if after_zero or last_unit == 10:
        return total + pending
    return total + pending * last_unit // 10  # 一百二 = 120, 两千三 = 2300


def _numeral_value(s: str) -> str | None:
    if not any(c in _UNIT_VALUE for c in s):
        return _digits(s)
    value = _place_value(s)
    return None if value is None else str(value)


def _split_word_one(text: str, m: re.Match[str]) -> tuple[str, str]:
    """("一", rest) when the run starts with the 一 of a word (同一, 每一), else ("", run)."""
    run = m.group()
    if run.startswith("一") and m.start() > 0 and text[m.start() - 1] in _ONE_IN_WORD_AFTER:
        return "一", run[1:]
    return "", run


def _convert_address_number(text: str, m: re.Match[str]) -> str:
    kept, run = _split_word_one(text, m)
    # The longest well-formed tail is the number (一二三十号 -> 一二 + 30号).
    for i in range(len(run)):
        value = _numeral_value(run[i:])
        if value is not None:
            return kept + run[:i] + value
    return kept + run


def _convert_digit_run(text: str, m: re.Match[str]) -> str:
    kept, run = _split_word_one(text, m)
    if len(run) < 3 or not any(c in _DIGIT_VALUE for c in run) or run in _DIGIT_IDIOMS:
        return m.group()
    if len(run) == 3 and _MEASURE_WORD.match(text, m.end()):
        return m.group()
    return kept + _digits(run)


def spoken_digits_to_digits(text: str) -> str:
    """Spell out spoken numbers that identify something (phones, house and ticket numbers).

    >>> spoken_digits_to_digits("人民路一百二十三号，电话幺三八零零一三八零零零")
    '人民路123号，电话13800138000'
    >>> spoken_digits_to_digits("拖欠了三个月，一直没有人管")
    '拖欠了三个月，一直没有人管'
    """
    text = _ADDRESS_NUMBER.sub(lambda m: _convert_address_number(text, m), text)
    return _DIGIT_RUN.sub(lambda m: _convert_digit_run(text, m), text)


def normalize_transcript(text: str) -> str:
    """Recognizer output as intake reads it: no word spaces, identifying numbers as digits."""
    return spoken_digits_to_digits(strip_spaces(text))


# -- vocabulary correction -------------------------------------------------


@lru_cache(maxsize=8192)
def _readings(ch: str) -> frozenset[str]:
    """Toneless pinyin readings of one character (all heteronyms); empty for non-Chinese."""
    if not _IDEOGRAPH.fullmatch(ch):
        return frozenset()
    # Imported when first needed: its phrase table takes about a second to load, which
    # every process importing the store (each CLI command) would otherwise pay.
    from pypinyin import Style, pinyin

    return frozenset(pinyin(ch, style=Style.NORMAL, heteronym=True)[0])


def _edit_distance_at_most_one(a: str, b: str) -> bool:
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    # One substitution (same length) or one insertion into the shorter string.
    return a[i + 1 :] == b[i + 1 :] if len(a) == len(b) else a[i:] == b[i + 1 :]


class VocabularyCorrector:
    """Replace near misses of known words (盘笼区 -> 盘龙区) by toneless pinyin.

    A window of the text is replaced by a vocabulary word of the same length when
    their syllables match exactly, or, for words of three or more characters,
    when exactly one syllable differs by one letter (long/nong, jin/jing). That
    one-letter case never applies to the last syllable: a different last
    syllable usually means a different word (解放了 is not 解放路).
    """

    def __init__(self, words: Iterable[str]) -> None:
        from pypinyin import Style, lazy_pinyin

        unique = dict.fromkeys(w for w in (w.strip() for w in words) if w)
        self._words = [w for w in unique if all(_readings(c) for c in w)]
        self._syllables = [tuple(lazy_pinyin(w, style=Style.NORMAL)) for w in self._words]
        self._known = set(self._words)
        self._lengths = sorted({len(w) for w in self._words}, reverse=True)
        # (length, position, syllable) -> word indices, for positions 0 and 1:
        # a candidate agrees with the window on at least one of its first two syllables.
        self._index: dict[tuple[int, int, str], list[int]] = {}
        for i, syl in enumerate(self._syllables):
            for pos in range(min(2, len(syl))):
                self._index.setdefault((len(syl), pos, syl[pos]), []).append(i)

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(self._words)

    def _candidates(self, readings: list[frozenset[str]], start: int, n: int) -> set[int]:
        found: set[int] = set()
        for pos in range(min(2, n)):
            for r in readings[start + pos]:
                found.update(self._index.get((n, pos, r), ()))
        return found

    def _cost(self, readings: list[frozenset[str]], start: int, word: int) -> int | None:
        """0 for an exact pinyin match, 1 for an allowed near miss, None otherwise."""
        syllables = self._syllables[word]
        misses = [i for i, s in enumerate(syllables) if s not in readings[start + i]]
        if not misses:
            return 0
        if len(misses) > 1 or len(syllables) < 3 or misses[0] == len(syllables) - 1:
            return None
        i = misses[0]
        near = any(_edit_distance_at_most_one(syllables[i], r) for r in readings[start + i])
        return 1 if near else None

    def _best_at(self, text: str, readings: list[frozenset[str]], start: int) -> str | None:
        best: tuple[int, int, str] | None = None
        for n in self._lengths:
            window = text[start : start + n]
            if len(window) < n or not all(readings[start : start + n]):
                continue
            if window in self._known:
                return window  # already right; never "correct" one known word into another
            for word in self._candidates(readings, start, n):
                cost = self._cost(readings, start, word)
                if cost is not None and (best is None or (cost, -n) < best[:2]):
                    best = (cost, -n, self._words[word])
        return best[2] if best else None

    def correct(self, text: str) -> str:
        if not self._words or not text:
            return text
        readings = [_readings(c) for c in text]
        out: list[str] = []
        i = 0
        while i < len(text):
            word = self._best_at(text, readings, i)
            if word is None:
                out.append(text[i])
                i += 1
            else:
                out.append(word)
                i += len(word)
        return "".join(out)


# -- phone numbers ---------------------------------------------------------

_MOBILE = r"1[3-9]\d{9}"
_LANDLINE = r"0(?:10|2\d)-?\d{8}|0[3-9]\d{2}-?\d{7,8}"
_PHONE = re.compile(rf"(?<![\d-])(?:\+?86-?)?({_MOBILE}|{_LANDLINE})(?![\d-])")
# A local number without area code only counts right after a word that announces it.
_LOCAL = re.compile(r"(?:电话|号码|手机|座机|联系方式)(?:是|为|：|:)?([2-9]\d{6,7})(?!\d)")


def extract_phone_numbers(text: str, *, area_code: str | None = None) -> list[str]:
    """Mobiles and landlines in normalized text, digits only, in order, without repeats.

    With `area_code` (e.g. "0871"), a 7-8 digit local number said right after
    电话/号码/手机 is returned with the area code in front.
    """
    found: list[tuple[int, str]] = [(m.start(1), m.group(1)) for m in _PHONE.finditer(text)]
    if area_code:
        found += [(m.start(1), area_code + m.group(1)) for m in _LOCAL.finditer(text)]
    numbers = (number.replace("-", "") for _, number in sorted(found))
    return list(dict.fromkeys(numbers))


@lru_cache(maxsize=16)
def _corrector(words: tuple[str, ...]) -> VocabularyCorrector:
    return VocabularyCorrector(words)


def normalize_with_vocabulary(text: str, vocabulary: Iterable[str]) -> str:
    """normalize_transcript, with near misses of the domain vocabulary corrected first
    (before digits, so vocabulary words written with numerals still match)."""
    corrected = _corrector(tuple(vocabulary)).correct(strip_spaces(text))
    return spoken_digits_to_digits(corrected)
