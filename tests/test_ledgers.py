"""Ledgers print the way an office expects: every `houqin export` workbook has a title row (school, ledger,
month), its header repeated on every printed page, borders, widths that fit Chinese text, landscape and
one page wide; the hazard register speaks in hazard terms, the repair ledger counts 返修, and the
canteen's chart shows a month with one day of data (filed through the webhook, exported with the CLI,
read back with openpyxl)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from bot.export import Ledger, LineChart, Period, display_width, read_ledger
from bot.ledgers import LEDGERS, term_label

SHEETS = {"repairs": ["报修台账", "巡查隐患台账", "维修人员统计"], "bus": ["校车台账", "请假记录"],
          "duty": ["值日台账", "教师汇总"],
          "canteen": ["评价明细", "每日平均", "分组平均", "意见高频词", "满意度调查", "陪餐记录"]}


@pytest.fixture
def school(people, clock, houqin):
    clock.set("2026-11-24 08:00")  # a Tuesday
    people.add("周春明", "admin")
    people.add("程财宝", "staff", categories="安全;水电;门窗;桌椅;电教;其他")
    people.add("张丽", "teacher", class_name="三(2)班")
    people.add("陈建国", "parent")
    assert houqin("setting", "school_name", "常州市新北区实验小学").exit_code == 0
    return people


@pytest.fixture
def month_of_work(school, wechat_user, clock):
    """A hazard found on patrol, fixed, found not fixed (未修好), fixed again and rated; one canteen rating."""
    zhang, cheng = wechat_user("张丽"), wechat_user("程财宝")
    assert "R1" in zhang.say("巡查 二楼东楼梯 扶手松动，学生下楼时晃动").text
    clock.set("2026-11-24 09:00")
    cheng.say("接单 R1")
    cheng.say("完成 R1 扶手螺丝已紧固")
    clock.set("2026-11-24 10:00")
    assert "R1" in zhang.say("未修好 R1 还是晃").text
    clock.set("2026-11-25 10:00")
    cheng.say("完成 R1 更换扶手支架")
    zhang.say("5")
    assert "F1" in wechat_user("陈建国").say("食堂 4 今天的青菜很新鲜").text
    return school


def export(houqin, key: str, tmp_path: Path) -> Path:
    out = tmp_path / f"{key}.xlsx"
    result = houqin("export", key, "--month", "2026-11", "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("key", list(SHEETS))
def test_every_ledger_sheet_is_laid_out_for_printing(month_of_work, houqin, tmp_path: Path, key: str) -> None:
    book = load_workbook(export(houqin, key, tmp_path))
    assert book.sheetnames == SHEETS[key]
    for ws in book.worksheets:
        assert ws["A1"].value == f"常州市新北区实验小学 {ws.title}（2026年11月）"
        assert ws["A1"].font.bold and ws["A1"].font.size == 14
        columns = ws.max_column
        assert f"A1:{get_column_letter(columns)}1" in [str(r) for r in ws.merged_cells.ranges]
        assert ws.print_title_rows == "$2:$2"  # the header, on every printed page
        assert ws.freeze_panes == "A3"
        assert ws.page_setup.orientation == "landscape" and int(ws.page_setup.paperSize) == 9  # A4
        assert ws.sheet_properties.pageSetUpPr.fitToPage
        assert ws.page_setup.fitToWidth == 1 and ws.page_setup.fitToHeight == 0
        for row in ws.iter_rows(min_row=2, max_row=ws.max_row, max_col=columns):
            for cell in row:
                assert all(getattr(cell.border, side).style == "thin" for side in ("left", "right", "top", "bottom")), \
                    (ws.title, cell.coordinate)
        for cell in ws[2]:  # every heading fits its column (a Chinese character is two wide)
            assert ws.column_dimensions[cell.column_letter].width >= display_width(cell.value), (ws.title, cell.value)


def test_hazard_register_in_hazard_terms_and_repairs_count_reopenings(month_of_work, houqin, tmp_path: Path) -> None:
    out = export(houqin, "repairs", tmp_path)
    hazards = read_ledger(out, "巡查隐患台账")
    assert hazards[0] == ("编号", "发现时间", "发现人", "地点", "隐患描述", "整改责任人", "整改措施", "整改期限",
                          "整改完成时间", "复查", "状态")
    (row,) = [dict(zip(hazards[0], r, strict=True)) for r in hazards[1:]]
    assert row["发现人"] == "张丽" and row["地点"] == "二楼东楼梯"
    assert row["隐患描述"] == "扶手松动，学生下楼时晃动" and row["整改责任人"] == "程财宝"
    assert row["整改措施"] == "更换扶手支架"
    assert row["整改期限"] == datetime(2026, 11, 27, 8, 0)  # repair_done_days (3) after it was found
    assert row["整改完成时间"] == datetime(2026, 11, 25, 10, 0)
    assert row["复查"] == "复查未通过，返修 1 次；已复查，评分 5"
    tickets = read_ledger(out, "报修台账")
    assert tickets[1][tickets[0].index("返修次数")] == 1


def test_the_daily_chart_is_not_empty_with_one_day_of_data(month_of_work, houqin, tmp_path: Path) -> None:
    ws = load_workbook(export(houqin, "canteen", tmp_path))["每日平均"]
    (chart,) = ws._charts
    (series,) = chart.series
    assert series.val.numRef.f == "'每日平均'!$C$3"  # the one day's average, under the title and header
    assert series.cat.numRef.f == "'每日平均'!$A$3"
    assert series.marker.symbol == "circle"  # a single point is drawn as a mark, not a line of no length
    assert ws["C3"].value == 4 and ws["A3"].value == datetime(2026, 11, 25)


def test_a_ledger_saves_to_a_stream_and_reads_back(tmp_path: Path) -> None:
    import io

    ledger = Ledger("测试台账", Period.month(date(2026, 11, 15)), school="实验小学")
    ledger.sheet("明细", ["日期", "说明"], [[date(2026, 11, 2), "=1+1"], [date(2026, 11, 3), "很长的说明" * 12]],
                 wide=["说明"], chart=LineChart("图", value="说明", category="日期"))
    stream = ledger.save(io.BytesIO())
    stream.seek(0)
    ws = load_workbook(stream)["明细"]
    assert ws["A1"].value == "实验小学 明细（2026年11月）"
    assert read_ledger(stream, "明细")[1:] == [(datetime(2026, 11, 2), "'=1+1"),
                                                (datetime(2026, 11, 3), "很长的说明" * 12)]
    assert ws["B4"].alignment.wrap_text and ws.column_dimensions["B"].width == 50


def test_term_periods_are_named_like_the_school_year() -> None:
    assert term_label(date(2026, 9, 1)) == "2026-2027学年第一学期"
    assert term_label(date(2027, 2, 20)) == "2026-2027学年第二学期"
    assert Period.month(date(2026, 12, 9)) == Period(date(2026, 12, 1), date(2027, 1, 1), "2026年12月")
    assert set(LEDGERS) >= set(SHEETS)


def test_every_ledger_exports_for_a_term_from_the_cli_as_the_console_offers(month_of_work, houqin, tmp_path: Path
                                                                            ) -> None:
    """`houqin export <any ledger> --term <a day of the term>` writes the term's workbook the console's 台账
    page offers (its title names the school year's term, the work of November is in it); a day outside
    every term, both periods, or neither are refused in Chinese and write nothing."""
    (tmp_path / "calendar.csv").write_text("日期,类型\n2026-09-01,开学\n2027-01-22,学期结束\n", encoding="utf-8")
    assert houqin("calendar", "import", str(tmp_path / "calendar.csv")).exit_code == 0
    for key in LEDGERS:
        out = tmp_path / f"{key}-term.xlsx"
        result = houqin("export", key, "--term", "2026-11-24", "--out", str(out))
        assert result.exit_code == 0 and "2026-2027学年第一学期" in result.output, (key, result.output)
        assert "2026-2027学年第一学期" in str(load_workbook(out).worksheets[0].cell(1, 1).value), key
    tickets = read_ledger(tmp_path / "repairs-term.xlsx", "报修台账")
    assert [row[0] for row in tickets[1:]] == ["R1"]
    canteen = read_ledger(tmp_path / "canteen-term.xlsx", "评价明细")
    assert any("今天的青菜很新鲜" in str(cell) for row in canteen[1:] for cell in row)
    refused = tmp_path / "refused.xlsx"
    for args, words in ((["--term", "2027-03-01"], "校历中没有包含 2027-03-01 的学期"),
                        (["--term", "11月24日"], "请写成 YYYY-MM-DD"),
                        (["--month", "2026-11", "--term", "2026-11-24"], "--month 和 --term 只能选一个"),
                        ([], "请给出 --month YYYY-MM 或 --term YYYY-MM-DD")):
        result = houqin("export", "repairs", *args, "--out", str(refused))
        assert result.exit_code != 0 and words in result.output, (args, result.output)
        assert not refused.exists()
