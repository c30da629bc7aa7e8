"""日程 in the console: the month calendar marked (放假 over a span, 调休, cleared) as the school-day rules
read it; drills planned, and kept once logged; the safety-education topics; fire self-checks."""

from __future__ import annotations

from datetime import date

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from bot.school import Calendar
from models import AuditEntry, CalendarDay, Drill, SafetyTopic
from tests.test_console import PASSWORD, csrf, sign_in


@pytest.fixture
def office(people, houqin, clock):
    clock.set("2026-09-21 10:00")
    people.add("周春明", "admin")
    people.add("张丽", "teacher")
    assert houqin("console-password", "周春明", "--password", PASSWORD).exit_code == 0
    return people


def test_marking_the_calendar_changes_school_days(office, client: FlaskClient, services) -> None:
    sign_in(client)
    page = client.get("/admin/calendar?month=2026-10").get_data(as_text=True)
    assert "日程 · 2026年10月" in page and "本月上课日 22 天" in page
    token = csrf(client, "/admin/calendar")
    res = client.post("/admin/calendar/days", data={"csrf": token, "first": "2026-10-01", "last": "2026-10-07",
                                                    "kind": "holiday", "note": "国庆节"})
    assert res.status_code == 302 and res.headers["Location"].endswith("/admin/calendar?month=2026-10")
    client.post("/admin/calendar/days", data={"csrf": token, "first": "2026-10-10", "kind": "workday", "note": "调休"})
    page = client.get("/admin/calendar?month=2026-10").get_data(as_text=True)
    assert "已将 2026-10-10 标记为「调休上课」（1 天）。" in page and "放假：国庆节" in page
    assert "本月上课日 18 天" in page  # 22 less 5 weekdays of 国庆 plus Saturday the 10th
    with services.factory() as s:
        school = Calendar(s)
        assert not school.is_school_day(date(2026, 10, 2))
        assert school.is_school_day(date(2026, 10, 10))
        assert s.scalar(select(AuditEntry).where(AuditEntry.action == "calendar_mark")).actor == "周春明"
    client.post("/admin/calendar/days", data={"csrf": token, "first": "2026-10-01", "last": "2026-10-31",
                                              "kind": "clear"})
    with services.factory() as s:
        assert list(s.scalars(select(CalendarDay))) == []


def test_calendar_refusals_change_nothing(office, client: FlaskClient, services) -> None:
    sign_in(client)
    token = csrf(client, "/admin/calendar")
    for form, words in (({"first": "十月一日", "kind": "holiday"}, "日期「十月一日」不对"),
                        ({"first": "2026-10-07", "last": "2026-10-01", "kind": "holiday"}, "结束日期不能早于开始日期"),
                        ({"first": "2026-10-01", "kind": "party"}, "请选择类型"),
                        ({"first": "2026-10-01", "kind": "holiday", "note": "x" * 201}, "最多 200 个字")):
        res = client.post("/admin/calendar/days", data={"csrf": token, **form})
        assert res.status_code == 400 and words in res.get_data(as_text=True), form
    assert client.post("/admin/calendar/days", data={"first": "2026-10-01", "kind": "holiday"}).status_code == 400
    with services.factory() as s:
        assert list(s.scalars(select(CalendarDay))) == []


def test_drills_planned_logged_ones_kept_and_topics_saved(office, client: FlaskClient, services, wechat_user,
                                                          clock) -> None:
    clock.set("2026-09-23 09:00")
    sign_in(client)
    token = csrf(client, "/admin/calendar")
    assert "时间「25:00」不对" in client.post("/admin/calendar/drills", data={
        "csrf": token, "day": "2026-09-23", "at": "25:00", "kind": "消防疏散"}).get_data(as_text=True)
    res = client.post("/admin/calendar/drills", data={"csrf": token, "day": "2026-09-23", "at": "10:00",
                                                      "kind": "消防疏散", "scope": ""})
    page = client.get(res.headers["Location"]).get_data(as_text=True)
    assert "已安排 2026-09-23 10:00 消防疏散演练（全校）。" in page and "未记录" in page
    clock.set("2026-09-23 10:30")
    assert "已记录" in wechat_user("周春明").say("演练 完成 3.5 二楼东楼梯拥挤").text
    page = client.get("/admin/calendar?month=2026-09").get_data(as_text=True)
    assert "已完成：疏散用时 3.5 分钟，问题：二楼东楼梯拥挤" in page
    with services.factory() as s:
        drill = s.scalar(select(Drill))
    kept = client.post(f"/admin/calendar/drills/{drill.id}/delete", data={"csrf": token})
    assert kept.status_code == 400 and "已记录结果，不能删除" in kept.get_data(as_text=True)

    res = client.post("/admin/calendar/topics", data={"csrf": token, "month": "11", "topics": "防火、冬季交通安全",
                                                      "activities": "消防演练", "back": "2026-09"})
    assert "已保存11月的安全教育专题" in client.get(res.headers["Location"]).get_data(as_text=True)
    assert client.post("/admin/calendar/topics", data={"csrf": token, "month": "13", "topics": "x"}).status_code == 400
    with services.factory() as s:
        topic = s.get(SafetyTopic, 11)
        assert topic.topics == "防火、冬季交通安全" and topic.activities == "消防演练"
