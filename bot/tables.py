"""Reading operators' spreadsheets (CSV or XLSX) with Chinese or English headers.

Every import (people, students, rooms, routes, menus, ...) reads through `read_table` with its
own header aliases, and reports problems by row number as they appear in the file. Dates and times
are read with `Row.date` and `Row.time`, which take Excel's date/time cells as well as typed text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zipfile import BadZipFile

from bot.text import normalize, parse_clock, parse_date

UNREADABLE_XLSX = "无法读取 Excel 文件：{reason}（{name}）"
NOT_XLSX = "文件已损坏或不是 xlsx 格式"


class TableError(ValueError):
    """The file cannot be read or has problems; `problems` lists each with its row number."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class Row:
    number: int  # as a spreadsheet shows it: the header is row 1
    values: dict[str, str] = field(default_factory=dict)
    cells: dict[str, object] = field(default_factory=dict)  # as the file holds them: Excel dates stay dates

    def get(self, key: str) -> str:
        return self.values.get(key, "")

    def date(self, key: str, today: date | None = None) -> date | None:
        """The column as a date (see `parse_date`); None when it is not one."""
        return parse_date(self.cells.get(key, ""), today)

    def time(self, key: str) -> time | None:
        """The column as a time of day (see `parse_clock`); None when it is not one."""
        return parse_clock(self.cells.get(key, ""))


def _cell(value: object) -> str:
    """A cell as text for matching and messages; date and time cells as an operator writes them."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, datetime):
        value = f"{value:%Y-%m-%d}" if value.time() == time(0) else f"{value:%Y-%m-%d %H:%M}"
    elif isinstance(value, date):
        value = f"{value:%Y-%m-%d}"
    elif isinstance(value, (time, timedelta)):
        value = f"{parse_clock(value) or value}"[:5]
    return normalize(str(value))


def _xlsx_rows(path: Path) -> list[list[object]]:
    """The first sheet's cells; a damaged file is a TableError naming the reason, not a traceback."""
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
        try:
            return [list(row) for row in book.worksheets[0].iter_rows(values_only=True)]
        finally:
            book.close()
    except Exception as exc:  # noqa: BLE001 - a damaged file fails in zipfile, XML parsing or openpyxl itself
        reason = NOT_XLSX if isinstance(exc, (BadZipFile, KeyError)) else f"{NOT_XLSX}（{exc or type(exc).__name__}）"
        raise TableError([UNREADABLE_XLSX.format(reason=reason, name=path.name)]) from exc


def _raw_rows(path: Path) -> list[list[object]]:
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return _xlsx_rows(path)
    if suffix in (".csv", ".txt"):
        data = path.read_bytes()
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                text = data.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise TableError([f"{path.name}: 不是 UTF-8 或 GBK 编码的 CSV"])
        return [list(row) for row in csv.reader(io.StringIO(text))]
    raise TableError([f"{path.name}: 只支持 .csv 和 .xlsx 文件"])


def read_table(path: str | Path, aliases: Mapping[str, tuple[str, ...]], required: tuple[str, ...]) -> list[Row]:
    """Rows keyed by canonical column names. `aliases` maps each canonical name to the headers
    that mean it (e.g. "name": ("姓名", "name")); blank rows are skipped."""
    path = Path(path)
    if not path.is_file():
        raise TableError([f"找不到文件 {path}"])
    raw = _raw_rows(path)
    if not raw:
        raise TableError([f"{path.name}: 文件是空的"])
    lookup = {normalize(alias).lower(): key for key, names in aliases.items() for alias in (key, *names)}
    header = [lookup.get(_cell(h).lower(), "") for h in raw[0]]
    missing = [k for k in required if k not in header]
    if missing:
        wanted = "、".join("/".join(aliases[k]) for k in missing)
        raise TableError([f"第1行（表头）缺少列：{wanted}"])
    rows = []
    for number, raw_cells in enumerate(raw[1:], start=2):
        cells = {key: raw_cells[i] if i < len(raw_cells) else "" for i, key in enumerate(header) if key}
        values = {key: _cell(value) for key, value in cells.items()}
        if not any(_cell(v) for v in raw_cells):
            continue
        rows.append(Row(number, values, cells))
    return rows
