"""The operator's side of repairs, through the `houqin` command: room and asset imports, the printable
QR sheets (codes created once through the fake WeChat, then reused) and the monthly 报修台账."""

from __future__ import annotations

import base64
import re
import zlib
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook
from reportlab.lib.rl_accel import escapePDF
from sqlalchemy import select

from bot.export import read_ledger
from models import Asset, Room

ROOMS = "楼栋,楼层,房间,别名,负责人\n教学楼,3,三(2)班,,\n教学楼,4,四(1)班,,\n综合楼,2,科学室,实验室,\n"
ASSETS = "编号,名称,类别,房间\nDJ-0302,投影仪,电教,三(2)班\nSD-0401,空调,水电,四年级1班\n"


@pytest.fixture
def registered(houqin, services, tmp_path: Path):
    (tmp_path / "rooms.csv").write_text(ROOMS, encoding="utf-8")
    (tmp_path / "assets.csv").write_text(ASSETS, encoding="utf-8")
    result = houqin("rooms", "import", str(tmp_path / "rooms.csv"))
    assert result.exit_code == 0 and "房间导入完成：3 条" in result.output, result.output
    result = houqin("assets", "import", str(tmp_path / "assets.csv"))
    assert result.exit_code == 0 and "资产导入完成：2 条" in result.output, result.output


def pdf_content(path: Path) -> bytes:
    """The page streams of a reportlab PDF (ASCII85 + Flate), decoded."""
    data = path.read_bytes()
    assert data.startswith(b"%PDF-")
    streams = re.findall(rb"stream\r?\n(.*?)endstream", data, re.S)
    return b"".join(zlib.decompress(base64.a85decode(s.strip(), adobe=True)) for s in streams)


def printed(content: bytes, text: str) -> bool:
    """Whether `text` is drawn in the STSong-Light (UCS-2) font."""
    return escapePDF(text.encode("utf_16_be")).encode("latin-1") in content


def qr_calls(fake_wechat) -> list[str]:
    return [c.body["action_info"]["scene"]["scene_str"] for c in fake_wechat.calls if c.endpoint == "qrcode/create"]


def test_room_sheet_creates_each_code_once_and_reuses_it(registered, houqin, fake_wechat, services,
                                                         tmp_path: Path) -> None:
    out = tmp_path / "rooms.pdf"
    result = houqin("qr", "rooms", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "3 个二维码（新建 3 个），1 页" in result.output
    with services.factory() as s:
        rooms = list(s.scalars(select(Room).order_by(Room.id)))
    assert sorted(qr_calls(fake_wechat)) == sorted(f"room:{r.id}" for r in rooms)
    assert all(r.qr_url == f"http://weixin.qq.com/q/room:{r.id}" and r.qr_ticket for r in rooms)
    content = pdf_content(out)
    assert all(printed(content, r.name) for r in rooms)
    assert printed(content, "教学楼 3楼")

    out.unlink()
    again = houqin("qr", "rooms", "--out", str(out))
    assert again.exit_code == 0 and "新建 0 个" in again.output
    assert len(qr_calls(fake_wechat)) == 3 and out.is_file()  # the codes already made are reused


def test_asset_sheet(registered, houqin, fake_wechat, services, tmp_path: Path) -> None:
    out = tmp_path / "assets.pdf"
    result = houqin("qr", "assets", "--out", str(out))
    assert result.exit_code == 0 and "2 个二维码（新建 2 个）" in result.output, result.output
    with services.factory() as s:
        ids = list(s.scalars(select(Asset.id).order_by(Asset.id)))
    assert sorted(qr_calls(fake_wechat)) == sorted(f"asset:{i}" for i in ids)
    content = pdf_content(out)
    assert printed(content, "投影仪") and printed(content, "空调")


def test_the_sheet_prints_its_middle_dots(registered, houqin, fake_wechat, tmp_path: Path) -> None:
    """STSong-Light has no U+00B7: 「扫码报修 · 房间」 printed as 「扫码报修   房间」 (seen with pdftoppm and pdftotext)."""
    out = tmp_path / "rooms.pdf"
    assert houqin("qr", "rooms", "--out", str(out)).exit_code == 0
    content = pdf_content(out)
    assert printed(content, "扫码报修 \u30fb 房间") and printed(content, "微信扫一扫 \u30fb 报修")
    assert not printed(content, "\u00b7")


def test_a_refused_code_stops_the_sheet_and_stores_nothing(registered, houqin, fake_wechat, services,
                                                           tmp_path: Path) -> None:
    fake_wechat.script("qrcode/create", 45009)
    result = houqin("qr", "rooms", "--out", str(tmp_path / "rooms.pdf"))
    assert result.exit_code == 1 and "错误：微信未能生成二维码：" in result.output
    assert not (tmp_path / "rooms.pdf").exists()
    with services.factory() as s:
        assert list(s.scalars(select(Room.qr_url))) == ["", "", ""]


def test_a_sheet_of_nothing_is_refused(houqin, services, tmp_path: Path) -> None:
    result = houqin("qr", "rooms", "--out", str(tmp_path / "rooms.pdf"))
    assert result.exit_code == 1 and "错误：还没有登记房间：请先导入" in result.output


# -- the ledger ---------------------------------------------------------------------------------------
def test_monthly_ledger_and_staff_sheet(registered, houqin, people, wechat_user, clock, tmp_path: Path) -> None:
    clock.set("2026-10-30 07:00")  # bind codes are issued now and last 14 days
    people.add("周春明", "admin")
    people.add("程财宝", "staff", categories="水电;门窗;桌椅;消防;安全;其他")
    people.add("殷奇", "staff", categories="电教")
    people.add("张丽", "teacher")
    people.add("王强", "teacher")
    clock.set("2026-10-30 08:00")
    zhang, wang, yin, cheng = (wechat_user(n) for n in ("张丽", "王强", "殷奇", "程财宝"))
    zhang.say("报修 科学室 门锁坏了")  # R1, October: not in November's ledger
    clock.set("2026-11-02 08:00")
    zhang.say("报修 三年级2班 投影仪不亮")  # R2
    clock.set("2026-11-02 09:00")
    yin.say("接单 R2")
    clock.set("2026-11-02 11:00")
    yin.say("完成 R2 换灯泡")
    zhang.say("4")
    clock.set("2026-11-03 08:00")
    wang.say("报修 四(1)班 灯不亮")  # R3
    clock.set("2026-11-04 08:00")
    cheng.say("完成 R3")
    wang.say("2")
    clock.set("2026-11-05 08:00")
    zhang.say("报修 DJ-0302 没有声音")  # R4, by asset code
    clock.set("2026-11-05 09:00")
    yin.say("完成 R4 线松了")
    clock.set("2026-11-06 08:00")
    wang.say("巡查 二楼东楼梯 扶手松动")  # R5, open

    out = tmp_path / "ledger.xlsx"
    result = houqin("export", "repairs", "--month", "2026-11", "--out", str(out))
    assert result.exit_code == 0 and "报修 4 张（隐患 1 张）" in result.output, result.output
    book = load_workbook(out)
    assert book.sheetnames == ["报修台账", "巡查隐患台账", "维修人员统计"]
    ledger = [list(r) for r in read_ledger(out, "报修台账")]
    assert ledger[0][:13] == ["编号", "报修时间", "报修人", "地点", "设备", "类别", "问题描述", "维修人", "接单时间",
                              "完成时间", "维修用时(小时)", "评分", "备注"]
    assert [r[0] for r in ledger[1:]] == ["R2", "R3", "R4", "R5"]
    assert ledger[1][:13] == ["R2", datetime(2026, 11, 2, 8, 0), "张丽", "三(2)班", None, "电教", "投影仪不亮", "殷奇",
                              datetime(2026, 11, 2, 9, 0), datetime(2026, 11, 2, 11, 0), 3, 4, "换灯泡"]
    assert ledger[2][7:12] == ["程财宝", datetime(2026, 11, 4, 8, 0), datetime(2026, 11, 4, 8, 0), 24, 2]
    assert ledger[3][3:5] == ["三(2)班 投影仪", "投影仪（DJ-0302）"] and ledger[3][10] == 1 and ledger[3][11] is None
    assert ledger[4][5] == "安全" and ledger[4][7] is None and ledger[4][13] == "巡查隐患"
    hazards = [list(r) for r in read_ledger(out, "巡查隐患台账")]
    assert [r[0] for r in hazards[1:]] == ["R5"]
    staff = [list(r) for r in read_ledger(out, "维修人员统计")]
    assert staff == [["维修人", "报修单数", "已完成", "维修用时中位数(小时)", "平均评分"],
                     ["殷奇", 2, 2, 2, 4], ["程财宝", 1, 1, 24, 2]]


def test_export_month_must_be_a_month(houqin, tmp_path: Path) -> None:
    result = houqin("export", "repairs", "--month", "2026-13", "--out", str(tmp_path / "x.xlsx"))
    assert result.exit_code == 2 and "YYYY-MM" in result.output
