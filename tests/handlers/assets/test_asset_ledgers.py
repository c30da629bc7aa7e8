"""The five ledgers through `houqin export`: for a month or a term, with what the chat recorded."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from bot.export import display_width
from bot.school import import_calendar
from handlers.assets.supplies import import_supplies
from tests.handlers.assets.test_asset_supplies import SUPPLIES
from tests.test_console import PASSWORD, sign_in


def rows(path: Path, sheet: str | None = None) -> list[list[object]]:
    """The sheet's header and rows, under its title row (bot.export.Ledger)."""
    book = load_workbook(path)
    ws = book[sheet] if sheet else book.worksheets[0]
    return [list(r) for r in ws.iter_rows(min_row=2, values_only=True)]


def test_the_five_ledgers_of_a_month(school, wechat_user, houqin, services, tmp_path: Path, clock) -> None:
    (tmp_path / "supplies.csv").write_text(SUPPLIES, encoding="utf-8")
    with services.factory() as s, s.begin():
        import_supplies(s, tmp_path / "supplies.csv")
    wang, admin, staff = wechat_user("王强"), wechat_user("周春明"), wechat_user("程财宝")
    wang.say("借 篮球 2 周三")
    wang.say("领钥匙 科学室 门")
    wang.say("领用 A4纸 2 =HYPERLINK(\"x\")")  # a purpose that looks like a formula stays text
    wechat_user("张丽").say("领用 A4纸 1")
    admin.say("盘点 开始 体育器材室")
    staff.say("盘点 体育器材室 QQ-1")
    admin.say("盘点 结束")
    staff.say("报废 DJ-0302 灯泡老化")

    out = tmp_path / "assets.xlsx"
    result = houqin("export", "assets", "--month", "2026-11", "--out", str(out))
    assert result.exit_code == 0, result.output
    register = rows(out)
    assert register[0][:3] == ["资产编号", "名称", "类型"]
    assert any(r[0] == "YS-KX1" and r[2] == "钥匙" and r[9] == 3 for r in register)
    assert any(r[1] == "DJ-0302" and r[6] == "待审批" for r in rows(out, "报废记录"))

    out = tmp_path / "loans.xlsx"
    assert houqin("export", "loans", "--month", "2026-11", "--out", str(out)).exit_code == 0
    assert [r[:5] for r in rows(out)[1:]] == [["J1", "TY-001", "篮球", 2, "王强"]]

    out = tmp_path / "keys.xlsx"
    assert houqin("export", "keys", "--month", "2026-11", "--out", str(out)).exit_code == 0
    assert rows(out)[1][1:6] == ["科学室", "科学室门钥匙", "YS-KX1", 1, "王强"]
    assert any(r[0] == "YS-KX1" and r[5] == "第1把 王强" for r in rows(out, "钥匙清单"))

    out = tmp_path / "stocktake.xlsx"
    assert houqin("export", "stocktake", "--month", "2026-11", "--out", str(out)).exit_code == 0
    assert rows(out)[1][1] == "体育器材室" and rows(out)[1][6] == 1  # TY-001 not seen: missing
    results = {(r[1], r[2]) for r in rows(out, "差异明细")[1:]}
    assert results == {("缺失", "TY-001"), ("未登记", "QQ-1")}
    assert rows(out, "盘点记录")[1][2] == "程财宝"

    out = tmp_path / "supplies.xlsx"
    assert houqin("export", "supplies", "--month", "2026-11", "--out", str(out)).exit_code == 0
    moves = rows(out)
    assert moves[1][8] == "'=HYPERLINK(\"x\")"
    assert ["A4纸", "包", 0, 3, 7, 5] in rows(out, "按物品汇总")
    assert {tuple(r) for r in rows(out, "按部门汇总")[1:]} == {("四(1)班", "A4纸", 2, "包"),
                                                             ("三(2)班", "A4纸", 1, "包")}

    december = tmp_path / "dec.xlsx"
    assert houqin("export", "loans", "--month", "2026-12", "--out", str(december)).exit_code == 0
    assert [r[0] for r in rows(december)[1:]] == ["J1"]  # still out: carried into the next month


def test_a_term_ledger_and_bad_periods(school, houqin, services, tmp_path: Path) -> None:
    (tmp_path / "calendar.csv").write_text("日期,类型\n2026-09-01,开学\n2027-01-22,学期结束\n", encoding="utf-8")
    with services.factory() as s, s.begin():
        import_calendar(s, tmp_path / "calendar.csv")
    out = tmp_path / "term.xlsx"
    result = houqin("export", "assets", "--term", "2026-11-24", "--out", str(out))
    assert result.exit_code == 0 and "2026-2027学年第一学期" in result.output
    assert houqin("export", "assets", "--term", "2027-03-01", "--out", str(out)).exit_code == 1
    assert houqin("export", "assets", "--out", str(out)).exit_code != 0
    assert houqin("export", "assets", "--month", "11月", "--out", str(out)).exit_code != 0
    assert "所有钥匙都已归还" in houqin("keys").output


LEDGER_SHEETS = {"assets": ["资产台账", "资产变动", "报废记录"], "loans": ["借用登记"], "keys": ["钥匙登记", "钥匙清单"],
                 "stocktake": ["盘点报告", "差异明细", "盘点记录"],
                 "supplies": ["物品领用台账", "按物品汇总", "按部门汇总"]}


@pytest.mark.parametrize("key", list(LEDGER_SHEETS))
def test_every_asset_ledger_is_laid_out_for_printing(school, wechat_user, houqin, tmp_path: Path, key: str) -> None:
    assert houqin("setting", "school_name", "常州市新北区实验小学").exit_code == 0
    wechat_user("王强").say("借 篮球 2 周三")
    wechat_user("王强").say("领钥匙 科学室 门")
    out = tmp_path / f"{key}.xlsx"
    assert houqin("export", key, "--month", "2026-11", "--out", str(out)).exit_code == 0
    book = load_workbook(out)
    assert book.sheetnames == LEDGER_SHEETS[key]
    for ws in book.worksheets:
        assert ws["A1"].value == f"常州市新北区实验小学 {ws.title}（2026年11月）"
        assert ws["A1"].font.bold
        assert f"A1:{get_column_letter(ws.max_column)}1" in [str(r) for r in ws.merged_cells.ranges]
        assert ws.print_title_rows == "$2:$2" and ws.freeze_panes == "A3"
        assert ws.page_setup.orientation == "landscape" and ws.sheet_properties.pageSetUpPr.fitToPage
        assert ws.page_setup.fitToWidth == 1 and ws.page_setup.fitToHeight == 0
        for cell in ws[2]:
            assert cell.border.left.style == "thin"
            assert ws.column_dimensions[cell.column_letter].width >= display_width(cell.value), (ws.title, cell.value)
    if key == "loans":  # overdue days counted to the day it is written, not to the month's end
        (loan,) = rows(out)[1:]
        assert loan[0] == "J1" and loan[-1] is None


def test_the_console_offers_the_asset_ledgers_for_a_term(school, wechat_user, houqin, services, client, clock,
                                                         tmp_path: Path) -> None:
    (tmp_path / "calendar.csv").write_text("日期,类型\n2026-09-01,开学\n2027-01-22,学期结束\n", encoding="utf-8")
    with services.factory() as s, s.begin():
        import_calendar(s, tmp_path / "calendar.csv")
    assert houqin("console-password", "周春明", "--password", PASSWORD).exit_code == 0
    wechat_user("王强").say("借 篮球 2 周三")
    clock.set("2026-11-30 09:00")  # five days past its due day (周三 11-25)
    sign_in(client)
    page = client.get("/admin/ledgers?month=2026-11").get_data(as_text=True)
    for name in ("资产台账", "借用登记", "钥匙登记", "盘点报告", "物品领用台账"):
        assert name in page
    res = client.get("/admin/ledgers/loans.xlsx?term=2026-09-01")
    assert res.status_code == 200
    ws = load_workbook(io.BytesIO(res.data))["借用登记"]
    assert ws["A1"].value.endswith("借用登记（2026-2027学年第一学期）")
    assert [c.value for c in ws[3]][0] == "J1" and [c.value for c in ws[3]][-1] == 5
    assert client.get("/admin/ledgers/keys.xlsx?term=2025-09-01").status_code == 400
