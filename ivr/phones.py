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


# Mobiles (optionally +86) and landlines with an area code, inside any text.
_IN_TEXT = re.compile(r"(?<!\d)(?:\+?86[\s-]?)?(1[3-9]\d{9}|0\d{2,3}-?\d{7,8})(?!\d)")


def mask_text(text: str) -> str:
    """Mask every phone number found in free text (a safety net for log lines)."""
    return _IN_TEXT.sub(lambda m: mask_number(m.group(1).replace("-", "")), text)


class MaskingFilter(logging.Filter):
    """Log filter that masks phone numbers in the rendered message."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        masked = mask_text(msg)
        if masked != msg:
            record.msg, record.args = masked, None
        return True
