"""CSV files a spreadsheet opens safely (CSV injection, OWASP), for every CSV the project
writes: the console's downloads and `ivr campaign report --csv`.

A spreadsheet runs a cell that begins with = + - @ (or a tab or carriage return
before one) as a formula. Such a cell is prefixed with an apostrophe, as OWASP
advises: the text stays text, and Excel shows the apostrophe (in a CSV it cannot be
hidden; the Excel download types each cell as a string and needs no prefix). Only
cells that would run are prefixed: a plain number (-5, +3.5) is a number, not a
formula. Phone numbers are written as ="…" so Excel keeps them as text: a landline's
leading 0, the + of +86 and all the digits stay as they are, with no apostrophe.
Cells with a comma, quote or line break are quoted by the csv module, so no text
starts a new cell. The separator is the comma (Excel in China reads it so).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")
# A phone number as written or masked: digits, a leading +, spaces, dashes and the mask's *.
_PHONE = re.compile(r"\+?[0-9][0-9 *-]*")


class PhoneText(str):
    """A phone number: text in a spreadsheet, so a landline keeps its leading 0, +86 its
    plus, and a long number is not shown as 1.38E+10."""


def csv_cell(value: Any) -> Any:
    """The value as a CSV cell a spreadsheet shows and never runs."""
    if isinstance(value, PhoneText) and _PHONE.fullmatch(value):
        # Excel reads ="0571..." as the text 0571...; the value is only what _PHONE allows.
        return f'="{value}"'
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_text(header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([csv_cell(v) for v in header])
    w.writerows([[csv_cell(v) for v in r] for r in rows])
    return buf.getvalue()
