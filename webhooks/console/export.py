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
# A cell starting with these runs as a formula in a spreadsheet: keep it text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _download(body: bytes, mimetype: str, filename: str) -> Response:
    return Response(
        body,
        mimetype=mimetype,
        headers={"Content-Disposition": f"attachment; filename={filename}"},
    )


def csv_response(table: Table, filename: str) -> Response:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(table.header)
    w.writerows([[_cell(v) for v in r] for r in table.rows])
    # The byte order mark makes Excel read the Chinese text as UTF-8.
    return _download(buf.getvalue().encode("utf-8-sig"), "text/csv; charset=utf-8", filename)


def xlsx_response(tables: list[Table], filename: str) -> Response:
    wb = Workbook()
    wb.remove(wb.active)
    for table in tables:
        ws = wb.create_sheet(table.title[:31])  # Excel's limit on sheet names
        ws.append(table.header)
        for r in table.rows:
            ws.append([_cell(v) for v in r])
        for i, name in enumerate(table.header, start=1):
            longest = max([len(str(name)), *(len(str(r[i - 1])) for r in table.rows)])
            ws.column_dimensions[get_column_letter(i)].width = min(60, 2 + longest * 1.6)
        ws.freeze_panes = "A2"
    buf = io.BytesIO()
    wb.save(buf)
    return _download(buf.getvalue(), XLSX, filename)
