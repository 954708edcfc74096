"""Texts as they should be spoken: ticket numbers digit by digit, dates in words."""

from __future__ import annotations

from datetime import date

# On the phone 1 is read 幺 so it cannot be confused with 7 (七).
_DIGITS = dict(zip("0123456789", "零幺二三四五六七八九", strict=True))


def digits_spoken(text: str) -> str:
    """12345-20261122-00042 -> 幺二三四五，二零二六幺幺二二，零零零四二"""
    groups = [g for g in text.replace(" ", "-").split("-") if g]
    return "，".join("".join(_DIGITS.get(ch, ch) for ch in g) for g in groups)


def date_spoken(day: date) -> str:
    """2026-11-24 -> 11月24日 (TTS engines and the SIP clip player both read this)."""
    return f"{day.month}月{day.day}日"
