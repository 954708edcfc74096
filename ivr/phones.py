"""Phone numbers: canonical form, hotline short codes, and masking for logs and screens."""

from __future__ import annotations

import logging
import re

_URI_USER = re.compile(r"^(?:tel:|sips?:)?([^@;>]+)")
_SHORT_CODE = re.compile(r"^(?:1\d{4}|96\d{3})$")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")


class PhoneNumberError(ValueError):
    pass


def _user_part(raw: str) -> str:
    s = raw.strip().strip("<>").strip()
    m = _URI_USER.match(s)
    return m.group(1) if m else s


def normalize_number(raw: str) -> str:
    """Canonical digits: no +86/0086, mobiles as 11 digits, landlines with their 0 area code.

    >>> normalize_number("+86 138-0013-8000")
    '13800138000'
    >>> normalize_number("sip:0871-12345@10.0.0.1")
    '087112345'
    """
    user = _user_part(raw)
    digits = re.sub(r"[\s\-().]", "", user)
    if digits.startswith("+"):
        digits = digits[1:]
        if digits.startswith("86"):
            digits = digits[2:]
            if not digits.startswith("1"):
                digits = "0" + digits  # +86 871 ... is a landline with area code 0871
    elif digits.startswith("0086"):
        digits = digits[4:]
        if not digits.startswith("1"):
            digits = "0" + digits
    elif digits.startswith("86") and _MOBILE.match(digits[2:]):
        digits = digits[2:]
    if not digits.isdigit():
        raise PhoneNumberError(f"not a phone number: {mask_text(raw)!r}")
    return digits


def area_code_length(number: str) -> int:
    """Length of the leading area code (with its 0) of a landline, 0 if none."""
    if not number.startswith("0") or len(number) < 4:
        return 0
    return 3 if number[1] in "12" else 4


def service_number(raw: str) -> str:
    """The number as a hotline short code when it is one (0871-12345 -> 12345)."""
    number = normalize_number(raw)
    n = area_code_length(number)
    if n and _SHORT_CODE.match(number[n:]):
        return number[n:]
    return number


def mask_number(number: str | None) -> str:
    """138****8000; short service numbers are not personal and stay readable."""
    if not number:
        return ""
    if len(number) <= 6:
        return number
    if len(number) <= 8:
        return number[:2] + "*" * (len(number) - 4) + number[-2:]
    return number[:3] + "*" * (len(number) - 7) + number[-4:]


# A digit as written or spoken: ASCII, full-width, and the Chinese digits a caller
# reads a number with (幺 for 1, 两 for 2, 洞 for 0, 拐 for 7 in radio style).
_SPOKEN = "零〇洞幺一二两三四五六七拐八九"
_SPOKEN_VALUE = dict(zip(_SPOKEN, "000112234567789", strict=True))
_UNIT = f"[0-9０-９{_SPOKEN}]"
# A run of digits, single spaces or hyphens allowed between them; never part of a
# word, an identifier or a hyphenated ticket number.
_RUN = re.compile(rf"(?<![A-Za-z0-9_\-+])\+?{_UNIT}(?:[ \-]?{_UNIT})*(?![A-Za-z0-9_\-])")
_MOBILE_RUN = re.compile(r"^(?:86)?1[3-9]\d{9}$")
_LANDLINE_RUN = re.compile(r"^0\d{9,11}$")
_LOCAL_RUN = re.compile(r"^\d{7,8}$")


def _digit(ch: str) -> str:
    if ch in _SPOKEN_VALUE:
        return _SPOKEN_VALUE[ch]
    if "０" <= ch <= "９":
        return chr(ord(ch) - ord("０") + ord("0"))
    return ch


def _is_number(run: str, digits: str) -> bool:
    if not run.isascii():  # spoken or full-width: no date or amount is said like this
        return 7 <= len(digits) <= 13
    if _MOBILE_RUN.match(digits) or _LANDLINE_RUN.match(digits):
        return True
    # 7-8 bare digits are a local number; with separators they are a date (2026-11-22).
    return bool(_LOCAL_RUN.match(run))


def _mask_run(m: re.Match[str]) -> str:
    run = m.group()
    units = [i for i, ch in enumerate(run) if ch not in " -+"]
    digits = "".join(_digit(run[i]) for i in units)
    if not _is_number(run, digits):
        return run
    if run.isascii() and digits.startswith("86") and _MOBILE_RUN.match(digits):
        return mask_number(digits[2:])  # +86 139... reads as the mobile it is
    shown = mask_number(digits)
    out = list(run)
    for i, ch in zip(units, shown, strict=True):
        if ch == "*":
            out[i] = "*"
    return "".join(out)


def mask_text(text: str) -> str:
    """Every phone number in free text masked, written (13912345678, 139 1234 5678,
    0871-65123456, +86...) or spoken (幺三九一二三四五六七八): the one text masker
    that logs, screens, exports and the API share (see `ivr.privacy`)."""
    return _RUN.sub(_mask_run, text)


class MaskingFilter(logging.Filter):
    """Log filter that masks phone numbers in the rendered message."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        masked = mask_text(msg)
        if masked != msg:
            record.msg, record.args = masked, None
        return True
