"""CSV and Excel downloads of report tables (and of the ticket queue)."""

from __future__ import annotations

import io

from flask import Response
from openpyxl import Workbook
from openpyxl.utils import get_column_letter

from ivr.reports.csv_cells import PhoneText, csv_text
from ivr.reports.operations import Table

__all__ = ["PhoneText", "csv_response", "download", "xlsx_response"]

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def download(body: bytes, mimetype: str, filename: str) -> Response:
    return Response(
        body,
        mimetype=mimetype,
        headers={"Content-Disposition": f"attachment; filename={filename}"},
    )


def csv_response(table: Table, filename: str) -> Response:
    """The table as CSV, guarded against formulas (`ivr.reports.csv_cells`)."""
    body = csv_text(table.header, table.rows)
    # The byte order mark makes Excel read the Chinese text as UTF-8.
    return download(body.encode("utf-8-sig"), "text/csv; charset=utf-8", filename)


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
