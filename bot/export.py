"""Writing ledgers (台账) as XLSX workbooks: one sheet per table, a bold frozen header, readable widths."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

DATE_FORMAT = "yyyy-mm-dd hh:mm"


@dataclass
class Sheet:
    title: str
    header: list[str]
    rows: list[list[Any]]


def write_workbook(path: str | Path, sheets: Sequence[Sheet]) -> Path:
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    book.remove(book.active)
    for sheet in sheets:
        ws = book.create_sheet(sheet.title[:31])
        ws.append(sheet.header)
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for row in sheet.rows:
            ws.append(row)
        ws.freeze_panes = "A2"
        for index, title in enumerate(sheet.header, start=1):
            values = [title, *(r[index - 1] for r in sheet.rows if index - 1 < len(r))]
            width = max(len(str(v)) * (2 if any(ord(ch) > 0x2E7F for ch in str(v)) else 1)
                        for v in values if v is not None)
            ws.column_dimensions[get_column_letter(index)].width = min(max(width + 2, 8), 50)
            for cell in ws[get_column_letter(index)][1:]:
                if isinstance(cell.value, datetime):
                    cell.number_format = DATE_FORMAT
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)
    return path
