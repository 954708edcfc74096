"""Tables an office hands over: .csv (comma or tab) or .xlsx, first row the header."""

from __future__ import annotations

import csv
from pathlib import Path


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows as dicts keyed by the lower-cased, stripped header."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        sheet = load_workbook(path, read_only=True, data_only=True).active
        assert sheet is not None
        values = [list(row) for row in sheet.iter_rows(values_only=True)]
        if not values:
            return []
        header = [str(h or "").strip().lower() for h in values[0]]
        return [
            {h: "" if v is None else str(v) for h, v in zip(header, row, strict=False)}
            for row in values[1:]
        ]
    with path.open(encoding="utf-8-sig", newline="") as f:
        sample = f.read(4096)
        f.seek(0)
        delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
        return [
            {(k or "").strip().lower(): (v or "") for k, v in r.items()}
            for r in csv.DictReader(f, delimiter=delimiter)
        ]
