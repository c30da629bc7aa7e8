"""校车 in the console: routes, stops and riders, today's trips, an alarm acknowledged from the page with
what was found (the same people told as by 「确认」 in the chat), leave requests; refusals change nothing."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from bot.console.bus import NOTE_LIMIT
from models import AuditEntry, Student
from models.bus import BusAlarm, BusLeave, BusRoute, BusStop
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


# -- managing routes, stops, riders and leave from the console ----------------------------------------------
@pytest.fixture
def office(school, houqin):  # noqa: F811
    """Routes 1 and 2 (tests/handlers/test_bus.py's school), 周春明 (admin) signed up for the console; 宦欢
    (canteen) and 局里的人 (bureau) too — neither may change the buses."""
    school.add("局里的人", "bureau")
    for name in ("周春明", "宦欢", "局里的人"):
        assert houqin("console-password", name, "--password", PASSWORD).exit_code == 0
    return school


def snapshot(services) -> tuple[object, ...]:
    """Everything the bus actions may change, to show a refusal changed nothing."""
    with services.factory() as s:
        return (sorted((r.number, r.aliases, r.plate, r.driver, r.driver_phone, r.monitors, r.stopped_at is None)
                       for r in s.scalars(select(BusRoute))),
                sorted((st.route.number, st.seq, st.name, st.am_time, st.pm_time) for st in s.scalars(select(BusStop))),
                sorted((st.name, st.class_name, st.route, st.stop) for st in s.scalars(select(Student))),
                sorted((lv.student.name, lv.day, lv.trips, lv.cancelled_at is None) for lv in s.scalars(select(BusLeave))))


def audit(services, action: str) -> list[str]:
    with services.factory() as s:
        return [f"{e.actor}|{e.target}|{e.detail}" for e in s.scalars(select(AuditEntry).where(AuditEntry.action == action)
                                                                         .order_by(AuditEntry.id))]


def ids(services) -> dict[str, int]:
    """Route numbers, stop names and student names → their ids."""
    with services.factory() as s:
        return {**{f"route {r.number}": r.id for r in s.scalars(select(BusRoute))},
                **{st.name: st.id for st in s.scalars(select(BusStop))},
                **{st.name: st.id for st in s.scalars(select(Student))}}


def post(client: FlaskClient, path: str, **form: str):
    return client.post(path, data={"csrf": csrf(client, "/admin/bus"), **form})


def flashed(client: FlaskClient, res) -> str:
    assert res.status_code == 302, res.get_data(as_text=True)
    return client.get(res.headers["Location"]).get_data(as_text=True)


def refused(res, words: str) -> None:
    assert res.status_code == 400 and words in res.get_data(as_text=True), res.get_data(as_text=True)


def test_routes_added_edited_stopped_and_resumed(office, client: FlaskClient, services, wechat_user) -> None:
    sign_in(client)
    before = snapshot(services)
    refused(post(client, "/admin/bus/routes", number="一号线"), "已有1号线，请换一个线路号。")
    refused(post(client, "/admin/bus/routes", number="东门线"), "线路号「东门线」不对")
    route_one = ids(services)["route 1"]
    refused(post(client, f"/admin/bus/routes/{route_one}/stop"),
            "1号线还有 3 名学生乘坐（刘欣怡、陈小明、赵子轩），请先把他们移出本线路，再停运。")
    refused(post(client, f"/admin/bus/routes/{route_one}/edit", plate="苏" * 21), "「车牌」太长了：最多 20 个字。")
    assert client.post("/admin/bus/routes", data={"number": "3"}).status_code == 400  # no CSRF token
    assert snapshot(services) == before and audit(services, "bus_route_add") == []

    page = flashed(client, post(client, "/admin/bus/routes", number="3号线"))
    assert "已添加3号线" in page and 'id="route-3"' in page
    page = flashed(client, post(client, f"/admin/bus/routes/{route_one}/edit", aliases="一号线、龙城线", plate="苏D·54321",
                                driver="钱师傅", driver_phone="13900000001", monitors="李娜、张丽"))
    assert "已保存1号线：车牌：苏D·12345→苏D·54321；跟车老师：李娜→李娜;张丽。" in page
    assert "跟车老师 李娜、张丽" in page
    route_three = ids(services)["route 3"]
    page = flashed(client, post(client, f"/admin/bus/routes/{route_three}/stop"))
    assert "3号线已停运" in page and "（2026-11-23 停运）" in page
    assert "现有线路：1号线、2号线。" in wechat_user("李娜").say("校车 3号线 上车 1").text  # the chat no longer runs it
    page = flashed(client, post(client, f"/admin/bus/routes/{route_three}/resume"))
    assert "3号线已恢复运行。" in page
    assert [a.split("|")[1] for a in audit(services, "bus_route_edit")] == ["1号线"]
    assert len(audit(services, "bus_route_add")) == 1 and len(audit(services, "bus_route_stop")) == 1
    assert audit(services, "bus_route_resume")[0].startswith("周春明|3号线|")


def test_stops_added_edited_moved_and_removed_students_follow(office, client: FlaskClient, services,
                                                              wechat_user) -> None:
    sign_in(client)
    route_one = ids(services)["route 1"]
    before = snapshot(services)
    refused(post(client, f"/admin/bus/routes/{route_one}/stops", name="西门", am="25:00"),
            "时间「25:00」格式不对：请写成 07:10。")
    refused(post(client, f"/admin/bus/routes/{route_one}/stops", name="龙城花园"), "1号线已有站点「龙城花园」。")
    refused(post(client, f"/admin/bus/routes/{route_one}/stops", name=""), "请填写站点名称。")
    refused(post(client, f"/admin/bus/stops/{ids(services)['龙城花园']}/delete"),
            "站点「龙城花园」还有 2 名学生（刘欣怡、陈小明），请先给他们换站点或移出线路，再删除。")
    refused(post(client, f"/admin/bus/stops/{ids(services)['龙城花园']}/move", direction="up"),
            "「龙城花园」已经是1号线的第一站。")
    assert snapshot(services) == before

    page = flashed(client, post(client, f"/admin/bus/routes/{route_one}/stops", name="西门", am="7:40", pm="16：30"))
    assert "已在1号线添加站点「西门」（第3站）。" in page
    west = ids(services)["西门"]
    flashed(client, post(client, f"/admin/bus/stops/{west}/move", direction="up"))
    page = flashed(client, post(client, f"/admin/bus/stops/{ids(services)['龙城花园']}/edit", name="龙城花园北门",
                                am="07:05", pm="16:55"))
    assert "已保存1号线站点「龙城花园北门」：站点：龙城花园→龙城花园北门；上学时间：07:10→07:05。" in page
    with services.factory() as s:
        stops = [(st.seq, st.name, st.am_time, st.pm_time) for st in
                 s.scalars(select(BusStop).join(BusRoute).where(BusRoute.number == "1").order_by(BusStop.seq))]
        assert stops == [(1, "龙城花园北门", "07:05", "16:55"), (2, "西门", "07:40", "16:30"), (3, "青龙路口", "07:25", "16:40")]
        assert {st.name: st.stop for st in s.scalars(select(Student).where(Student.route == "1"))} == {
            "陈小明": "龙城花园北门", "刘欣怡": "龙城花园北门", "赵子轩": "青龙路口"}
    page = flashed(client, post(client, f"/admin/bus/stops/{west}/delete"))
    assert "已删除1号线站点「西门」。" in page
    with services.factory() as s:
        assert [(st.seq, st.name) for st in s.scalars(select(BusStop).join(BusRoute).where(BusRoute.number == "1")
                                                      .order_by(BusStop.seq))] == [(1, "龙城花园北门"), (2, "青龙路口")]
    assert audit(services, "bus_stop_edit") == ["周春明|1号线 龙城花园北门|站点：龙城花园→龙城花园北门；上学时间：07:10→07:05"]
    assert [len(audit(services, a)) for a in ("bus_stop_add", "bus_stop_move", "bus_stop_remove")] == [1, 1, 1]
    assert "应到 3 人" in wechat_user("李娜").say("校车 1号线 上车 3").text  # the riders still counted


def test_riders_found_by_class_put_on_a_stop_and_taken_off(office, client: FlaskClient, services,
                                                           wechat_user) -> None:
    sign_in(client)
    page = client.get("/admin/bus?q=四(1)班").get_data(as_text=True)
    found = page[page.index('id="found"'):page.index("</table>", page.index('id="found"'))]
    assert "赵子轩" in found and "孙悦" in found and "陈小明" not in found
    assert "没有找到「王小二」" in client.get("/admin/bus?q=王小二").get_data(as_text=True)
    sun, crossing = ids(services)["孙悦"], ids(services)["青龙路口"]
    page = flashed(client, post(client, "/admin/bus/riders", student=str(sun), stop=str(crossing)))
    assert "孙悦（四(1)班）：2号线 新北万达→1号线 青龙路口。" in page
    refused(post(client, "/admin/bus/riders", student=str(sun), stop=str(crossing)), "孙悦已经在1号线「青龙路口」站。")
    assert client.post("/admin/bus/riders", data={"csrf": csrf(client, "/admin/bus"), "student": "999999",
                                                  "stop": str(crossing)}).status_code == 404
    assert "应到 4 人" in wechat_user("李娜").say("校车 1号线 上车 4").text  # the monitor's roster now has her
    page = flashed(client, post(client, "/admin/bus/riders/remove", student=str(sun)))
    assert "孙悦（四(1)班）不再乘坐校车：1号线 青龙路口→（不坐校车）。" in page
    refused(post(client, "/admin/bus/riders/remove", student=str(sun)), "孙悦没有登记校车线路。")
    with services.factory() as s:
        assert s.get(Student, sun).route == "" and s.get(Student, sun).stop == ""
    assert [a.split("|")[1] for a in audit(services, "bus_rider_set") + audit(services, "bus_rider_remove")] == [
        "四(1)班孙悦", "四(1)班孙悦"]


def test_leave_requested_and_cancelled_changes_the_monitors_count(office, client: FlaskClient, services,
                                                                   wechat_user, clock) -> None:
    office.student("王小二", "四(1)班")  # rides no bus
    sign_in(client)
    before = snapshot(services)
    for form, words in (({"student": "王大锤"}, "没有找到学生「王大锤」。"),
                        ({"student": "王小二"}, "王小二没有登记校车线路，无需请假。"),
                        ({"student": ""}, "请填写学生姓名"),
                        ({"day": "2026-11-20"}, "日期「2026-11-20」不对"),
                        ({"day": "2027-01-20"}, "日期「2027-01-20」不对"),
                        ({"until": "2026-11-22"}, "结束日期「2026-11-22」不对"),
                        ({"trips": "night"}, "趟次不对")):
        res = post(client, "/admin/bus/leaves", **{"student": "陈小明", "day": "2026-11-23", "trips": "am", **form})
        refused(res, words)
    assert snapshot(services) == before and audit(services, "bus_leave") == []

    page = flashed(client, post(client, "/admin/bus/leaves", student="三(2)班陈小明", day="2026-11-23", trips="am"))
    assert "已为陈小明请假：" in page and "上学校车不乘坐。" in page
    page = flashed(client, post(client, "/admin/bus/leaves", student="赵子轩", day="2026-11-23", until="2026-11-25"))
    assert "已为赵子轩请假 3 天（11-23 至 11-25，全天）。" in page
    with services.factory() as s:
        leaves = list(s.scalars(select(BusLeave).order_by(BusLeave.id)))
        assert [(lv.student.name, lv.day.day, lv.trips, lv.requested_by.name) for lv in leaves] == [
            ("陈小明", 23, "am", "周春明"), ("赵子轩", 23, "all", "周春明"), ("赵子轩", 24, "all", "周春明"),
            ("赵子轩", 25, "all", "周春明")]
        chen = leaves[0].id
    clock.set("2026-11-23 07:30")
    monitor = wechat_user("李娜")
    assert "应到 1 人" in monitor.say("校车 1号线 上车 1").text  # 陈小明 and 赵子轩 on leave
    page = flashed(client, post(client, f"/admin/bus/leaves/{chen}/cancel"))
    assert "已为陈小明销假：11月23日 上学照常乘坐校车。" in page
    refused(post(client, f"/admin/bus/leaves/{chen}/cancel"), "这条请假已经销假了。")
    assert "应到 2 人" in monitor.say("校车 1号线 上车 2").text  # back on the roster
    assert len(audit(services, "bus_leave")) == 2 and audit(services, "bus_leave_cancel")[0].startswith("周春明|三(2)班陈小明|")


def test_bus_actions_refuse_other_roles(office, app, services) -> None:
    before = snapshot(services)
    route_one, first_stop, chen = ids(services)["route 1"], ids(services)["龙城花园"], ids(services)["陈小明"]
    for name in ("宦欢", "局里的人"):
        other = app.test_client()
        sign_in(other, name)
        token = csrf(other, "/admin/account")
        for path, form in (("/admin/bus/routes", {"number": "5"}), (f"/admin/bus/routes/{route_one}/edit", {"plate": "x"}),
                           (f"/admin/bus/routes/{route_one}/stop", {}), (f"/admin/bus/routes/{route_one}/stops", {"name": "x"}),
                           (f"/admin/bus/stops/{first_stop}/edit", {"name": "x"}),
                           (f"/admin/bus/stops/{first_stop}/move", {"direction": "down"}),
                           (f"/admin/bus/stops/{first_stop}/delete", {}), ("/admin/bus/riders/remove", {"student": str(chen)}),
                           ("/admin/bus/leaves", {"student": "陈小明", "day": "2026-11-24"})):
            assert other.post(path, data={"csrf": token, **form}).status_code == 403, (name, path)
    bureau = app.test_client()
    sign_in(bureau, "局里的人")
    page = bureau.get("/admin/bus").get_data(as_text=True)
    assert "龙城花园" in page and "添加站点" not in page and "销假" not in page and "请假</button>" not in page
    assert snapshot(services) == before
