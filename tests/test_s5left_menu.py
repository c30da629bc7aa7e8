"""The Thursday menu push (push_weekly_menu) for a county, end to end: each school's canteen imports its own
week (`houqin menu import --school …`) and publishes it in chat (发布菜单) on its own account; the scheduler's
tick runs the job for each school at that school's Thursday 16:00 in its own timezone and calendar; each
school's parents get their school's menu alone — in the template's fields, through the school's own account,
and on the push's page — and a school on holiday next week, or without a menu, sends its parents nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from bot.county import County
from bot.services import Services
from models import Push
from scheduler.registry import JOBS
from scheduler.runner import CountyRunner
from tests import test_schools
from tests.conftest import People
from tests.test_schools import OWN_AES, OWN_TOKEN, School

county = test_schools.county  # the fixture: the schools a test adds are dropped afterwards

MENU_DATA = json.dumps({"thing1": "{week}", "thing2": "{dishes}"})
# 2026-W49: Monday 30 November to Friday 4 December; Thursday 26 November is the push's day
MENUS = {
    "default": "2026-11-30,午餐,红烧狮子头;米饭,\n2026-12-01,午餐,糖醋排骨;米饭,\n",
    "north": "2026-11-30,午餐,手抓饭;羊肉串,\n2026-12-01,午餐,拉条子;米饭,\n",
    "south": "2026-11-30,午餐,白切鸡;米饭,\n",
}
LUNCH = {"default": "红烧狮子头", "north": "手抓饭", "south": "白切鸡"}
SOUTH_CALENDAR = "日期,类型,备注\n2026-09-01,开学,2026秋学期\n2027-01-22,学期结束,2026秋学期\n" \
                 "2026-11-30~2026-12-04,放假,冬季运动周\n"
SHANGHAI_FOUR = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)  # Thursday 16:00 in Shanghai, 14:00 in Urumqi
URUMQI_FOUR = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)  # Thursday 16:00 in Urumqi (UTC+6)


@pytest.fixture
def menu_schools(county: County, services: Services, settings: Any, clock: Any) -> Iterator[dict[str, School]]:
    """本校 (Shanghai), 北城小学 (its own account, Urumqi), 南城小学 (shared, on holiday next week), 东城小学
    (shared, no menu): each with a canteen manager, an admin, a teacher and a parent."""
    clock.set("2026-11-24 10:00")  # Tuesday: the canteens publish next week's menu
    county.add("north", "北城小学", appid="wxnorth", token=OWN_TOKEN, secret="northsecret", aes_key=OWN_AES,
               tz_name="Asia/Urumqi")
    county.add("south", "南城小学")
    county.add("east", "东城小学")
    made = {}
    for slug, name in (("default", "本校"), ("north", "北城"), ("south", "南城"), ("east", "东城")):
        svc = county.services(slug)
        own = slug == "north"
        people = People(svc)
        for who, role in (("食堂", "canteen"), ("校长", "admin"), ("老师", "teacher"), ("家长", "parent")):
            people.add(f"{name}{who}", role)
        made[slug] = School(slug, svc, people, "/wechat/north" if own else "/wechat",
                            OWN_TOKEN if own else settings.wechat_token, "wxnorth" if own else settings.wechat_appid,
                            OWN_AES if own else settings.wechat_aes_key)
    yield made


def _prefix(slug: str) -> str:
    return {"default": "本校", "north": "北城", "south": "南城", "east": "东城"}[slug]


def test_each_school_gets_its_own_menu_at_its_own_thursday_four(menu_schools: dict[str, School], app: Flask,
                                                                houqin: Any, fake_wechat: Any, tmp_path: Path,
                                                                clock: Any, settings: Any) -> None:
    client = app.test_client()
    # the scheduler runs from the start: what the office sets up below reaches it without a restart
    runner = CountyRunner(menu_schools["default"].services, [j for j in JOBS if j.id == "push_weekly_menu"])
    for slug, rows in MENUS.items():  # the office's way: a file per school, imported as drafts
        path = tmp_path / f"{slug}.csv"
        path.write_text("日期,餐次,菜品,过敏原\n" + rows, encoding="utf-8")
        imported = houqin("menu", "import", str(path), "--school", slug)
        assert imported.exit_code == 0, imported.output
    calendar = tmp_path / "south-calendar.csv"
    calendar.write_text(SOUTH_CALENDAR, encoding="utf-8")
    assert houqin("calendar", "import", str(calendar), "--school", "south").exit_code == 0
    for slug in menu_schools:
        set_menu = houqin("templates", "set", "weekly_menu=TPL_MENU", "--school", slug, "--data", MENU_DATA)
        assert set_menu.exit_code == 0, set_menu.output
    users = {}
    for slug, school in menu_schools.items():
        name = _prefix(slug)
        for who in ("校长", "老师", "家长"):
            users[(slug, who)] = school.user(client, f"{name}{who}")
        if slug in MENUS:
            published = school.user(client, f"{name}食堂").say("发布菜单").text
            assert published.startswith("已发布下周菜单（2026-W49"), published
            assert "11月26日（周四） 16:00" in published  # each at its own Thursday 16:00

    def results(at: datetime) -> dict[str, str]:
        return {slug: run.result for slug, runs in runner.tick(at).items() for run in runs}

    assert results(SHANGHAI_FOUR) == {  # 16:00 in Shanghai: 北城 (14:00 in Urumqi) not yet
        "default": "已推送下周菜单 2026-W49 给 2 位家长和教师",
        "south": "下周没有上课日，不推送菜单",
        "east": "下周菜单未导入：已告知管理员，未推送"}
    assert results(SHANGHAI_FOUR) == {}  # a second tick (or scheduler): nothing twice
    assert not _menu_pushes(menu_schools["north"].services)
    assert results(URUMQI_FOUR) == {"north": "已推送下周菜单 2026-W49 给 2 位家长和教师"}
    assert results(URUMQI_FOUR) == {}

    clock.set("2026-11-26 18:01")  # past every school's 16:00: every school's worker delivers
    for school in menu_schools.values():
        school.deliver()
    for slug, school in menu_schools.items():
        parent = users[(slug, "家长")].openid
        menus = [c for c in fake_wechat.sent_to_openid(parent) if c.body.get("template_id") == "TPL_MENU"]
        if slug not in ("default", "north"):  # on holiday, or no menu: nothing
            assert menus == [] and not _menu_pushes(school.services), slug
            continue
        (call,) = menus
        fields = {k: v["value"] for k, v in call.body["data"].items()}
        assert fields["thing1"] == "11月30日-12月1日" and LUNCH[slug] in fields["thing2"], fields
        assert not any(dish in fields["thing2"] for other, dish in LUNCH.items() if other != slug), fields
        sender = next(a for a, t in fake_wechat.fake.state.stable.items() if t == call.params["access_token"])
        assert sender == ("wxnorth" if slug == "north" else settings.wechat_appid)  # the school's own account
        page = client.get(call.body["url"].removeprefix("http://127.0.0.1:5000"))
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert LUNCH[slug] in html and "11月30日–12月1日 食堂菜单" in html
        assert not any(dish in html for other, dish in LUNCH.items() if other != slug), slug
    # who was told instead: 东城's admin (no menu), nobody at 南城 (no school days next week)
    with menu_schools["east"].services.factory() as db:
        told = db.scalars(select(Push).where(Push.kind == "menu_unpublished")).one()
        assert "未导入" in told.text and [d.openid for d in told.deliveries] == [users[("east", "校长")].openid]
    assert _kinds(menu_schools["east"].services) == ["menu_unpublished"]
    assert _kinds(menu_schools["south"].services) == []


def _menu_pushes(services: Services) -> list[Push]:
    with services.factory() as db:
        return list(db.scalars(select(Push).where(Push.kind == "weekly_menu")))


def _kinds(services: Services) -> list[str]:
    with services.factory() as db:
        return [p.kind for p in db.scalars(select(Push).where(Push.kind.like("menu%")).order_by(Push.id))]
