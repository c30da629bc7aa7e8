"""Writing ledgers (台账) as XLSX workbooks: one sheet per table, a bold frozen header, readable widths.

Every cell goes through `ledger_cell`: a text is always written as text, never as a formula. A text
beginning with `=`, `+`, `-`, `@`, a tab or a carriage return (what a spreadsheet reads as the start of
a formula: a repair described as `=HYPERLINK(…)` would be a live link) gets a leading single quote,
as OWASP recommends against CSV/formula injection, and the cell is typed as a string. `neutralised`
is the same rule for any other export (a CSV, should one be written).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

DATE_FORMAT = "yyyy-mm-dd hh:mm"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NEUTRALISER = "'"


@dataclass
class Sheet:
    title: str
    header: list[str]
    rows: list[list[Any]]


def neutralised(value: str) -> str:
    """`value` as a spreadsheet shows it as text: prefixed with a single quote if it could start a formula."""
    return NEUTRALISER + value if value.startswith(FORMULA_STARTS) else value


def ledger_cell(ws: Any, row: int, column: int, value: Any) -> Any:
    """Write one cell: numbers, dates and blanks as they are, every text as text (`neutralised`)."""
    cell = ws.cell(row=row, column=column)
    if isinstance(value, str):
        cell.value = neutralised(value)
        cell.data_type = "s"  # openpyxl types a text starting with "=" as a formula; this one never is
    else:
        cell.value = value
        if isinstance(value, datetime):
            cell.number_format = DATE_FORMAT
    return cell


def write_workbook(path: str | Path, sheets: Sequence[Sheet]) -> Path:
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    book.remove(book.active)
    for sheet in sheets:
        ws = book.create_sheet(sheet.title[:31])
        for column, title in enumerate(sheet.header, start=1):
            ledger_cell(ws, 1, column, title).font = Font(bold=True)
        for number, row in enumerate(sheet.rows, start=2):
            for column, value in enumerate(row, start=1):
                ledger_cell(ws, number, column, value)
        ws.freeze_panes = "A2"
        for index, title in enumerate(sheet.header, start=1):
            values = [title, *(r[index - 1] for r in sheet.rows if index - 1 < len(r))]
            width = max(len(str(v)) * (2 if any(ord(ch) > 0x2E7F for ch in str(v)) else 1)
                        for v in values if v is not None)
            ws.column_dimensions[get_column_letter(index)].width = min(max(width + 2, 8), 50)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)
    return path
