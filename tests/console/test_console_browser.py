"""The console in a real browser: Debian's Chromium driven by Playwright against the app served on
127.0.0.1 (werkzeug, in a thread) — sign in, add a person, import a file through its preview, assign
and complete a ticket, acknowledge a bus alarm, download a ledger and open it; 今日 and 报修 fit a phone's
width. Skipped, saying why, where Chromium or Playwright is missing (.ci/run installs Chromium)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from tests.console.test_console_today import bus_alarm
from tests.test_console import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"Debian's Chromium is not installed ({CHROMIUM}): apt-get install chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed (the test extra)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def live(app) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="console-browser-test", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


@pytest.fixture
def page(browser) -> Iterator[Any]:
    context = browser.new_context(locale="zh-CN")
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    yield tab
    context.close()


def sign_in(page: Any, live: str) -> None:
    page.goto(f"{live}/admin/")
    page.fill("input[name=name]", "周春明")
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('登录')")
    page.wait_for_url(f"{live}/admin/")


def status(page: Any) -> str:
    return str(page.inner_text("p[role=status]"))


def test_sign_in_add_a_person_and_import_through_the_preview(office, live: str, page: Any) -> None:
    sign_in(page, live)
    assert page.inner_text("h1").endswith("概况")
    page.click("nav >> text=人员")
    page.click("text=添加人员")
    page.fill("input[name=name]", "刘芳")
    page.fill("input[name=phone]", "13900003333")
    page.fill("input[name=class_name]", "二(1)班")
    page.check("input[name=roles][value=teacher]")
    page.click("button:has-text('保存')")
    assert "已添加 刘芳，绑定码" in status(page)

    page.click("text=导入人员")
    page.set_input_files("input[type=file]", files=[{
        "name": "people.csv", "mimeType": "text/csv",
        "buffer": "姓名,角色,手机\n王老师,教师,13900001111\n刘芳,教师;跟车老师,13900003333\n".encode()}])
    page.click("button:has-text('上传并预览')")
    preview = page.inner_text("#preview")
    assert "第2行\t王老师\t新增" in preview and "第3行\t刘芳\t修改" in preview
    page.click("button:has-text('确认导入')")
    assert "已导入人员：新增 1，更新 1，未变 0" in status(page)
    page.fill("input[name=q]", "王老师")
    page.click("button:has-text('查找')")
    assert "13900001111" in page.inner_text("table")


def test_assign_and_complete_a_ticket_at_phone_width(office, live: str, page: Any, queued) -> None:
    office.add("程财宝", "staff", categories="水电")
    page.set_viewport_size({"width": 375, "height": 740})
    sign_in(page, live)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.goto(f"{live}/admin/repairs")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.click("text=R1")
    page.select_option("select[name=name]", "程财宝")
    page.click("button:has-text('指派')")
    assert "程财宝" in status(page)
    page.fill("form[action$='/complete'] input[name=note]", "已更换灯泡")
    page.click("button:has-text('完成')")
    assert "R1" in status(page) and "已完成" in page.inner_text("pre")
    assert any(q.name == "张丽" and q.kind == "repair_done" and "已更换灯泡" in q.text for q in queued())


def test_acknowledge_a_bus_alarm(people, services, houqin, wechat_user, clock, tmp_path: Path, live: str,
                                 page: Any, queued) -> None:
    bus_alarm(people, services, houqin, wechat_user, clock, tmp_path)
    sign_in(page, live)
    assert "校车警报：1号线 上学" in page.inner_text("#act-now")
    page.fill("#act-now input[name=note]", "车上无人，已点名")
    page.click("#act-now button:has-text('确认')")
    assert "车上无人，已点名" in status(page)
    assert page.locator("#act-now").count() == 0
    assert any(q.name == "李娜" and "车上无人，已点名" in q.text for q in queued(kind="bus_alarm_ack"))


def test_add_a_task_and_see_it_in_the_month(office, live: str, page: Any, clock) -> None:
    clock.set("2026-11-16 10:00")
    sign_in(page, live)
    page.click("nav >> text=行事历")
    assert page.inner_text("h1") == "行事历 · 2026年11月"
    page.fill("input[name=title]", "校园安全巡查")
    page.fill("input[name=rule]", "每月28日")
    page.fill("input[name=assignee]", "周春明")
    page.fill("input[name=checklist]", "门岗；围墙")
    page.click("button:has-text('新增任务')")
    assert "已新增任务「校园安全巡查」" in page.inner_text("main")
    month = page.inner_text("table.month")
    assert "11月28日（周六）" in month and "校园安全巡查（11月）" in month and "未到提醒日" in month


def test_download_a_ledger_and_open_it(office, live: str, page: Any, tmp_path: Path) -> None:
    """台账: the month's 报修台账 downloaded by clicking 下载, as the office would, opens as a print-ready
    workbook: the title row names the school, the ledger and the month; the ticket is in it."""
    from openpyxl import load_workbook

    sign_in(page, live)
    page.click("nav >> text=台账")
    assert page.inner_text("h1") == "台账 · 2026年11月"
    row = page.locator("tr", has_text="报修台账").first
    with page.expect_download() as info:
        row.locator("a:has-text('下载')").first.click()
    download = info.value
    assert download.suggested_filename.endswith(".xlsx")
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    sheet = load_workbook(saved).worksheets[0]
    title = str(sheet.cell(1, 1).value)
    assert "报修台账" in title and "2026年11月" in title
    cells = " ".join(str(c.value) for r in sheet.iter_rows() for c in r if c.value is not None)
    assert "R1" in cells and "投影仪不亮" in cells
    assert sheet.print_title_rows and sheet.page_setup.orientation == "landscape"
