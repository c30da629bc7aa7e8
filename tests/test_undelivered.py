"""Issue 11, point 3: a reply says someone was notified only when a channel that can reach them was
used; whoever cannot be reached is named, and the office is told another way (a push to the other
admins, a red banner on the console until acknowledged, the daily digest). Safety pushes that the
worker fails to deliver escalate too. Through the webhook, the worker, the console and the CLI."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from bot.config import Settings
from bot.outbox import KIND_NAMES, WINDOW_CLOSED
from bot.services import Services
from models import Delivery, DeliveryAlert, Person
from models.outbox import FAILED, UNDELIVERABLE

PASSWORD = "后勤2026secret"
CUSTOM = "message/custom/send"
WINDOW_SHUT = "48小时内未与公众号互动，且该类推送未配置模板"


@pytest.fixture
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """One send at a time, so scripted WeChat errors hit the recipients in queue order."""
    return settings.with_overrides(push_concurrency=1, **getattr(request, "param", {}))


def at(local: str) -> datetime:
    return datetime.strptime(local, "%Y-%m-%d %H:%M").replace(tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture
def school(people: Any, clock: Any, wechat_user: Any) -> Any:
    """Tuesday 08:00 宦欢 (canteen) and 周春明 (admin) write to the bot; by Thursday 10:00 their
    48-hour windows have closed. 王芳 (admin) writes on Thursday, so hers is open."""
    clock.set("2026-11-24 08:00")
    people.add("周春明", "admin")
    people.add("王芳", "admin")
    people.add("宦欢", "canteen")
    people.add("张丽", "teacher")
    people.add("陈建国", "parent")
    people.add("程财宝", "staff", categories="电教;水电;其他")
    wechat_user("宦欢")
    wechat_user("周春明")
    clock.set("2026-11-26 10:00")
    wechat_user("王芳")
    return people


def alerts(services: Services) -> list[DeliveryAlert]:
    with services.factory() as s:
        return list(s.scalars(select(DeliveryAlert).order_by(DeliveryAlert.id)))


def sign_in(client: FlaskClient, houqin: Any, name: str = "王芳") -> None:
    assert houqin("console-password", name, "--password", PASSWORD).exit_code == 0
    page = client.get("/admin/login").get_data(as_text=True)
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token
    res = client.post("/admin/login", data={"csrf": token.group(1), "name": name, "password": PASSWORD})
    assert res.status_code == 302


def csrf(client: FlaskClient) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', client.get("/admin/").get_data(as_text=True))
    assert match
    return match.group(1)


# -- replies ---------------------------------------------------------------------------------------
def test_food_safety_reply_names_who_could_not_be_reached_and_tells_the_office(
        school, wechat_user, deliver, fake_wechat, services: Services) -> None:
    reply = wechat_user("陈建国").say("食堂 1 饭里有头发，孩子吃完拉肚子").text
    assert "已立即通知食堂负责人和管理员" not in reply
    assert f"你的反馈涉及食品安全，已通知王芳；宦欢、周春明暂时无法送达（{WINDOW_SHUT}），已告知王芳。" in reply

    rows = alerts(services)
    assert [(a.name, a.reason, a.safety) for a in rows] == [("宦欢", WINDOW_CLOSED, True),
                                                           ("周春明", WINDOW_CLOSED, True)]
    with services.factory() as s:  # recorded undeliverable at once: the worker never tries them
        assert {d.status for d in s.scalars(select(Delivery).join(Person).where(Person.name == "宦欢"))} == {
            UNDELIVERABLE}
    deliver()
    assert fake_wechat.sent_to("宦欢") == [] and fake_wechat.sent_to("周春明") == []
    got = [c.text for c in fake_wechat.sent_to("王芳")]
    admin_alert = next(t for t in got if t.startswith("【食品安全反馈】"))
    assert "陈建国（家长）" in admin_alert and "已同时通知食堂负责人" not in admin_alert
    assert f"食堂负责人：宦欢暂时无法送达（{WINDOW_SHUT}），已告知王芳。" in admin_alert
    assert any(t.startswith("【推送未送达】食品安全反馈未能送达宦欢") for t in got)
    assert any(t.startswith("【推送未送达】食品安全反馈未能送达周春明") for t in got)


def test_reachable_people_are_named_as_notified(school, wechat_user, deliver, fake_wechat, services) -> None:
    wechat_user("宦欢").say("我")  # she writes again: her window reopens
    wechat_user("周春明").say("我")
    reply = wechat_user("陈建国").say("食堂 1 饭菜变质了").text
    assert "你的反馈涉及食品安全，已通知宦欢、周春明、王芳。" in reply
    assert alerts(services) == []
    deliver()
    assert fake_wechat.sent_to("宦欢")[-1].mentions("【食品安全反馈】", "变质")


@pytest.mark.parametrize("settings", [{"templates": {"canteen_alert": "TPL_FOOD"}}], indirect=True,
                         ids=["template"])
def test_a_template_reaches_people_whose_window_has_closed(school, wechat_user, services) -> None:
    reply = wechat_user("陈建国").say("食堂 1 饭里有头发").text
    assert "已通知宦欢、周春明、王芳。" in reply and alerts(services) == []


def test_urgent_repair_to_someone_unbound_says_so(school, wechat_user, services) -> None:
    reply = wechat_user("张丽").say("报修 三(2)班 水管漏水了").text
    assert "已提交紧急报修 R1" in reply
    assert f"已通知王芳；程财宝暂时无法送达（未绑定微信），周春明暂时无法送达（{WINDOW_SHUT}），已告知王芳。" in reply
    assert [a.name for a in alerts(services)] == ["程财宝", "周春明"]


def test_a_plain_repair_that_reaches_nobody_is_not_claimed(school, wechat_user, services) -> None:
    reply = wechat_user("张丽").say("报修 三(2)班 投影仪不亮").text
    assert "已通知" not in reply
    assert "程财宝暂时无法送达（未绑定微信），已告知王芳。" in reply
    (alert,) = alerts(services)
    assert (alert.name, alert.safety) == ("程财宝", False)
    assert "报修人：已通知张丽。" in wechat_user("程财宝").say("完成 R1").text
    # the reporter is told what happens next; 「请再次处理」 is the staff member's push, not the reporter's reply
    assert wechat_user("张丽").say("未修好 R1").text == "已重新打开 R1，等待再次维修：已通知程财宝。"


# -- 回复 F<n> -------------------------------------------------------------------------------------
def test_canteen_reply_held_by_quiet_hours_says_when_it_arrives(school, wechat_user, clock, queued) -> None:
    parent = wechat_user("陈建国")
    parent.say("食堂 2 菜太咸")
    clock.set("2026-11-26 22:00")
    canteen = wechat_user("宦欢")
    answer = canteen.say("回复 F1 已调整盐量").text
    assert answer == "回复已记录。夜间免打扰，将在 07:00 后送达 F1 的反馈人（家长）。"
    (row,) = queued("canteen_reply")
    assert row.due == at("2026-11-27 07:00") and row.status == "pending"


def test_canteen_reply_to_a_giver_who_unbound(school, wechat_user, services) -> None:
    parent = wechat_user("陈建国")
    parent.say("食堂 2 菜太咸")
    assert "确认解绑" in parent.say("解绑").text
    assert "已解绑" in parent.say("确认解绑").text
    answer = wechat_user("宦欢").say("回复 F1 已调整盐量").text
    assert answer == "回复已记录。F1 的反馈人（家长）：对方已解绑，无法送达。"
    assert alerts(services) == []  # the giver stays anonymous: nothing to escalate


# -- the worker ------------------------------------------------------------------------------------
@pytest.mark.parametrize("settings, error, status", [({"push_max_attempts": 1}, -1, FAILED),
                                                     ({}, 43004, UNDELIVERABLE)],
                         indirect=["settings"], ids=["failed-after-attempts", "user-refuses"])
def test_safety_push_the_worker_cannot_deliver_escalates_once(school, wechat_user, deliver, fake_wechat,
                                                              services, error: int, status: str) -> None:
    wechat_user("程财宝")
    wechat_user("周春明").say("我")
    reply = wechat_user("张丽").say("报修 三(2)班 水管漏水了").text
    assert "已通知程财宝、周春明、王芳。" in reply and alerts(services) == []
    fake_wechat.script(CUSTOM, error)  # the first send, to 程财宝, fails
    deliver()
    (alert,) = alerts(services)
    assert alert.name == "程财宝" and alert.safety and alert.acknowledged_at is None
    with services.factory() as s:
        row = s.scalar(select(Delivery).join(Person).where(Person.name == "程财宝"))
        assert row is not None and row.status == status
    for admin in ("周春明", "王芳"):
        assert fake_wechat.sent_to(admin)[-1].mentions("【推送未送达】紧急报修未能送达程财宝", "水管漏水了")
    deliver()
    assert len(alerts(services)) == 1  # reported once


# -- the console and the digest --------------------------------------------------------------------
def test_console_banner_stays_until_an_admin_acknowledges(school, wechat_user, client, houqin, services) -> None:
    wechat_user("陈建国").say("食堂 1 饭里有头发")
    sign_in(client, houqin)
    page = client.get("/admin/").get_data(as_text=True)
    assert "未能送达的通知（2 条待确认）" in page
    assert "宦欢" in page and "周春明" in page and WINDOW_SHUT in page and "食品安全反馈（安全）" in page
    assert client.post("/admin/alerts/acknowledge", data={"alert": "1"}).status_code == 400  # no CSRF token
    first = alerts(services)[0]
    res = client.post("/admin/alerts/acknowledge", data={"csrf": csrf(client), "alert": str(first.id)})
    assert res.status_code == 302
    page = client.get("/admin/").get_data(as_text=True)
    assert "未能送达的通知（1 条待确认）" in page
    assert client.post("/admin/alerts/acknowledge", data={"csrf": csrf(client), "alert": "x"}).status_code == 400
    client.post("/admin/alerts/acknowledge", data={"csrf": csrf(client)})
    assert "未能送达的通知" not in client.get("/admin/").get_data(as_text=True)
    assert [(a.acknowledged_by, a.acknowledged_at is not None) for a in alerts(services)] == [("王芳", True)] * 2


def test_daily_digest_lists_the_unacknowledged(school, wechat_user, runner, queued) -> None:
    wechat_user("陈建国").say("食堂 1 饭里有头发")
    runner.run_now("send_daily_digest", at("2026-11-26 17:00"))
    digest = queued("daily_digest")[-1].text
    assert "■ 未送达通知" in digest
    assert f"⚠宦欢未收到食品安全反馈（{WINDOW_SHUT}）" in digest
    assert "共 2 条未确认" in digest


def test_console_says_which_pushes_cannot_arrive_without_templates(school, client, houqin) -> None:
    sign_in(client, houqin)
    page = client.get("/admin/").get_data(as_text=True)
    assert "未配置模板消息" in page and "48小时内没有给公众号发过消息的人，收不到以下推送" in page
    assert "食品安全反馈" in page and "紧急报修" in page and "校车警报" in page


@pytest.mark.parametrize("settings", [{"templates": {kind: f"TPL_{i}" for i, kind in enumerate(KIND_NAMES)}}],
                         indirect=True, ids=["all-templates"])
def test_console_is_quiet_about_templates_once_every_kind_has_one(school, client, houqin) -> None:
    sign_in(client, houqin)
    assert "未配置模板消息" not in client.get("/admin/").get_data(as_text=True)
