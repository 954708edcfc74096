"""Phone numbers: canonical form, withheld callers, display, and masking for logs and screens.

The one place numbers are parsed (with Google's `phonenumbers`). Stored form:
Chinese numbers as the hotline dials them at home (mobiles 11 digits, landlines
with their 0 area code, service short codes as they are); numbers of any other
country in E.164 with their `+` (+85291234567), so their country code is never
lost nor taken for a Chinese one. Withheld caller IDs are no number at all.
"""

from __future__ import annotations

import logging
import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat

log = logging.getLogger(__name__)

HOME_REGION = "CN"
HOME_CC = 86

_URI_USER = re.compile(r"^(?:tel:|sips?:)?([^@;>]+)")
_SHORT_CODE = re.compile(r"^(?:1\d{4}|96\d{3})$")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_SEPARATORS = re.compile(r"[\s\-().]")

# What carriers, Twilio and SIP peers put where a withheld caller's number would be:
# the words, and the words spelled on a keypad as Twilio sends them in `From`
# (+266696687 ANONYMOUS, +86282452253 UNAVAILABLE, +7378742833 RESTRICTED,
# +2562533 BLOCKED, +8656696 UNKNOWN).
WITHHELD_WORDS = frozenset(
    {"anonymous", "unavailable", "restricted", "private", "blocked", "unknown", "withheld"}
)
WITHHELD_KEYPAD = frozenset({"266696687", "86282452253", "7378742833", "2562533", "8656696"})


class PhoneNumberError(ValueError):
    pass


class WithheldNumber(PhoneNumberError):
    """The caller withheld their number (or the network has none): store no number."""


def _user_part(raw: str) -> str:
    s = raw.strip().strip("<>").strip()
    m = _URI_USER.match(s)
    return m.group(1) if m else s


def is_withheld(raw: str | None) -> bool:
    """An empty caller ID or a withheld marker (ANONYMOUS, sip:anonymous@..., +266696687)."""
    if raw is None:
        return True
    user = _SEPARATORS.sub("", _user_part(raw))
    if not user:
        return True
    if user.lower().strip('"') in WITHHELD_WORDS:
        return True
    return user.startswith("+") and user[1:] in WITHHELD_KEYPAD


def normalize_number(raw: str) -> str:
    """Canonical form: Chinese numbers as dialed at home, others in E.164.

    >>> normalize_number("+86 138-0013-8000")
    '13800138000'
    >>> normalize_number("sip:0871-12345@10.0.0.1")
    '087112345'
    >>> normalize_number("+852 9123 4567")
    '+85291234567'
    """
    if is_withheld(raw):
        raise WithheldNumber(f"caller ID withheld: {mask_text(raw)!r}")
    digits = _SEPARATORS.sub("", _user_part(raw))
    if digits.startswith("00"):
        digits = "+" + digits[2:]  # the international prefix dialed from China
    if digits.startswith("+"):
        return _international(digits, raw)
    if digits.startswith("86") and _MOBILE.match(digits[2:]):
        digits = digits[2:]
    if not digits.isdigit():
        raise PhoneNumberError(f"not a phone number: {mask_text(raw)!r}")
    return digits


def _international(digits: str, raw: str) -> str:
    try:
        parsed = phonenumbers.parse(digits, None)
    except NumberParseException:
        raise PhoneNumberError(f"not a phone number: {mask_text(raw)!r}") from None
    national = phonenumbers.national_significant_number(parsed)
    if parsed.country_code == HOME_CC:
        # Mobiles keep their 11 digits; +86 871 ... is a landline with area code 0871
        # (and +86 871 12345 the 12345 hotline of that city).
        return national if national.startswith("1") else "0" + national
    if not phonenumbers.is_possible_number(parsed):
        raise PhoneNumberError(f"not a phone number: {mask_text(raw)!r}")
    return phonenumbers.format_number(parsed, PhoneNumberFormat.E164)


def caller_id(raw: str | None) -> str | None:
    """The caller's number as stored; None for a withheld or unreadable caller ID."""
    if not raw:
        return None
    try:
        return normalize_number(raw)
    except WithheldNumber:
        log.info("caller ID withheld (%s): stored as anonymous", mask_number(raw))
    except PhoneNumberError:
        log.info("caller ID %r is not a number: stored as anonymous", mask_number(raw))
    return None


def e164(number: str) -> str:
    """The number in E.164 (+8613800138000) for carriers that take only that (Twilio's To)."""
    canonical = normalize_number(number)
    if canonical.startswith("+"):
        return canonical
    try:
        parsed = phonenumbers.parse(canonical, HOME_REGION)
    except NumberParseException:
        raise PhoneNumberError(f"not a phone number: {mask_text(number)!r}") from None
    return phonenumbers.format_number(parsed, PhoneNumberFormat.E164)


def display_number(number: str | None) -> str:
    """For people: Chinese numbers in national format (138 0013 8000, 0871 6555 1234),
    foreign ones in international format (+852 9123 4567), short codes as they are."""
    if not number:
        return ""
    if not number.startswith("+") and (len(number) <= 6 or _SHORT_CODE.match(number)):
        return number
    try:
        parsed = phonenumbers.parse(number, HOME_REGION)
    except NumberParseException:
        return number
    fmt = PhoneNumberFormat.INTERNATIONAL if number.startswith("+") else PhoneNumberFormat.NATIONAL
    return phonenumbers.format_number(parsed, fmt)


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
    if run.startswith("+") and run.isascii() and not digits.startswith("86"):
        return 8 <= len(digits) <= 15  # a foreign number in E.164 (+852 9123 4567)
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
    # E.164 abroad: masked as mask_number masks it (+85*****4567), the + kept in place.
    shown = mask_number("+" + digits)[1:] if run.startswith("+") else mask_number(digits)
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
