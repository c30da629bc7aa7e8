"""A push's detail page /p/<token>: the whole text and when it was sent, a repair ticket's current status
and history, a menu push's week; unguessable, private (noindex, no Referer), closed after `push_page_days`;
an unknown or expired link is a Chinese page; a long customer-service push carries the link."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.outbox import page_url
from bot.services import Services
from handlers.canteen import import_menu
from models import MenuWeek, Push

LONG = "投影仪不亮，" + "开机后屏幕一直闪烁然后黑屏，换了电源线也不行，" * 14  # > 300 characters
LINK = re.compile(r"查看全文：(http://127\.0\.0\.1:5000/p/[A-Za-z0-9_-]+)$")
MENU_CSV = """日期,餐次,菜品,过敏原
2026-11-23,午餐,红烧鸡腿;番茄炒蛋;米饭,鸡蛋
2026-11-26,午餐,清蒸鲈鱼;宫保鸡丁;米饭,鱼;花生
"""


@pytest.fixture
def school(people, clock):
    """殷奇 looks after 电教; 张丽 teaches; 周春明 is admin; 宦欢 runs the canteen."""
    clock.set("2026-11-24 10:00")
    people.add("周春明", "admin")
    people.add("殷奇", "staff", categories="电教")
    people.add("张丽", "teacher", class_name="三(2)班")
    people.add("宦欢", "canteen")
    return people


def page_of(services: Services, kind: str) -> str:
    """The path of the latest `kind` push's page, as its link gives it."""
    with services.factory() as s:
        push = s.scalars(select(Push).where(Push.kind == kind).order_by(Push.id.desc())).first()
        assert push is not None, f"no {kind} push"
        url = page_url(services.settings, push)
    assert url.startswith(services.settings.public_url + "/p/")
    return url.removeprefix(services.settings.public_url)


def test_repair_push_page_shows_text_time_and_the_tickets_status_now(school, wechat_user, services, client,
                                                                     clock) -> None:
    teacher, worker = wechat_user("张丽"), wechat_user("殷奇")
    assert "R1" in teacher.say("报修 三(2)班 投影仪不亮").text
    page = page_of(services, "repair_new")
    first = client.get(page)
    assert first.status_code == 200 and first.mimetype == "text/html"
    html = first.get_data(as_text=True)
    assert '<html lang="zh-CN">' in html and 'name="viewport"' in html
    assert "<title>新报修 / 安全隐患</title>" in html
    assert "11月24日 10:00 推送" in html
    assert "【新报修】R1 三(2)班 · 电教：投影仪不亮（报修人：张丽）" in html
    assert "报修单 R1 · 待接单" in html and "张丽报修" in html
    clock.set("2026-11-24 10:30")
    assert "已接单 R1" in worker.say("接单 R1").text
    clock.set("2026-11-24 11:00")
    assert "已完成 R1" in worker.say("完成 R1 已更换灯泡").text
    later = client.get(page).get_data(as_text=True)  # the first push's page shows the ticket as it is now
    assert "报修单 R1 · 已完成待评价" in later
    steps = re.findall(r"<li><time>([^<]+)</time>([^<]+)</li>", later)
    assert steps == [("11月24日 10:00", "张丽报修"), ("11月24日 10:30", "殷奇接单"), ("11月24日 11:00", "已修好：已更换灯泡")]
    assert "【报修完成】R1" in client.get(page_of(services, "repair_done")).get_data(as_text=True)


def test_repair_page_history_has_follow_ups_the_withdrawal_and_photo_count(school, people, wechat_user, services,
                                                                           client, clock) -> None:
    people.add("王强", "teacher")
    zhang, wang = wechat_user("张丽"), wechat_user("王强")
    zhang.say("报修 三(2)班 投影仪不亮")
    assert "第1张" in zhang.image(media_id="media_first").text
    clock.set("2026-11-24 10:05")
    assert "R1" in wang.say("报修 三(2)班 投影仪还是不亮").text
    clock.set("2026-11-24 10:20")
    assert zhang.say("撤销 R1 自己修好了").text.startswith("已撤销 R1")
    html = client.get(page_of(services, "repair_new")).get_data(as_text=True)
    assert "报修单 R1 · 已撤销" in html and "报修照片 1 张" in html
    steps = re.findall(r"<li><time>([^<]+)</time>([^<]+)</li>", html)
    assert steps == [("11月24日 10:00", "张丽报修"), ("11月24日 10:05", "王强补充：投影仪还是不亮"),
                     ("11月24日 10:20", "张丽撤销（自己修好了）")]


def test_page_is_private_unguessable_and_kept_out_of_indexes(school, wechat_user, services, client) -> None:
    wechat_user("张丽").say("报修 三(2)班 投影仪不亮")
    wechat_user("张丽").say("报修 四(1)班 门锁坏了")
    with services.factory() as s:
        tokens = list(s.scalars(select(Push.token).where(Push.kind == "repair_new")))
    assert len(tokens) == 2 and len(set(tokens)) == 2
    assert all(t and len(t) >= 22 and re.fullmatch(r"[A-Za-z0-9_-]+", t) for t in tokens)  # ≥ 128 random bits
    res = client.get(page_of(services, "repair_new"))
    assert res.headers["Referrer-Policy"] == "no-referrer"
    assert "no-store" in res.headers["Cache-Control"]
    assert '<meta name="robots" content="noindex, nofollow">' in res.get_data(as_text=True)


def test_page_closes_after_push_page_days_with_a_chinese_page(school, wechat_user, services, client, clock,
                                                               houqin) -> None:
    wechat_user("张丽").say("报修 三(2)班 投影仪不亮")
    page = page_of(services, "repair_new")
    clock.set("2026-12-24 09:59")  # 30 days less a minute
    assert client.get(page).status_code == 200
    clock.set("2026-12-24 10:00")
    gone = client.get(page)
    assert gone.status_code == 410 and gone.headers["Referrer-Policy"] == "no-referrer"
    html = gone.get_data(as_text=True)
    assert '<html lang="zh-CN">' in html and "<title>页面已过期</title>" in html
    assert "推送后保留30天" in html and "投影仪" not in html
    assert houqin("setting", "push_page_days", "60").exit_code == 0
    assert client.get(page).status_code == 200
    refused = houqin("setting", "push_page_days", "0")
    assert refused.exit_code != 0
    assert "push_page_days = '60'" in houqin("setting").output


def test_unknown_link_is_a_chinese_page_not_flasks_404(school, client) -> None:
    for path in ("/p/nosuchtoken", "/p/" + "A" * 32):
        res = client.get(path)
        assert res.status_code == 404 and res.headers["Referrer-Policy"] == "no-referrer"
        html = res.get_data(as_text=True)
        assert "<title>页面不存在</title>" in html and "没有找到这条推送" in html and "Not Found" not in html


def test_menu_push_page_shows_the_weeks_menu(school, wechat_user, services, client, tmp_path: Path, clock) -> None:
    clock.set("2026-11-26 10:00")  # Thursday of 2026-W48
    path = tmp_path / "menu.csv"
    path.write_text(MENU_CSV, encoding="utf-8")
    with services.factory() as s, s.begin():
        assert import_menu(s, path) == 2
    wechat_user("张丽")
    assert "已发布" in wechat_user("宦欢").say("发布菜单 本周").text
    html = client.get(page_of(services, "weekly_menu")).get_data(as_text=True)
    assert "11月23日–11月26日 食堂菜单" in html
    assert "<li>清蒸鲈鱼</li><li>宫保鸡丁</li><li>米饭</li>" in html and "⚠ 含过敏原：鱼、花生" in html
    assert 'class="day today"' in html  # Thursday marked as on the menu page
    with services.factory() as s:  # the menu changes back to a draft: the page shows the text only
        s.scalar(select(MenuWeek).where(MenuWeek.week == 48)).status = "draft"
        s.commit()
    draft = client.get(page_of(services, "weekly_menu")).get_data(as_text=True)
    assert "清蒸鲈鱼" in draft and "<li>清蒸鲈鱼</li>" not in draft  # in the push's text, not as a menu


def test_long_customer_service_push_links_its_page_and_a_short_one_does_not(school, wechat_user, services,
                                                                             fake_wechat, deliver, client) -> None:
    worker = wechat_user("殷奇")  # bound just now: the 48-hour window is open, and no template is configured
    teacher = wechat_user("张丽")
    teacher.say("报修 三(2)班 投影仪有点暗")
    teacher.say(f"报修 四(1)班 {LONG}")
    deliver()
    sent = fake_wechat.sent_to("殷奇")
    assert len(sent) == 2
    short, long = sorted(sent, key=lambda call: len(call.text))
    assert short.mentions("R1", "投影仪有点暗") and "查看全文" not in short.text
    assert long.mentions("R2", LONG)
    link = LINK.search(long.text)
    assert link is not None
    res = client.get(link[1].removeprefix(services.settings.public_url))
    assert res.status_code == 200 and LONG in res.get_data(as_text=True)
    assert worker.say("接单 R2").text.startswith("已接单 R2")
