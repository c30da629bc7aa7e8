"""The public mobile menu page /menu/<year>-W<week>: published weeks only, Chinese, phone-sized,
allergens marked, photos served; drafts and unknown weeks are 404."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from bot.services import Services
from handlers.canteen import import_menu
from models import MenuItem, MenuWeek

MENU_CSV = """日期,餐次,菜品,过敏原,照片
2026-11-23,早餐,豆浆;鸡蛋<饼>,大豆;鸡蛋,
2026-11-23,午餐,红烧鸡腿;番茄炒蛋;米饭,鸡蛋,lunch.jpg
2026-11-26,午餐,清蒸鲈鱼;宫保鸡丁,鱼;花生,
2026-11-26,点心,苹果,,
2026-11-30,午餐,红烧肉;米饭,,
"""
JPEG = b"\xff\xd8\xff\xe0" + b"fake-jpeg" * 10


@pytest.fixture
def menus(services: Services, tmp_path: Path, clock) -> Path:
    """W48 (23-29 November 2026) published with a lunch photo; W49 a draft. Today is Thursday the 26th."""
    clock.set("2026-11-26 11:00")
    folder = tmp_path / "upload"
    folder.mkdir()
    (folder / "lunch.jpg").write_bytes(JPEG)
    (folder / "menu.csv").write_text(MENU_CSV, encoding="utf-8")
    with services.factory() as s, s.begin():
        assert import_menu(s, folder / "menu.csv", storage=services.settings.storage_dir) == 5
        s.scalar(select(MenuWeek).where(MenuWeek.week == 48)).status = "published"
    return folder


def publish(services: Services, week: int) -> None:
    with services.factory() as s, s.begin():
        s.scalar(select(MenuWeek).where(MenuWeek.week == week)).status = "published"


def item_id(services: Services, day: str, meal: str) -> int:
    with services.factory() as s:
        return int(s.scalar(select(MenuItem.id).where(MenuItem.day == date.fromisoformat(day), MenuItem.meal == meal)))


def test_published_week_is_a_chinese_phone_page_with_allergens_marked(menus, client: FlaskClient) -> None:
    res = client.get("/menu/2026-W48")
    assert res.status_code == 200 and res.mimetype == "text/html"
    page = res.get_data(as_text=True)
    assert '<html lang="zh-CN">' in page and 'name="viewport" content="width=device-width' in page
    assert "<title>11月23日–11月26日 食堂菜单</title>" in page
    assert "周一 11月23日" in page and "周四 11月26日" in page
    assert "<li>红烧鸡腿</li><li>番茄炒蛋</li><li>米饭</li>" in page
    assert "⚠ 含过敏原：鱼、花生" in page and "⚠ 含过敏原：大豆、鸡蛋" in page
    assert "标出的饭菜含：大豆、花生、鱼、鸡蛋。" in page  # the legend lists every allergen of the week
    assert page.count("⚠ 含过敏原") == 3  # 苹果 has none
    assert "鸡蛋&lt;饼&gt;" in page and "鸡蛋<饼>" not in page  # dish names are escaped
    assert 'id="d2026-11-26"' in page and '<span class="tag">今天</span>' in page
    assert "下一周" not in page  # W49 is still a draft


def test_drafts_unknown_and_malformed_weeks_are_404(menus, client: FlaskClient, services: Services) -> None:
    assert client.get("/menu/2026-W49").status_code == 404  # draft
    assert client.get("/menu/2026-W50").status_code == 404  # nothing imported
    assert client.get("/menu/2026-W60").status_code == 404  # no such ISO week
    assert client.get("/menu/latest").status_code == 404
    publish(services, 49)
    res = client.get("/menu/2026-W49")
    assert res.status_code == 200 and "红烧肉" in res.get_data(as_text=True)
    assert 'href="/menu/2026-W48"' in res.get_data(as_text=True)  # 上一周
    assert 'href="/menu/2026-W49">下一周' in client.get("/menu/2026-W48").get_data(as_text=True)


def test_a_week_with_no_published_menu_is_a_chinese_phone_page(menus, client: FlaskClient) -> None:
    """A parent who taps an old or early link reads why there is no menu, in Chinese, not Flask's English 404."""
    for key in ("2026-W49", "2026-W60", "latest"):  # a draft, no such ISO week, no week at all
        res = client.get(f"/menu/{key}")
        page = res.get_data(as_text=True)
        assert res.status_code == 404 and "Not Found" not in page
        assert "这一周的菜单还没有发布" in page and 'href="/menu"' in page and 'name="viewport"' in page


def test_menu_redirects_to_this_week(menus, client: FlaskClient) -> None:
    res = client.get("/menu")
    assert res.status_code == 302 and res.headers["Location"].endswith("/menu/2026-W48")


def test_photo_of_a_published_meal_is_served_and_a_drafts_is_not(menus, client: FlaskClient,
                                                                  services: Services) -> None:
    lunch = item_id(services, "2026-11-23", "午餐")
    page = client.get("/menu/2026-W48").get_data(as_text=True)
    assert f'src="/menu/photo/{lunch}"' in page
    res = client.get(f"/menu/photo/{lunch}")
    assert res.status_code == 200 and res.data == JPEG and res.mimetype == "image/jpeg"
    assert client.get(f"/menu/photo/{item_id(services, '2026-11-23', '早餐')}").status_code == 404  # no photo
    with services.factory() as s, s.begin():
        s.scalar(select(MenuWeek).where(MenuWeek.week == 48)).status = "draft"
    assert client.get(f"/menu/photo/{lunch}").status_code == 404
