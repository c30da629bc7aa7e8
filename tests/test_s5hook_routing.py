"""What the webhook reads less of per message (issue 15, the county webhook's CPU) still decides the same:
the bus manager named in settings (read with the message), who a repair report goes to (staff and admins
in one query), and a repeat report's reporter and assignee (joined in the ticket's query, their roles and
bindings loaded only to tell them)."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from bot.school import set_setting
from bot.services import Services
from handlers.bus import ACK_NOTHING_OPEN, ACK_REFUSED, HELP_ACK
from tests.conftest import heard


@pytest.fixture
def school(people, clock):
    clock.set("2026-11-23 16:40")  # a Monday
    people.add("周春明", "admin", "staff", categories="电教")
    people.add("程财宝", "staff", categories="水电;门窗")
    people.add("殷奇", "staff", categories="电教")
    people.add("宦欢", "canteen")
    people.add("张丽", "teacher")
    people.add("王强", "teacher")
    return people


def test_the_bus_manager_named_in_settings_is_read_with_each_message(school, wechat_user, services: Services) -> None:
    """Whether a sender is the bus manager is read with their message: a change in the console is what the
    very next message sees (no cache), both ways."""
    manager, teacher = wechat_user("宦欢"), wechat_user("张丽")
    assert HELP_ACK not in manager.say("帮助 校车").text
    assert manager.say("确认 1号线").text.startswith(ACK_REFUSED)
    with services.factory() as s, s.begin():
        set_setting(s, "bus_manager", "宦欢")
    assert HELP_ACK in manager.say("帮助 校车").text
    assert manager.say("确认").text == ACK_NOTHING_OPEN
    assert HELP_ACK not in teacher.say("帮助 校车").text
    assert teacher.say("确认 1号线").text.startswith(ACK_REFUSED)
    with services.factory() as s, s.begin():
        set_setting(s, "bus_manager", "张丽")
    assert manager.say("确认 1号线").text.startswith(ACK_REFUSED)
    assert HELP_ACK not in manager.say("帮助 校车").text
    assert HELP_ACK in teacher.say("帮助 校车").text and teacher.say("确认").text == ACK_NOTHING_OPEN


def test_a_report_goes_to_the_staff_of_its_category_else_the_admins_once(school, wechat_user, fake_wechat,
                                                                         deliver) -> None:
    """Staff and admins are read in one query and told apart by their roles: 周春明 (admin, and staff for
    电教) hears of a 电教 fault as staff beside 殷奇, and of a fault nobody's categories cover as admin, once."""
    wechat_user("周春明"), wechat_user("程财宝"), wechat_user("殷奇")
    teacher = wechat_user("张丽")
    filed = teacher.say("报修 三(2)班 投影仪不亮").text
    assert "R1" in filed and "殷奇" in filed and "周春明" in filed and "程财宝" not in filed
    filed = teacher.say("报修 操场 栏杆松动").text  # 安全: nobody's category
    assert "R2" in filed and "周春明" in filed and "殷奇" not in filed and "程财宝" not in filed
    deliver()
    assert heard(fake_wechat, "殷奇", "R1") and heard(fake_wechat, "周春明", "R1")
    assert heard(fake_wechat, "周春明", "R2") and not heard(fake_wechat, "殷奇", "R2")
    assert len([c for c in fake_wechat.sent_to("周春明") if c.mentions("R2")]) == 1
    assert not fake_wechat.sent_to("程财宝")


def test_a_repeat_report_tells_the_assignee_and_names_the_reporter(school, wechat_user, fake_wechat, deliver,
                                                                   services: Services) -> None:
    """A repeat report of an accepted ticket goes to whoever accepted it (their bindings are loaded to tell
    them), names the first reporter in the ticket, and loads no one's roles: outside quiet hours telling
    someone needs their bindings only."""
    zhang, wang, staff = wechat_user("张丽"), wechat_user("王强"), wechat_user("殷奇")
    zhang.say("报修 三(2)班 投影仪不亮")
    assert "殷奇已接单" in staff.say("接单 R1").text or "R1" in staff.say("我的报修").text
    deliver()
    roles_read: list[str] = []

    def record(conn, cursor, statement, parameters, *args) -> None:
        if statement.lstrip().startswith("SELECT person_roles."):  # a person's roles (lazy or selectin)
            roles_read.append(statement)

    event.listen(services.db_engine, "before_cursor_execute", record)
    try:
        reply = wang.say("报修 三(2)班 投影仪没画面").text
    finally:
        event.remove(services.db_engine, "before_cursor_execute", record)
    assert "已有报修 R1" in reply and "已通知殷奇" in reply and "你已关注 R1" in reply
    assert roles_read == []  # (were 3: the sender's, the reporter's, the assignee's) the roles came with the message
    deliver()
    assert heard(fake_wechat, "殷奇", "R1", "王强也报告了「投影仪没画面」")
    assert not heard(fake_wechat, "周春明", "投影仪没画面")
    assert "已有报修 R1" in wang.say("报修 三(2)班 投影仪还是不亮").text  # followed: asked by one query


def test_every_response_carries_the_security_headers_once(client, wechat_user, school) -> None:
    """Set in one pass over a response's headers (bot._security_headers): each of them once, the webhook's
    replies and refusals included; one a page set already is kept."""
    from bot import SECURITY_HEADERS

    for res in (client.get("/healthz"), client.get("/wechat?signature=bad&timestamp=1&nonce=1"),
                client.post("/wechat", data=b"<xml/>")):
        for name, value in SECURITY_HEADERS.items():
            assert res.headers.getlist(name) == [value], (res.status_code, name)
    assert "你可以发送" in wechat_user("张丽").say("帮助").text
