"""行事历 in the console: the month's due, done and overdue tasks with links to each T<n> (checklist
answers, linked repairs), the tasks with their next due dates, adding / editing / stopping a task checked
as the import checks a row (a bad rule: a Chinese error and nothing changed), marking a T<n> done with a
note, the ledger's downloads; bureau reads, staff are refused; every change in the 操作记录."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from bot.console.auth import set_password
from models import AuditEntry, FireCheck, Person, Task, TaskOccurrence
from tests.handlers.test_tasks import FIRE, at, import_tasks, school  # noqa: F401
from tests.test_console import PASSWORD, csrf, sign_in


@pytest.fixture
def office(school, houqin, services, tmp_path: Path, clock):  # noqa: F811
    """周春明 (admin) with a console password; a bureau reader and staff 殷奇 with theirs; the fire
    self-check and a weekly task imported on 20 October."""
    school.add("教育局王科长", "bureau")
    assert houqin("console-password", "周春明", "--password", PASSWORD).exit_code == 0
    with services.factory() as s, s.begin():
        for name in ("教育局王科长", "殷奇"):
            set_password(s, s.scalar(select(Person).where(Person.name == name)), "abcdefgh1")
    clock.set("2026-10-20 09:00")
    assert import_tasks(houqin, tmp_path, FIRE + "设备巡检,每月第2个周三,殷奇,3,3,\n").exit_code == 0
    return school


def tasks_of(services) -> dict[str, tuple[str, str, bool]]:
    with services.factory() as s:
        return {t.title: (t.rule, t.assignee, t.active) for t in s.scalars(select(Task))}


def audit(services, action: str) -> list[str]:
    with services.factory() as s:
        return [e.detail for e in s.scalars(select(AuditEntry).where(AuditEntry.action == action))]


def test_month_view_links_each_occurrence_and_marks_it_done(office, client: FlaskClient, runner, wechat_user,
                                                             services, clock) -> None:
    runner.run_now("remind_tasks", at("2026-11-05 08:00"))  # T1 消防设备自检（11月）
    runner.run_now("remind_tasks", at("2026-11-09 08:00"))  # T2 设备巡检（11月）, due on the 11th
    clock.set("2026-11-05 08:05")
    assert "第1/5项：灭火器压力" in wechat_user("程财宝").say("完成 T1").text
    for answer in ("正常", "异常 二楼 消防栓箱门损坏", "报修"):
        wechat_user("程财宝").say(answer)
    clock.set("2026-11-16 10:00")
    sign_in(client)
    page = client.get("/admin/tasks?month=2026-11").get_data(as_text=True)
    assert "行事历 · 2026年11月" in page and 'href="/admin/tasks/occurrences/T1"' in page
    assert "11月5日（周四）" in page and "消防设备自检（11月）" in page
    assert "11月11日（周三）" in page and "设备巡检（11月）" in page and "已逾期" in page
    assert "/admin/ledgers/tasks.xlsx?month=2026-11" in page
    assert "<td>每月5日(顺延)</td><td>消防</td><td>2026-11-05（周四）</td>" in page  # the list: the open T1 is next
    t1 = client.get("/admin/tasks/occurrences/T1").get_data(as_text=True)
    assert "灭火器压力" in t1 and "二楼 消防栓箱门损坏" in t1 and 'href="/admin/repairs/R1"' in t1
    assert client.get("/admin/tasks/occurrences/T99").status_code == 404

    token = csrf(client, "/admin/tasks/occurrences/T2")
    done = client.post("/admin/tasks/occurrences/T2/done", data={"csrf": token, "note": "补查，均正常"})
    assert done.status_code == 302
    assert "已记录 T2 设备巡检（11月） 完成（备注：补查，均正常）" in client.get(done.headers["Location"]).get_data(True)
    again = client.post("/admin/tasks/occurrences/T2/done", data={"csrf": token, "note": ""})
    assert again.status_code == 400 and "无需重复提交" in again.get_data(as_text=True)
    with services.factory() as s:
        t2 = s.scalar(select(TaskOccurrence).where(TaskOccurrence.number == 2))
        assert t2.done_by.name == "周春明" and t2.note == "补查，均正常"
    assert audit(services, "task_done") == ["已记录 T2 设备巡检（11月） 完成（备注：补查，均正常）。"]
    page = client.get("/admin/tasks?month=2026-11").get_data(as_text=True)
    assert "已完成 1 项，已逾期 1 项" in page and "周春明 11-16 10:00" in page  # T1's checklist is half done


def test_the_fire_check_marked_done_in_the_console_closes_the_month_record(office, client: FlaskClient, runner,
                                                                            services, clock) -> None:
    runner.run_now("remind_tasks", at("2026-11-05 08:00"))
    clock.set("2026-11-06 10:00")
    sign_in(client)
    res = client.post("/admin/tasks/occurrences/T1/done", data={"csrf": csrf(client, "/admin/tasks"), "note": ""})
    assert res.status_code == 302
    with services.factory() as s:
        assert s.get(FireCheck, "2026-11").done_at is not None


def test_add_edit_and_stop_a_task(office, client: FlaskClient, services, clock) -> None:
    clock.set("2026-11-16 10:00")
    sign_in(client)
    form = {"csrf": csrf(client, "/admin/tasks"), "title": "树木修剪", "rule": "12月 15日(顺延)", "assignee": "程财宝",
            "remind": "5", "escalate": "3", "checklist": "高枝；枯枝"}
    before = tasks_of(services)
    for change, words in (({"rule": "每月32日"}, "规则「每月32日」的日期不对"), ({"rule": "随时"}, "规则「随时」看不懂"),
                          ({"assignee": "李四"}, "负责「李四」"), ({"remind": "九十"}, "提醒提前天数「九十」须为 0 到 60"),
                          ({"title": "设备巡检"}, "任务「设备巡检」已存在"), ({"title": ""}, "任务为空")):
        res = client.post("/admin/tasks", data={**form, **change})
        assert res.status_code == 400 and words in res.get_data(as_text=True), change
    assert tasks_of(services) == before
    assert client.post("/admin/tasks", data=form).status_code == 302
    assert tasks_of(services)["树木修剪"] == ("12月 15日(顺延)", "程财宝", True)
    page = client.get("/admin/tasks?month=2026-12").get_data(as_text=True)
    assert "已新增任务「树木修剪」" in page and "12月15日（周二）" in page and "树木修剪（12月）" in page

    with services.factory() as s:
        tree = s.scalar(select(Task.id).where(Task.title == "树木修剪"))
        fire = s.scalar(select(Task.id).where(Task.title == "消防设备自检"))
    assert "高枝；枯枝" in client.get(f"/admin/tasks/{tree}").get_data(as_text=True)
    bad = client.post(f"/admin/tasks/{tree}", data={**form, "rule": "每周八"})
    assert bad.status_code == 400 and "看不懂" in bad.get_data(as_text=True)
    assert tasks_of(services)["树木修剪"][0] == "12月 15日(顺延)"
    assert client.post(f"/admin/tasks/{tree}", data={**form, "rule": "12月 最后一个上课日"}).status_code == 302
    assert audit(services, "task_edit") == ["已保存任务「树木修剪」：规则：12月 15日(顺延)→12月 最后一个上课日。"]
    # the fire self-check renamed is still the one 消防自检 完成 closes
    assert client.post(f"/admin/tasks/{fire}", data={**form, "title": "消防自检", "rule": "每月5日(顺延)",
                                                      "assignee": "消防"}).status_code == 302
    with services.factory() as s:
        assert s.get(Task, fire).key == "fire_check"

    assert client.post(f"/admin/tasks/{tree}/active", data={"csrf": form["csrf"], "active": "0"}).status_code == 302
    assert tasks_of(services)["树木修剪"][2] is False
    page = client.get("/admin/tasks?month=2026-12").get_data(as_text=True)
    assert "已停用任务「树木修剪」" in page and "树木修剪（12月）" not in page
    assert audit(services, "task_stop") == ["已停用任务「树木修剪」：不再提醒，已有的记录保留。"]


def test_bureau_reads_and_staff_are_refused(office, app: Flask, services) -> None:
    bureau = app.test_client()
    sign_in(bureau, "教育局王科长", "abcdefgh1")
    page = bureau.get("/admin/tasks").get_data(as_text=True)
    assert ">行事历<" in page and "设备巡检" in page and "新增任务" not in page
    token = csrf(bureau, "/admin/tasks")
    before = tasks_of(services)
    assert bureau.post("/admin/tasks", data={"csrf": token, "title": "x", "rule": "每周五",
                                              "assignee": "殷奇"}).status_code == 403
    assert tasks_of(services) == before
    staff = app.test_client()
    sign_in(staff, "殷奇", "abcdefgh1")
    assert staff.get("/admin/tasks").status_code == 403
    assert ">行事历<" not in staff.get("/admin/repairs").get_data(as_text=True)
