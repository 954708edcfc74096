"""What a viewer may see of a citizen's phone numbers: the one masking step every door
(console pages, the live queue, exports, the API, the CLI) applies to data on its way out.

Supervisors and admins see full numbers; operators see every number masked wherever
it occurs: the caller field, the numbers intake extracted, and any number written or
spoken inside free text (statement, transcript words, summaries, notes, history).
Logs mask everything for everyone (`ivr.phones.MaskingFilter`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from ivr.phones import mask_number, mask_text

T = TypeVar("T")
_BARE_NUMBER_MIN = 7


def _mask_str(text: str) -> str:
    # A field holding nothing but a number (the caller, an extracted number) is masked
    # even when it is too short or odd to be found inside text (087112345).
    if len(text) >= _BARE_NUMBER_MIN and text.isdigit():
        return mask_number(text)
    return mask_text(text)


def redact(value: T, sees_phone: bool) -> T:
    """`value` (text, or JSON-like dicts and lists of it) as this viewer may see it."""
    if sees_phone:
        return value
    return _redact(value)  # type: ignore[no-any-return]


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return _mask_str(value)
    if isinstance(value, dict):
        return {k: _redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact(v) for v in value)
    return value


def redact_words(words: Sequence[str], sees_phone: bool) -> list[str]:
    """Recognized words (a number is often said over several of them: 幺三九 一二三四 ...)
    as this viewer may see them: masked on the joined text, cut back into the words."""
    if sees_phone:
        return list(words)
    joined = " ".join(words)  # a space may join digits of one number, as a caller pauses
    masked = mask_text(joined)
    if len(masked) != len(joined):  # a +86 prefix was dropped: hide every digit instead
        return ["".join("*" if ch.isdigit() else ch for ch in _mask_str(w)) for w in words]
    out, at = [], 0
    for w in words:
        out.append(masked[at : at + len(w)])
        at += len(w) + 1
    return out
