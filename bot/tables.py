"""Reading operators' spreadsheets (CSV or XLSX) with Chinese or English headers.

Every import (people, students, rooms, routes, menus, ...) reads through `read_table` with its
own header aliases, and reports problems by row number as they appear in the file.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bot.text import normalize


class TableError(ValueError):
    """The file cannot be read or has problems; `problems` lists each with its row number."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class Row:
    number: int  # as a spreadsheet shows it: the header is row 1
    values: dict[str, str] = field(default_factory=dict)

    def get(self, key: str) -> str:
        return self.values.get(key, "")


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return normalize(str(value))


def _raw_rows(path: Path) -> list[list[str]]:
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        try:
            book = load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # noqa: BLE001 - openpyxl raises many types for a bad file
            raise TableError([f"无法读取 Excel 文件 {path.name}: {exc}"]) from exc
        sheet = book.worksheets[0]
        rows = [[_cell(v) for v in row] for row in sheet.iter_rows(values_only=True)]
        book.close()
        return rows
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
        return [[_cell(v) for v in row] for row in csv.reader(io.StringIO(text))]
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
    header = [lookup.get(h.lower(), "") for h in raw[0]]
    missing = [k for k in required if k not in header]
    if missing:
        wanted = "、".join("/".join(aliases[k]) for k in missing)
        raise TableError([f"第1行（表头）缺少列：{wanted}"])
    rows = []
    for number, cells in enumerate(raw[1:], start=2):
        if not any(cells):
            continue
        values = {key: cells[i] if i < len(cells) else "" for i, key in enumerate(header) if key}
        rows.append(Row(number, values))
    return rows
