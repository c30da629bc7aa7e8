"""校车 in the console: routes, stops and riders, today's trips, an alarm acknowledged from the page with
what was found (the same people told as by 「确认」 in the chat), leave requests; refusals change nothing."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from bot.console.bus import NOTE_LIMIT
from models.bus import BusAlarm
from tests.handlers.test_bus import school  # noqa: F401  (the fixture: routes 1 and 2, their riders)
from tests.test_console import PASSWORD, csrf, sign_in


@pytest.fixture
def alarm(school, wechat_user, houqin, clock):  # noqa: F811
    """Route 1's afternoon trip: 3 on, 2 off — an open alarm; 周春明 (admin) signs in to the console."""
    assert houqin("console-password", "周春明", "--password", PASSWORD).exit_code == 0
    monitor = wechat_user("李娜")
    assert "请假" in wechat_user("张丽").say("请假 孙悦 明天").text
    clock.set("2026-11-23 16:35")
    monitor.say("校车 1号线 上车 3")
    assert "少 1 人" in monitor.say("校车 1号线 下车 2").text
    return school


def open_alarms(services) -> list[BusAlarm]:
    with services.factory() as s:
        return list(s.scalars(select(BusAlarm).where(BusAlarm.acknowledged_at.is_(None))))


def route_id(page: str) -> str:
    match = re.search(r'action="/admin/bus/routes/(\d+)/acknowledge"', page)
    assert match, page
    return match.group(1)


def test_bus_page_needs_sign_in(client: FlaskClient) -> None:
    res = client.get("/admin/bus")
    assert res.status_code == 302 and "/admin/login" in res.headers["Location"]
    assert client.post("/admin/bus/routes/1/acknowledge").status_code in (302, 400)


def test_bus_page_shows_routes_trips_alarm_and_leave(alarm, client: FlaskClient) -> None:
    sign_in(client)
    page = client.get("/admin/bus").get_data(as_text=True)
    assert "1号线：放学趟 16:35 少 1 人" in page and "确认1号线警报" in page
    assert "龙城花园" in page and "07:10" in page and "2 人：三(2)班刘欣怡、三(2)班陈小明" in page
    assert "1号线（一号线、龙城线）" in page and "钱师傅 13900000001" in page and "跟车老师 李娜" in page
    assert re.search(r"<td>1号线</td><td>放学</td><td>3</td>\s*<td>3</td>\s*<td>2 <span class=\"alarm\">（少 1 人）", page)
    assert "孙悦" in page and "11月24日" in page and "全天" in page  # the leave for tomorrow


def test_acknowledge_from_the_console_records_what_was_found_and_tells_the_others(alarm, client: FlaskClient,
                                                                                 services, queued, clock) -> None:
    sign_in(client)
    page = client.get("/admin/bus").get_data(as_text=True)
    clock.set("2026-11-23 16:42")
    res = client.post(f"/admin/bus/routes/{route_id(page)}/acknowledge",
                      data={"csrf": csrf(client, "/admin/bus"), "note": "后排发现学生睡着了，已送回家"})
    assert res.status_code == 302 and res.headers["Location"].endswith("/admin/bus")
    page = client.get("/admin/bus").get_data(as_text=True)
    assert "已确认1号线警报（1条），确认人：周春明，时间 16:42。情况：后排发现学生睡着了，已送回家。" in page
    assert "没有未确认的校车警报" in page and "后排发现学生睡着了，已送回家</td>" in page
    assert open_alarms(services) == []
    with services.factory() as s:
        done = s.scalar(select(BusAlarm))
        assert done.acknowledged_by.name == "周春明" and done.note == "后排发现学生睡着了，已送回家"
    told = queued("bus_alarm_ack")
    assert {r.name for r in told} == {"李娜", "宦欢"} and "周春明于 16:42 确认" in told[0].text


def test_acknowledge_refusals_change_nothing(alarm, client: FlaskClient, services) -> None:
    sign_in(client)
    target = f"/admin/bus/routes/{route_id(client.get('/admin/bus').get_data(as_text=True))}/acknowledge"
    assert client.post(target, data={"note": "x"}).status_code == 400  # no CSRF token
    long = client.post(target, data={"csrf": csrf(client, "/admin/bus"), "note": "长" * (NOTE_LIMIT + 1)})
    assert long.status_code == 400 and "「检查情况」太长了：最多 500 个字。" in long.get_data(as_text=True)
    assert client.post("/admin/bus/routes/999/acknowledge",
                       data={"csrf": csrf(client, "/admin/bus"), "note": ""}).status_code == 404
    assert len(open_alarms(services)) == 1
