"""Writing ledgers (台账) as XLSX workbooks that print the way an office expects.

Every ledger is a `Ledger`: a name, a period, the school, and its sheets. Build one, add sheets, save:

    ledger = Ledger("报修台账", Period.month(date(2026, 11, 1)), school="实验小学")
    ledger.sheet("报修台账", ["编号", "报修时间", …], rows, wide=["问题描述"])
    ledger.sheet("每日平均", ["日期", "评价数", "平均分"], daily,
                 chart=LineChart("每日平均评分", value="平均分", category="日期", y_title="平均分", y_max=5))
    ledger.save("out.xlsx")          # or ledger.save(io.BytesIO()) for a download; returns what it was given

Each sheet is laid out for printing on A4 without anyone touching it:
- row 1, the title: 「<school> <sheet title>（<period>）」, bold, merged across the columns;
- row 2, the header (bold, shaded), repeated at the top of every printed page (`print_title_rows`), and
  frozen on screen (panes at A3);
- thin borders around every header and data cell; long texts wrap (the columns named in `wide=`, and any
  column whose text is long) instead of running off the page;
- column widths measured in display width (a Chinese character is two), between 6 and 40 (`wide=`: 50);
- landscape, fit to one page wide (as many pages tall as it takes), centred, with 第 N 页 / 共 M 页 in the footer;
- an optional `LineChart` beside the table: a line with markers, so a month with one day of data still
  shows its point (and an empty month a chart whose title says 本期没有数据).

`Period` is the span a ledger covers: `Period.month(date)` (2026年11月) or `Period(first, after, label)` for
a term; `first <= day < after` in queries. `read_ledger(path, sheet)` reads a sheet back as
[header, *rows] (the title row skipped), for tests and for anyone comparing two exports.

Every cell goes through `ledger_cell`: a text is always written as text, never as a formula. A text
beginning with `=`, `+`, `-`, `@`, a tab or a carriage return (what a spreadsheet reads as the start of
a formula: a repair described as `=HYPERLINK(…)` would be a live link) gets a leading single quote,
as OWASP recommends against CSV/formula injection, and the cell is typed as a string. `neutralised`
is the same rule for any other export (a CSV, should one be written).

`write_workbook(path, sheets)` is the plain form (no title, no period) kept for callers that have no ledger name.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from copy import copy
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any, TypeVar

from bot.text import month_span

DATE_FORMAT = "yyyy-mm-dd hh:mm"
DAY_FORMAT = "yyyy-mm-dd"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NEUTRALISER = "'"
TITLE = "{school}{title}（{period}）"
FOOTER = "第 &P 页 / 共 &N 页"
NO_DATA = "（本期没有数据）"
MIN_WIDTH, MAX_WIDTH, WIDE_WIDTH = 6, 40, 50
WRAP_AT = 24  # display width past which a column's text wraps
HEADER_FILL = "DDEBF7"
TITLE_ROW, HEADER_ROW = 1, 2
Target = TypeVar("Target", str, Path, IO[bytes])


@dataclass(frozen=True)
class Period:
    """The days a ledger covers, `first <= day < after`, and how its title names them."""

    first: date
    after: date
    label: str

    @classmethod
    def month(cls, day: date) -> Period:
        first, after = month_span(day)
        return cls(first, after, f"{first.year}年{first.month}月")

    @property
    def is_month(self) -> bool:
        return (self.first.day == 1 and month_span(self.first)[1] == self.after)


@dataclass
class LineChart:
    """A line chart of one column (`value`) against another (`category`, usually 日期), beside the table."""

    title: str
    value: str
    category: str
    y_title: str = ""
    x_title: str = ""
    y_min: float | None = 0
    y_max: float | None = None


@dataclass
class Sheet:
    title: str
    header: list[str]
    rows: list[list[Any]]
    wide: list[str] = field(default_factory=list)  # columns of long text: wider, wrapped
    chart: LineChart | None = None


@dataclass
class Ledger:
    """A workbook of sheets under one name and period (see the module docstring)."""

    name: str
    period: Period | None = None
    school: str = ""
    sheets: list[Sheet] = field(default_factory=list)

    def sheet(self, title: str, header: Sequence[str], rows: Sequence[Sequence[Any]],
              wide: Sequence[str] = (), chart: LineChart | None = None) -> Sheet:
        added = Sheet(title, list(header), [list(r) for r in rows], list(wide), chart)
        self.sheets.append(added)
        return added

    def title(self, sheet: Sheet) -> str:
        period = self.period.label if self.period else ""
        text = TITLE.format(school=f"{self.school} " if self.school else "", title=sheet.title, period=period)
        return text if period else text.replace("（）", "")

    def save(self, target: Target) -> Target:
        """Write the workbook to a path or a binary stream; returns `target` (a Path when given a str)."""
        book = _workbook([(s, self.title(s)) for s in self.sheets])
        if isinstance(target, str | Path):
            path = Path(target)
            path.parent.mkdir(parents=True, exist_ok=True)
            book.save(path)
            return path if isinstance(target, Path) else str(path)  # type: ignore[return-value]
        book.save(target)
        return target


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
        elif isinstance(value, date):
            cell.number_format = DAY_FORMAT
    return cell


def display_width(value: Any) -> int:
    """How many columns a value takes on screen: a Chinese (wide) character counts two."""
    if value is None:
        return 0
    if isinstance(value, datetime):
        return 16
    if isinstance(value, date):
        return 10
    text = value if isinstance(value, str) else str(value)
    longest = max(text.split("\n"), key=len, default="")
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in longest)


def _workbook(sheets: Sequence[tuple[Sheet, str | None]]) -> Any:
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for sheet, title in sheets:
        _fill(book.create_sheet(sheet.title[:31]), sheet, title)
    return book


def _fill(ws: Any, sheet: Sheet, title: str | None) -> None:
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.utils import get_column_letter

    columns = max(len(sheet.header), 1)
    header_row = HEADER_ROW if title is not None else 1
    if title is not None:
        cell = ledger_cell(ws, TITLE_ROW, 1, title)
        cell.font = Font(bold=True, size=14)
        cell.alignment = Alignment(horizontal="center", vertical="center")
        if columns > 1:
            ws.merge_cells(start_row=TITLE_ROW, start_column=1, end_row=TITLE_ROW, end_column=columns)
        ws.row_dimensions[TITLE_ROW].height = 24
    thin = Side(style="thin", color="000000")
    border = Border(left=thin, right=thin, top=thin, bottom=thin)
    widths = [display_width(h) for h in sheet.header]
    for row in sheet.rows:
        for column, value in enumerate(row[:columns]):
            widths[column] = max(widths[column], display_width(value))
    wraps = [w > WRAP_AT or h in sheet.wide for h, w in zip(sheet.header, widths, strict=True)]
    for column, heading in enumerate(sheet.header, start=1):
        cell = ledger_cell(ws, header_row, column, heading)
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor=HEADER_FILL)
        cell.border = border
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    # A body cell's style is one of a few (wrapped or not, and its number format): set it the slow way
    # (openpyxl hashes every style object on each assignment) once, then copy the finished style.
    styles: dict[tuple[bool, str], Any] = {}
    for number, row in enumerate(sheet.rows, start=header_row + 1):
        for column in range(1, columns + 1):
            value = row[column - 1] if column - 1 < len(row) else None
            cell = ledger_cell(ws, number, column, value)
            key = (wraps[column - 1], cell.number_format)
            if key in styles:
                cell._style = copy(styles[key])
                continue
            cell.border = border
            cell.alignment = Alignment(vertical="top", wrap_text=wraps[column - 1])
            styles[key] = copy(cell._style)
    for column, heading in enumerate(sheet.header, start=1):
        limit = WIDE_WIDTH if heading in sheet.wide else MAX_WIDTH
        ws.column_dimensions[get_column_letter(column)].width = min(max(widths[column - 1] + 2, MIN_WIDTH), limit)
    ws.freeze_panes = ws.cell(row=header_row + 1, column=1).coordinate
    if sheet.chart is not None:
        _chart(ws, sheet, header_row, columns)
    _print_setup(ws, header_row)


def _print_setup(ws: Any, header_row: int) -> None:
    ws.print_title_rows = f"{header_row}:{header_row}"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0  # as many pages tall as it takes
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.horizontalCentered = True
    ws.page_margins.left = ws.page_margins.right = 0.4
    ws.page_margins.top = ws.page_margins.bottom = 0.6
    ws.oddFooter.center.text = FOOTER


def _chart(ws: Any, sheet: Sheet, header_row: int, columns: int) -> None:
    from openpyxl.chart import LineChart as XlLineChart
    from openpyxl.chart import Reference
    from openpyxl.utils import get_column_letter

    spec = sheet.chart
    assert spec is not None
    value, category = sheet.header.index(spec.value) + 1, sheet.header.index(spec.category) + 1
    last = header_row + len(sheet.rows)
    chart = XlLineChart()
    chart.title = spec.title if sheet.rows else spec.title + NO_DATA
    chart.y_axis.title, chart.x_axis.title = spec.y_title or spec.value, spec.x_title or spec.category
    chart.y_axis.scaling.min, chart.y_axis.scaling.max = spec.y_min, spec.y_max
    chart.x_axis.number_format = "m/d"
    chart.y_axis.delete = chart.x_axis.delete = False  # recent Excel hides axes openpyxl leaves unset
    chart.legend = None
    chart.add_data(Reference(ws, min_col=value, min_row=header_row, max_row=max(last, header_row + 1)),
                   titles_from_data=True)
    chart.set_categories(Reference(ws, min_col=category, min_row=header_row + 1, max_row=max(last, header_row + 1)))
    for series in chart.series:  # a point for each day: one day of data is still a visible mark
        series.marker.symbol = "circle"
        series.marker.size = 7
        series.smooth = False
    chart.width, chart.height = 20, 9
    ws.add_chart(chart, f"{get_column_letter(columns + 2)}{header_row}")


def write_workbook(path: str | Path, sheets: Sequence[Sheet]) -> Path:
    """Sheets without a title row (header on row 1): for callers with no ledger name or period."""
    book = _workbook([(s, None) for s in sheets])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)
    return path


def read_ledger(source: str | Path | IO[bytes], sheet: str) -> list[tuple[Any, ...]]:
    """A ledger's sheet read back as [header, *rows], the title row left out."""
    from openpyxl import load_workbook

    ws = load_workbook(source)[sheet]
    start = HEADER_ROW if ws.freeze_panes == f"A{HEADER_ROW + 1}" else 1  # a ledger's header is frozen under its title
    return list(ws.iter_rows(min_row=start, values_only=True))
