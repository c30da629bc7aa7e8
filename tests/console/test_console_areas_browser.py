"""食堂, 校车 and 推送 in a real browser (the harness of test_console_browser.py): fill next week's menu in
the grid and 发布 it, 确认 a bus alarm on the 校车 page with what was found, compose a 通知 to a class's
parents, read its preview and send it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from models import MenuWeek
from models.voice import Notice
from tests.console.test_console_browser import browser, live, page, sign_in, status  # noqa: F401
from tests.console.test_console_canteen import MONDAY_LUNCH
from tests.console.test_console_canteen import office as canteen_office  # noqa: F401
from tests.handlers.test_bus import school  # noqa: F401


def test_publish_a_menu(canteen_office, live: str, page: Any, services) -> None:  # noqa: F811
    sign_in(page, live)
    page.goto(f"{live}/admin/canteen/menu")
    assert "下周菜单 · 2026-W49" in page.inner_text("h1")
    page.fill(f"textarea[name='dishes-{MONDAY_LUNCH}']", "红烧鸡腿、番茄炒蛋")
    page.fill(f"input[name='allergens-{MONDAY_LUNCH}']", "鸡蛋")
    page.fill("textarea[name='dishes-20261201-lunch']", "清蒸鱼、炒青菜")
    page.click("button:has-text('保存菜单')")
    assert "2026-W49 菜单已保存：2 餐。" in status(page)
    assert page.input_value(f"input[name='allergens-{MONDAY_LUNCH}']") == "鸡蛋"
    page.click("button:has-text('发布下周菜单')")
    assert "已发布下周菜单（2026-W49，2 天）" in status(page)
    assert page.locator("button:has-text('发布下周菜单')").count() == 0
    with services.factory() as s:
        assert s.scalar(select(MenuWeek)).published


def test_acknowledge_a_bus_alarm_on_the_bus_page(school, houqin, wechat_user, clock, live: str, page: Any,  # noqa: F811
                                                 queued) -> None:
    from tests.test_console import PASSWORD

    assert houqin("console-password", "周春明", "--password", PASSWORD).exit_code == 0
    clock.set("2026-11-23 16:35")
    monitor = wechat_user("李娜")
    monitor.say("校车 1号线 上车 3")
    monitor.say("校车 1号线 下车 2")
    sign_in(page, live)
    page.click("nav >> text=校车")
    assert "1号线：放学趟 16:35 少 1 人" in page.inner_text(".banner")
    page.fill(".banner textarea[name=note]", "后排发现学生睡着了，已送回家")
    page.click("button:has-text('确认1号线警报')")
    assert "情况：后排发现学生睡着了，已送回家。" in status(page)
    assert "没有未确认的校车警报" in page.inner_text("main")
    assert {q.name for q in queued(kind="bus_alarm_ack")} == {"李娜", "宦欢"}


def test_compose_a_notice(canteen_office, wechat_user, live: str, page: Any, services, queued) -> None:  # noqa: F811
    canteen_office.add("陈建国", "parent")
    canteen_office.student("陈小明", "三(2)班")
    assert "陈小明" in wechat_user("陈建国").say(f"绑定 {canteen_office.code_of('陈小明')}").text
    sign_in(page, live)
    page.goto(f"{live}/admin/outbox")
    page.click("text=发通知")
    page.check("input[name=audience][value=class]")
    page.fill("input[name=class_name]", "三(2)班")
    page.fill("input[name=title]", "周五停水")
    page.fill("textarea[name=body]", "周五下午学校停水，请带好饮用水。")
    page.click("button:has-text('预览')")
    assert "预览：三(2)班家长，共 1 人" in page.inner_text("main")
    assert "请回复「收到 N1」确认（回执）" in page.inner_text(".preview")
    page.click("button:has-text('发送给 1 人')")
    assert "通知 N1 已发出（1 人）：已通知陈建国。" in status(page)
    with services.factory() as s:
        assert s.scalar(select(Notice)).title == "周五停水"
    assert [q.name for q in queued(kind="notice")] == ["陈建国"]
