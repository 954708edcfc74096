"""Which hotline line a call belongs to.

The dialed number identifies the line unless the call was forwarded from a
merged legacy number; then the original number (bottom-most SIP Diversion,
first History-Info entry, or Twilio's ForwardedFrom) decides. Unknown numbers
fall back to the main hotline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from ivr.config import LineConfig, Settings
from ivr.phones import PhoneNumberError, service_number

Source = Literal["dialed", "diversion", "history_info", "forwarded_from", "fallback"]

_URI_IN_ANGLES = re.compile(r"<([^>]*)>")
_HI_INDEX = re.compile(r";\s*index\s*=\s*([\d.]+)", re.IGNORECASE)


@dataclass(frozen=True)
class LineMatch:
    line: LineConfig
    dialed: str | None
    original: str | None
    source: Source


def split_header_values(values: str | list[str] | None) -> list[str]:
    """Header values in order, splitting comma-joined entries outside <...>."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for value in values:
        depth, start = 0, 0
        for i, ch in enumerate(value):
            if ch == "<":
                depth += 1
            elif ch == ">":
                depth = max(0, depth - 1)
            elif ch == "," and depth == 0:
                out.append(value[start:i].strip())
                start = i + 1
        out.append(value[start:].strip())
    return [v for v in out if v]


def _number_of(entry: str) -> str | None:
    m = _URI_IN_ANGLES.search(entry)
    uri = m.group(1) if m else entry.split(";")[0]
    try:
        return service_number(uri)
    except PhoneNumberError:
        return None


def original_from_diversion(values: str | list[str] | None) -> str | None:
    """The originally dialed number: the bottom-most Diversion entry (RFC 5806)."""
    numbers = [n for n in map(_number_of, split_header_values(values)) if n]
    return numbers[-1] if numbers else None


def original_from_history_info(values: str | list[str] | None) -> str | None:
    """The first target in History-Info (lowest index, RFC 7044)."""
    entries = split_header_values(values)

    def index(entry: str) -> tuple[int, ...]:
        m = _HI_INDEX.search(entry)
        return tuple(int(p) for p in m.group(1).split(".") if p) if m else (10**6,)

    numbers = [(index(e), n) for e in entries if (n := _number_of(e))]
    return min(numbers)[1] if numbers else None


def resolve_line(
    settings: Settings,
    dialed: str | None,
    *,
    diversion: str | list[str] | None = None,
    history_info: str | list[str] | None = None,
    forwarded_from: str | None = None,
) -> LineMatch:
    dialed_n: str | None = None
    if dialed:
        try:
            dialed_n = service_number(dialed)
        except PhoneNumberError:
            dialed_n = None
    candidates: list[tuple[Source, str | None]] = [
        ("diversion", original_from_diversion(diversion)),
        ("history_info", original_from_history_info(history_info)),
        ("forwarded_from", _number_of(forwarded_from) if forwarded_from else None),
    ]
    for source, number in candidates:
        if number and (line := settings.line(number)):
            return LineMatch(line, dialed_n, number, source)
    original = next((n for _, n in candidates if n), None)
    if dialed_n and (line := settings.line(dialed_n)):
        return LineMatch(line, dialed_n, original, "dialed")
    main = settings.line(settings.hotline)
    assert main is not None  # guaranteed by config validation
    return LineMatch(main, dialed_n, original, "fallback")
