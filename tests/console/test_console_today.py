"""今日: what needs action comes first — an unacknowledged left-on-bus alarm (确认 from the page, as the
chat's 确认: the monitor is told), overdue tickets, missed duties — each linking to where to act."""

from __future__ import annotations

from pathlib import Path

from flask.testing import FlaskClient

from bot.school import set_setting
from handlers.bus import import_routes
from tests.handlers.test_bus import ROUTES_CSV
from tests.test_console import PASSWORD, csrf


def test_bus_alarm_comes_first_and_is_acknowledged_from_the_page(people, services, houqin, wechat_user, client,
                                                               clock, queued, tmp_path: Path) -> None:
    clock.set("2026-11-23 07:00")
    people.add("周春明", "admin")
    people.add("李娜", "bus_monitor", "teacher", route="1")
    for name in ("陈小明", "刘欣怡", "赵子轩"):
        people.student(name, route="1", stop="龙城花园")
    csv = tmp_path / "routes.csv"
    csv.write_text(ROUTES_CSV, encoding="utf-8")
    with services.factory() as s, s.begin():
        import_routes(s, csv)
        set_setting(s, "bus_manager", "周春明")
    assert houqin("console-password", "周春明", "--password", PASSWORD).exit_code == 0
    monitor = wechat_user("李娜")
    monitor.say("1号线 上车 3")
    clock.set("2026-11-23 07:50")
    monitor.say("1号线 下车 2")
    client.post("/admin/login", data={"csrf": csrf(client), "name": "周春明", "password": PASSWORD})
    page = client.get("/admin/").get_data(as_text=True)
    assert page.index("需要处理") < page.index("<h2>校车</h2>")
    assert "校车警报：1号线 上学，下车比上车少 1 人" in page
    form = page[page.index("校车警报"):]
    action = form[form.index('action="') + 8:].split('"')[0]
    res = client.post(action, data={"csrf": csrf(client, "/admin/"), "note": "车上无人，已点名"})
    assert res.status_code == 302
    after = client.get(res.headers["Location"]).get_data(as_text=True)
    assert "车上无人，已点名" in after and "校车警报：" not in after
    told = [q for q in queued(kind="bus_alarm_ack")]
    assert any(q.name == "李娜" and "车上无人，已点名" in q.text for q in told), told
    assert "确认校车警报" in client.get("/admin/audit").get_data(as_text=True)
    assert client.post("/admin/bus-alarms/999/acknowledge", data={"csrf": csrf(client, "/admin/")}).status_code == 404


def test_overdue_ticket_links_to_it(office, client: FlaskClient, clock) -> None:
    clock.advance(days=10)
    client.post("/admin/login", data={"csrf": csrf(client), "name": "周春明", "password": PASSWORD})
    page = client.get("/admin/").get_data(as_text=True)
    section = page[page.index("需要处理"):page.index("<h2>校车</h2>")]
    assert "超时未修好" in section and 'href="/admin/repairs/R1"' in section
