"""CSV and Excel downloads of report tables (and of the ticket queue)."""

from __future__ import annotations

import csv
import io
from typing import Any

from flask import Response
from openpyxl import Workbook
from openpyxl.utils import get_column_letter

from ivr.reports.operations import Table

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# A CSV cell starting with these runs as a formula in a spreadsheet: keep it text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class PhoneText(str):
    """A phone number: text in a spreadsheet, so a landline keeps its leading 0 and a
    long number is not shown as 1.38E+10."""


def _csv_cell(value: Any) -> Any:
    if isinstance(value, PhoneText) and value.isascii() and value.isdigit():
        # Excel reads ="0571..." as the text 0571...; the value is only digits we wrote.
        return f'="{value}"'
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def download(body: bytes, mimetype: str, filename: str) -> Response:
    return Response(
        body,
        mimetype=mimetype,
        headers={"Content-Disposition": f"attachment; filename={filename}"},
    )


def csv_response(table: Table, filename: str) -> Response:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(table.header)
    w.writerows([[_csv_cell(v) for v in r] for r in table.rows])
    # The byte order mark makes Excel read the Chinese text as UTF-8.
    return download(buf.getvalue().encode("utf-8-sig"), "text/csv; charset=utf-8", filename)


def xlsx_response(tables: list[Table], filename: str) -> Response:
    wb = Workbook()
    wb.remove(wb.active)
    for table in tables:
        ws = wb.create_sheet(table.title[:31])  # Excel's limit on sheet names
        ws.append(table.header)
        for r in table.rows:
            ws.append([str(v) if isinstance(v, PhoneText) else v for v in r])
            for cell in ws[ws.max_row]:
                if isinstance(cell.value, str):
                    # A string cell, never a formula: Excel shows "=1+1" as typed, with no
                    # apostrophe, and runs nothing; digits stay text.
                    cell.data_type = "s"
        for i, name in enumerate(table.header, start=1):
            longest = max([len(str(name)), *(len(str(r[i - 1])) for r in table.rows)])
            ws.column_dimensions[get_column_letter(i)].width = min(60, 2 + longest * 1.6)
        ws.freeze_panes = "A2"
    buf = io.BytesIO()
    wb.save(buf)
    return download(buf.getvalue(), XLSX, filename)
