"""CSV downloads guard formulas only where a spreadsheet would run one (OWASP CSV
injection), keep phone numbers as text without an apostrophe, and keep every cell in
its column."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from flask import Flask

from ivr.app import Hotline
from ivr.reports.csv_cells import PhoneText, csv_cell, csv_text
from ivr.store import Ticket

from .consolekit import browser, console_app, draft


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("-无", "'-无"),  # Excel would try it as a formula (#NAME?)
        ("-5", "-5"),  # a plain number is a number, not a formula
        ("+3.5", "+3.5"),
        ("噪音扰民 =1+1", "噪音扰民 =1+1"),  # not at the start: text
        ("", ""),
        (7, 7),
        (PhoneText("087165123456"), '="087165123456"'),  # the landline's 0 stays
        (PhoneText("+8613800138000"), '="+8613800138000"'),  # the + stays, no apostrophe
        (PhoneText("+852 9123 4567"), '="+852 9123 4567"'),
        (PhoneText("138****8000"), '="138****8000"'),  # masked for operators
        (PhoneText('+1"),HYPERLINK("x'), '\'+1"),HYPERLINK("x'),  # not a number: guarded
    ],
)
def test_a_cell_is_guarded_only_where_it_would_run(value: object, cell: object) -> None:
    assert csv_cell(value) == cell


def test_a_comma_or_line_break_never_starts_a_new_cell() -> None:
    text = csv_text(["摘要", "号码"], [["烧烤,=1+1", PhoneText("13800138000")], ["a\n=1", ""]])
    assert list(csv.reader(io.StringIO(text))) == [
        ["摘要", "号码"],
        ["烧烤,=1+1", '="13800138000"'],
        ["a\n=1", ""],
    ]


@pytest.fixture
def app(hotline: Hotline) -> Iterator[Flask]:
    with console_app(hotline) as flask_app:
        yield flask_app


def test_a_supervisors_export_keeps_a_plus_86_number_whole(app: Flask, hotline: Hotline) -> None:
    tid = draft(hotline)
    with hotline.db.session() as s:
        t = s.get_one(Ticket, tid)
        t.caller_number, t.summary = "+8613800138000", "-5"
    text = browser(app, "supervisor").get("/console/queue/export.csv").data.decode("utf-8-sig")
    row = next(r for r in csv.reader(io.StringIO(text)) if r and r[0].startswith("12"))
    assert '="+8613800138000"' in row and "-5" in row
    assert not any(cell.startswith("'") for cell in row)
