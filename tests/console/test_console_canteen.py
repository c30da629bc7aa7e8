"""食堂 in the console: next week's menu edited in the grid (dishes, allergens, a photo) and 发布 through
the chat's publish_week; a feedback answered on the page through the chat's reply_feedback; the monthly
report with its SVG chart. Bad input is refused in Chinese and changes nothing."""

from __future__ import annotations

import io

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from bot.wechat.fake import fake_jpeg
from models import CanteenReply, MenuItem, MenuWeek
from tests.test_console import PASSWORD, csrf, sign_in

MONDAY_LUNCH = "20261130-lunch"  # 2026-W49, the week after the fixed clock's


@pytest.fixture
def office(people, houqin, clock):
    clock.set("2026-11-23 10:00")  # a Monday: next week is 2026-W49
    people.add("周春明", "admin")
    people.add("宦欢", "canteen")
    people.add("张丽", "teacher")
    assert houqin("console-password", "周春明", "--password", PASSWORD).exit_code == 0
    return people


def grid(client: FlaskClient, **cells: str) -> dict[str, object]:
    data: dict[str, object] = {"csrf": csrf(client, "/admin/canteen/menu"), "week": "2026-W49"}
    data.update(cells)
    return data


def items(services) -> list[tuple[str, str, str, str]]:
    with services.factory() as s:
        return [(f"{i.day:%m-%d}", i.meal, i.dishes, i.allergens) for i in s.scalars(select(MenuItem).order_by(MenuItem.id))]


def test_menu_grid_saves_dishes_allergens_and_a_photo_then_publishes(office, client: FlaskClient, services,
                                                                    queued) -> None:
    sign_in(client)
    page = client.get("/admin/canteen/menu").get_data(as_text=True)
    assert "下周菜单 · 2026-W49（11月30日–12月4日）" in page and "还没有菜单" in page
    assert f'name="dishes-{MONDAY_LUNCH}"' in page and 'name="dishes-20261204-snack"' in page
    assert "发布下周菜单" not in page  # nothing to publish yet
    res = client.post("/admin/canteen/menu", content_type="multipart/form-data", data=grid(
        client, **{f"dishes-{MONDAY_LUNCH}": "红烧鸡腿，番茄炒蛋", f"allergens-{MONDAY_LUNCH}": "鸡蛋",
                   "dishes-20261201-breakfast": "小米粥、鸡蛋", "allergens-20261201-breakfast": "",
                   f"photo-{MONDAY_LUNCH}": (io.BytesIO(fake_jpeg("lunch")), "午餐.jpg")}))
    assert res.status_code == 302
    page = client.get(res.headers["Location"]).get_data(as_text=True)
    assert "2026-W49 菜单已保存：2 餐。" in page and "草稿（未发布）" in page and "有照片" in page
    assert items(services) == [("11-30", "午餐", "红烧鸡腿、番茄炒蛋", "鸡蛋"), ("12-01", "早餐", "小米粥、鸡蛋", "")]
    with services.factory() as s:
        photo = s.scalar(select(MenuItem.photo).where(MenuItem.meal == "午餐"))
    assert photo == "menus/2026-W49/2026-11-30-lunch.jpg"
    assert (services.settings.storage_dir / photo).read_bytes() == fake_jpeg("lunch")

    # emptying a meal removes it; the others stay
    client.post("/admin/canteen/menu", content_type="multipart/form-data", data=grid(
        client, **{f"dishes-{MONDAY_LUNCH}": "红烧鸡腿、番茄炒蛋", f"allergens-{MONDAY_LUNCH}": "鸡蛋",
                   "dishes-20261201-breakfast": "", "allergens-20261201-breakfast": ""}))
    assert items(services) == [("11-30", "午餐", "红烧鸡腿、番茄炒蛋", "鸡蛋")]

    done = client.post("/admin/canteen/menu/publish", data={"csrf": csrf(client, "/admin/canteen/menu"),
                                                            "week": "2026-W49"})
    page = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "已发布下周菜单（2026-W49，1 天）。将于 11月26日（周四） 16:00 推送给家长和教师。" in page
    assert "已发布</span>（周春明" in page and "<button type=\"submit\">发布下周菜单" not in page
    with services.factory() as s:
        week = s.scalar(select(MenuWeek))
        assert week.published and week.published_by.name == "周春明"
    assert queued("weekly_menu") == []  # pushed on Thursday, as from the chat


def test_menu_refusals_change_nothing(office, client: FlaskClient, services) -> None:
    sign_in(client)
    bad_photo = client.post("/admin/canteen/menu", content_type="multipart/form-data", data=grid(
        client, **{f"dishes-{MONDAY_LUNCH}": "红烧鸡腿", f"allergens-{MONDAY_LUNCH}": "",
                   f"photo-{MONDAY_LUNCH}": (io.BytesIO(b"<html>not a photo</html>"), "a.jpg")}))
    assert bad_photo.status_code == 400 and "周一午餐的照片不是图片" in bad_photo.get_data(as_text=True)
    allergens_only = client.post("/admin/canteen/menu", content_type="multipart/form-data", data=grid(
        client, **{f"dishes-{MONDAY_LUNCH}": "", f"allergens-{MONDAY_LUNCH}": "花生"}))
    assert allergens_only.status_code == 400 and "周一午餐写了过敏原但没有菜品" in allergens_only.get_data(as_text=True)
    too_long = client.post("/admin/canteen/menu", content_type="multipart/form-data", data=grid(
        client, **{f"dishes-{MONDAY_LUNCH}": "菜" * 301, f"allergens-{MONDAY_LUNCH}": ""}))
    assert too_long.status_code == 400 and "最多 300 个字" in too_long.get_data(as_text=True)
    no_csrf = client.post("/admin/canteen/menu", data={"week": "2026-W49", f"dishes-{MONDAY_LUNCH}": "红烧鸡腿"})
    assert no_csrf.status_code == 400
    bad_week = client.post("/admin/canteen/menu", data=grid(client, week="2026-W60"))
    assert bad_week.status_code == 400 and "周次「2026-W60」不对" in bad_week.get_data(as_text=True)
    assert client.get("/admin/canteen/menu?week=next").status_code == 400
    nothing = client.post("/admin/canteen/menu/publish", data={"csrf": csrf(client, "/admin/canteen/menu"),
                                                               "week": "2026-W49"})
    assert nothing.status_code == 400 and "下周（2026-W49）的菜单还没有导入，无法发布。" in nothing.get_data(as_text=True)
    assert items(services) == []
    with services.factory() as s:
        assert s.scalar(select(func.count()).select_from(MenuWeek)) == 0


def test_feedback_answered_on_the_page_reaches_the_giver(office, client: FlaskClient, wechat_user, services,
                                                         queued) -> None:
    assert "编号 F1" in wechat_user("张丽").say("食堂 2 汤太咸").text
    sign_in(client)
    page = client.get("/admin/canteen").get_data(as_text=True)
    assert 'action="/admin/canteen/feedback/1/reply"' in page and "月度报告" in page
    empty = client.post("/admin/canteen/feedback/1/reply", data={"csrf": csrf(client, "/admin/canteen"), "text": " "})
    assert empty.status_code == 400 and "请填写回复内容" in empty.get_data(as_text=True)
    assert client.post("/admin/canteen/feedback/9/reply",
                       data={"csrf": csrf(client, "/admin/canteen"), "text": "好"}).status_code == 404
    res = client.post("/admin/canteen/feedback/1/reply",
                      data={"csrf": csrf(client, "/admin/canteen"), "text": "已调整盐量，谢谢反馈"})
    page = client.get(res.headers["Location"]).get_data(as_text=True)
    assert "已将回复发送给 F1 的反馈人（教师）。" in page and "已调整盐量，谢谢反馈" in page
    with services.factory() as s:
        reply = s.scalar(select(CanteenReply))
        assert reply.text == "已调整盐量，谢谢反馈" and reply.person.name == "周春明"
    sent = queued("canteen_reply")
    assert [r.name for r in sent] == ["张丽"] and "已调整盐量，谢谢反馈" in sent[0].text


def test_monthly_report_draws_its_chart(office, client: FlaskClient, wechat_user) -> None:
    wechat_user("张丽").say("食堂 4 米饭有点硬")
    sign_in(client)
    page = client.get("/admin/canteen/report?month=2026-11").get_data(as_text=True)
    assert "食堂月度报告 · 2026年11月" in page and "评价 1 条" in page
    assert '<svg class="chart"' in page and "<title>23日 平均 4.0 分（1 条）</title>" in page
    assert "<td>教师</td><td>1</td><td>4.0</td>" in page
    empty = client.get("/admin/canteen/report?month=2026-10").get_data(as_text=True)
    assert "本月还没有食堂评价" in empty and "<svg" not in empty
    assert client.get("/admin/canteen/report?month=2026-13").status_code == 400


def test_month_figures_count_every_feedback_while_only_the_newest_are_shown(office, client: FlaskClient, wechat_user,
                                                                           clock, services, monkeypatch) -> None:
    """The count, the average over the scores that count, the superseded and food-safety counts are the
    whole month's (SQL aggregates); the table holds only the newest SHOWN rows, and the page reads the
    same few statements however many rows the month has."""
    from sqlalchemy import event

    from bot.console import canteen as page_module
    from tests.test_console import rows_of

    monkeypatch.setattr(page_module, "SHOWN", 2)
    office.add("陈建国", "parent")
    parent, teacher = wechat_user("陈建国"), wechat_user("张丽")
    clock.set("2026-11-24 12:10")
    assert "编号 F1" in parent.say("食堂 1 饭里有头发").text  # superseded by F3: not in the average
    clock.set("2026-11-24 12:20")
    assert "编号 F2" in teacher.say("食堂 5").text
    clock.set("2026-11-24 12:40")
    assert "编号 F3" in parent.say("食堂 3 汤太咸").text
    clock.set("2026-11-25 12:40")
    assert "编号 F4" in teacher.say("食堂 4").text
    sign_in(client)
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    event.listen(services.db_engine, "before_cursor_execute", count)
    try:
        page = client.get("/admin/canteen?month=2026-11").get_data(as_text=True)
    finally:
        event.remove(services.db_engine, "before_cursor_execute", count)
    assert "共 4 条评价，平均 4.0 分（1 条的评分已被同一人当天的新评分取代，不计入平均）" in page
    assert "食品安全 1 条" in page and "下面是最新的 2 条" in page
    shown = [row.split()[0] for row in rows_of(page) if row.startswith("F")]
    assert shown == ["F4", "F3"]
    canteen_reads = [s for s in statements if "canteen_feedback" in s]
    assert len(canteen_reads) <= 4, canteen_reads  # the figures, the shown rows, their photos and replies

    monkeypatch.setattr(page_module, "SHOWN", 4)
    page = client.get("/admin/canteen?month=2026-11").get_data(as_text=True)
    assert [row.split()[0] for row in rows_of(page) if row.startswith("F")] == ["F4", "F3", "F2", "F1"]
    assert "下面是最新的" not in page and "已由 F3 更新，不计入平均" in page


def test_survey_figures_are_the_months_while_only_the_newest_answers_are_listed(office, client: FlaskClient,
                                                                                wechat_user, clock,
                                                                                monkeypatch) -> None:
    """Counts and averages over every answer of the month (the earlier, superseded one too in the count);
    the table lists the newest SURVEYS_SHOWN answers and sends to the 食堂台账 for the rest."""
    from bot.console import canteen as page_module
    from tests.test_console import rows_of

    monkeypatch.setattr(page_module, "SURVEYS_SHOWN", 1)
    teacher = wechat_user("张丽")
    clock.set("2026-11-26 12:40")
    teacher.dialog([("食堂问卷", "第1题"), ("2", ""), ("1", ""), ("3", ""), ("3", ""), ("饭里有头发", "问卷已提交")])
    clock.set("2026-11-26 13:05")
    teacher.dialog([("食堂问卷", "第1题"), ("4", ""), ("4", ""), ("5", ""), ("4", ""), ("无", "仍保留")])
    sign_in(client)
    page = client.get("/admin/canteen?month=2026-11").get_data(as_text=True)
    assert "共 2 份答卷，计入统计 1 份" in page and "平均：口味 4.0 · 卫生 4.0 · 分量 5.0 · 服务 4.0" in page
    assert "下面是最新的 1 份，全部答卷见" in page
    listed = [row for row in rows_of(page) if "学期问卷" in row]
    assert listed == ["11-26 13:05 学期问卷 2026秋 张丽（教师） 4 4 5 4 是"]
