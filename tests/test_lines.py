"""Which line a call belongs to, number normalization and masking."""

from __future__ import annotations

import logging

import pytest

from ivr.config import Settings
from ivr.lines import original_from_diversion, original_from_history_info, resolve_line
from ivr.phones import (
    MaskingFilter,
    PhoneNumberError,
    mask_number,
    mask_text,
    normalize_number,
    service_number,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13800138000", "13800138000"),
        ("+86 138-0013-8000", "13800138000"),
        ("008613800138000", "13800138000"),
        ("8613800138000", "13800138000"),
        ("+86 871 6555 1234", "087165551234"),
        ("sip:13800138000@10.0.0.1:5060", "13800138000"),
        ("<sip:12345@pbx.example;user=phone>", "12345"),
        ("tel:+8613800138000", "13800138000"),
        ("(0871) 6555-1234", "087165551234"),
    ],
)
def test_normalize_number(raw: str, expected: str) -> None:
    assert normalize_number(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0871-12345", "12345"),
        ("087112345", "12345"),
        ("010-12345", "12345"),
        ("+86 871 12315", "12315"),
        ("02196128", "96128"),
        ("12345", "12345"),
        ("087165551234", "087165551234"),
    ],
)
def test_service_number_strips_area_codes(raw: str, expected: str) -> None:
    assert service_number(raw) == expected


def test_not_a_number() -> None:
    with pytest.raises(PhoneNumberError):
        normalize_number("sip:anonymous@invalid")


def test_masking() -> None:
    assert mask_number("13800138000") == "138****8000"
    assert mask_number("087165551234") == "087*****1234"
    assert mask_number("12345") == "12345"
    assert mask_text("caller 13800138000 and +86 13900139000, line 12345") == (
        "caller 138****8000 and 139****9000, line 12345"
    )


def test_log_lines_never_carry_a_full_mobile(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.masking")
    logger.addFilter(MaskingFilter())
    with caplog.at_level(logging.INFO):
        logger.info("call from %s", "13800138000")
    assert "13800138000" not in caplog.text
    assert "138****8000" in caplog.text


def test_dialed_line(base_settings: Settings) -> None:
    m = resolve_line(base_settings, "sip:12315@10.0.0.1")
    assert (m.line.number, m.source) == ("12315", "dialed")
    m = resolve_line(base_settings, "0871-12369")
    assert (m.line.number, m.source) == ("12369", "dialed")


def test_unknown_number_falls_back_to_12345(base_settings: Settings) -> None:
    m = resolve_line(base_settings, "99999")
    assert (m.line.number, m.source, m.dialed) == ("12345", "fallback", "99999")
    assert resolve_line(base_settings, None).line.number == "12345"
    assert resolve_line(base_settings, "sip:anonymous@x").line.number == "12345"


def test_several_diversion_headers_bottom_most_is_original(base_settings: Settings) -> None:
    headers = [
        "<sip:12345@city.example>;reason=unconditional;counter=1",
        "<sip:12331@province.example>;reason=unconditional;counter=1",
    ]
    assert original_from_diversion(headers) == "12331"
    m = resolve_line(base_settings, "12345", diversion=headers)
    assert (m.line.number, m.source, m.original) == ("12331", "diversion", "12331")
    # The same as one comma-joined header value.
    joined = ", ".join(headers)
    assert resolve_line(base_settings, "12345", diversion=joined).line.number == "12331"


def test_history_info_first_index_is_original(base_settings: Settings) -> None:
    hi = (
        "<sip:12345@city.example;cause=302>;index=1.1, "
        "<sip:0871-12320@carrier.example?Reason=SIP%3Bcause%3D302>;index=1"
    )
    assert original_from_history_info(hi) == "12320"
    m = resolve_line(base_settings, "12345", history_info=hi)
    assert (m.line.number, m.source) == ("12320", "history_info")


def test_twilio_forwarded_from(base_settings: Settings) -> None:
    m = resolve_line(base_settings, "+8687112345", forwarded_from="+8687112333")
    assert (m.line.number, m.source) == ("12333", "forwarded_from")


def test_forwarded_from_unknown_number_uses_dialed_line(base_settings: Settings) -> None:
    m = resolve_line(base_settings, "12315", diversion="<sip:88888888@x>")
    assert (m.line.number, m.source, m.original) == ("12315", "dialed", "88888888")
