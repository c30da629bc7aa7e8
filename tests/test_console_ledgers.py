"""The console's 台账 page (every ledger for a month or a term, the same workbooks `houqin export` writes) and
设置 page (every school setting, checked as `houqin setting` checks it; admin changes, others may not)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from markupsafe import escape
from openpyxl import load_workbook
from sqlalchemy import select

from bot.export import read_ledger
from bot.school import SETTINGS
from models.console import AuditEntry
from tests.test_console import PASSWORD, csrf, sign_in

CALENDAR = "日期,类型,备注\n2026-09-01,开学,\n2027-01-20,学期结束,\n"


@pytest.fixture
def office(people, houqin, wechat_user, clock, tmp_path: Path):
    clock.set("2026-11-24 08:00")
    people.add("周春明", "admin")
    people.add("程财宝", "staff", categories="安全;水电")
    people.add("张丽", "teacher", class_name="三(2)班")
    for name in ("周春明", "程财宝"):
        assert houqin("console-password", name, "--password", PASSWORD).exit_code == 0
    (tmp_path / "calendar.csv").write_text(CALENDAR, encoding="utf-8")
    assert houqin("calendar", "import", str(tmp_path / "calendar.csv")).exit_code == 0
    zhang = wechat_user("张丽")
    assert "R1" in zhang.say("巡查 二楼东楼梯 扶手松动").text
    assert "R2" in zhang.say("报修 三(2)班 投影仪不亮").text
    return people


def download(client: FlaskClient, url: str):
    res = client.get(url)
    assert res.status_code == 200, res.get_data(as_text=True)[:500]
    assert res.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return res, io.BytesIO(res.data)


def test_ledgers_page_offers_every_ledger_for_the_month_and_the_term(office, client: FlaskClient, houqin,
                                                                       tmp_path: Path) -> None:
    sign_in(client)
    page = client.get("/admin/ledgers?month=2026-11").get_data(as_text=True)
    for name in ("报修台账", "校车台账", "值日台账", "食堂台账"):
        assert name in page
    assert "2026年11月" in page and "2026-2027学年第一学期" in page

    res, data = download(client, "/admin/ledgers/repairs.xlsx?month=2026-11")
    assert "filename*=UTF-8''%E6%8A%A5%E4%BF%AE%E5%8F%B0%E8%B4%A6-2026%E5%B9%B411%E6%9C%88.xlsx" in \
        res.headers["Content-Disposition"]  # 报修台账-2026年11月.xlsx
    out = tmp_path / "cli.xlsx"
    assert houqin("export", "repairs", "--month", "2026-11", "--out", str(out)).exit_code == 0
    for sheet in ("报修台账", "巡查隐患台账", "维修人员统计"):
        assert read_ledger(data, sheet) == read_ledger(out, sheet)  # the same data as the CLI's
    assert [r[0] for r in read_ledger(data, "报修台账")[1:]] == ["R1", "R2"]

    _, term = download(client, "/admin/ledgers/repairs.xlsx?term=2026-09-01")
    ws = load_workbook(term)["巡查隐患台账"]
    assert ws["A1"].value == "巡查隐患台账（2026-2027学年第一学期）"
    assert [r[0] for r in read_ledger(term, "巡查隐患台账")[1:]] == ["R1"]
    _, canteen = download(client, "/admin/ledgers/canteen.xlsx?month=2026-11")
    assert load_workbook(canteen).sheetnames[:2] == ["评价明细", "每日平均"]

    assert client.get("/admin/ledgers/nothing.xlsx?month=2026-11").status_code == 404
    assert client.get("/admin/ledgers/repairs.xlsx?term=2026-10-01").status_code == 400  # no term starts then
    assert client.get("/admin/ledgers/repairs.xlsx?month=2026-13").status_code == 400


def test_staff_may_not_open_ledgers_or_settings(office, client: FlaskClient) -> None:
    sign_in(client, "程财宝")
    assert client.get("/admin/ledgers").status_code == 403
    assert client.get("/admin/ledgers/repairs.xlsx").status_code == 403
    assert client.get("/admin/settings").status_code == 403
    token = csrf(client, "/admin/repairs")
    assert client.post("/admin/settings", data={"csrf": token, "school_name": "x"}).status_code == 403


def test_settings_form_checks_like_the_cli_and_saves_all_or_nothing(office, client: FlaskClient, houqin,
                                                                    services) -> None:
    sign_in(client)
    page = client.get("/admin/settings").get_data(as_text=True)
    for key, setting in SETTINGS.items():
        assert f'name="{key}"' in page and str(escape(setting.help)) in page
    assert "HOUQIN_TEMPLATES 为空" in page

    cli = houqin("setting", "fire_check_day", "40")
    told = cli.output.strip().removeprefix("错误：")
    token = csrf(client, "/admin/settings")
    res = client.post("/admin/settings", data={"csrf": token, "school_name": "实验小学", "fire_check_day": "40",
                                               "work_start": "7:30"})
    assert res.status_code == 400
    text = res.get_data(as_text=True)
    assert told in text and "所有设置都未保存" in text
    assert 'value="40"' in text  # what was typed stays in the form to correct
    assert houqin("setting", "school_name").output.strip() == "school_name = ''"  # nothing saved

    res = client.post("/admin/settings", data={"csrf": token, "school_name": "实验小学", "fire_check_day": "12",
                                               "work_start": "7:30"})
    assert res.status_code == 200 and "已保存 2 项设置：fire_check_day、school_name" in res.get_data(as_text=True)
    assert houqin("setting", "fire_check_day").output.strip() == "fire_check_day = '12'"
    with services.factory() as s:
        entries = [(e.actor, e.via, e.action, e.target, e.detail) for e in s.scalars(
            select(AuditEntry).where(AuditEntry.action == "setting_set").order_by(AuditEntry.id))]
    assert ("周春明", "console", "setting_set", "fire_check_day", "12") in entries
    assert ("周春明", "console", "setting_set", "school_name", "实验小学") in entries
    _, data = download(client, "/admin/ledgers/repairs.xlsx?month=2026-11")
    assert load_workbook(data)["报修台账"]["A1"].value == "实验小学 报修台账（2026年11月）"

    assert client.post("/admin/settings", data={"school_name": "x"}).status_code == 400  # no CSRF token
    bus = client.post("/admin/settings", data={"csrf": token, "bus_manager": "没有这个人"})
    assert bus.status_code == 400 and re.search("bus_manager 不能设为「没有这个人」", bus.get_data(as_text=True))


def test_templates_check_on_the_settings_page_says_what_the_cli_says(office, client: FlaskClient) -> None:
    sign_in(client)
    token = csrf(client, "/admin/settings")
    res = client.post("/admin/settings/templates-check", data={"csrf": token})
    assert res.status_code == 200 and "HOUQIN_TEMPLATES 为空" in res.get_data(as_text=True)
