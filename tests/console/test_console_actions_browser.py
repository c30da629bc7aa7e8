"""The console's 校车 and 值日 actions in a real browser (the harness of test_console_browser.py): rename a
stop and change its time, ask 请假 for a student and 销假 it (the morning's expected count drops and comes
back), and download the posts' QR sheet as a PDF."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from models import Student
from models.bus import BusLeave, BusStop
from tests.console.test_console_browser import browser, live, page, sign_in, status  # noqa: F401
from tests.handlers.test_bus import school  # noqa: F401
from tests.handlers.test_duty import school as duty_school  # noqa: F401
from tests.test_console import PASSWORD


def expected_this_morning(tab: Any) -> str:
    row = tab.locator("tr", has_text="1号线").filter(has_text="上学").first.inner_text()
    return re.split(r"\s+", row.strip())[2]


def test_edit_a_stop_then_ask_and_cancel_leave(school, houqin, live: str, page: Any, services) -> None:  # noqa: F811
    assert houqin("console-password", "周春明", "--password", PASSWORD).exit_code == 0
    sign_in(page, live)
    page.click("nav >> text=校车")
    stop = page.locator("tr.stop[data-stop='龙城花园']")
    stop.locator("input[name=name]").fill("龙城花园北门")
    stop.locator("input[name=am]").fill("07:05")
    stop.locator("button:has-text('保存')").click()
    assert "已保存1号线站点「龙城花园北门」：站点：龙城花园→龙城花园北门；上学时间：07:10→07:05。" in status(page)
    assert page.locator("tr.stop[data-stop='龙城花园北门'] input[name=am]").input_value() == "07:05"
    with services.factory() as s:
        assert s.scalar(select(BusStop.am_time).where(BusStop.name == "龙城花园北门")) == "07:05"
        assert s.scalar(select(Student.stop).where(Student.name == "陈小明")) == "龙城花园北门"

    assert expected_this_morning(page) == "3"
    page.fill("#leave-form input[name=student]", "三(2)班陈小明")
    page.fill("#leave-form input[name=day]", "2026-11-23")
    page.select_option("#leave-form select[name=trips]", "am")
    page.click("#leave-form button")
    assert "已为陈小明请假：" in status(page) and "上学校车不乘坐" in status(page)
    assert "陈小明" in page.inner_text("#leave-list") and expected_this_morning(page) == "2"
    page.click("#leave-list button.cancel-leave")
    assert "已为陈小明销假：11月23日 上学照常乘坐校车。" in status(page)
    assert page.locator("#leave-list").count() == 0 and expected_this_morning(page) == "3"
    with services.factory() as s:
        leave = s.scalar(select(BusLeave))
        assert leave.requested_by.name == "周春明" and leave.cancelled_at is not None


def test_download_the_post_qr_sheet(duty_school, houqin, fake_wechat, live: str, page: Any) -> None:  # noqa: F811
    assert houqin("console-password", "周春明", "--password", PASSWORD).exit_code == 0
    sign_in(page, live)
    page.click("nav >> text=值日")
    with page.expect_download() as info:
        page.click("button:has-text('生成并下载岗位二维码')")
    download = info.value
    assert download.suggested_filename == "值日岗位二维码.pdf"
    with open(download.path(), "rb") as f:
        assert f.read(5) == b"%PDF-"
    assert len([c for c in fake_wechat.calls if c.endpoint == "qrcode/create"]) == 2
    page.reload()
    assert page.locator("#post-list td.qr img").count() == 2  # the codes are kept and shown
