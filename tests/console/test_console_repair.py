"""报修 in the console: filters, a ticket's whole history with its pushes, the actions (指派, 转派, 完成,
重新打开, 撤销, merge) through the chat's own functions — the same pushes queued as from the chat —
and the charts."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

from tests.test_console import csrf, rows_of, sign_in


def act(client: FlaskClient, code: str, action: str, **form: str) -> str:
    res = client.post(f"/admin/repairs/{code}/{action}", data={"csrf": csrf(client, f"/admin/repairs/{code}"), **form})
    assert res.status_code == 302, res.get_data(as_text=True)
    page = client.get(res.headers["Location"])
    assert page.status_code == 200
    return page.get_data(as_text=True)


def status_line(page: str) -> str:
    match = re.search(r'<p class="act" role="status">(.*?)</p>', page, re.S)
    assert match, page
    return match.group(1)


def test_assign_complete_reopen_as_in_the_chat(office, client: FlaskClient, queued, wechat_user) -> None:
    office.add("程财宝", "staff", categories="水电")
    sign_in(client)
    before = len(queued())
    page = act(client, "R1", "assign", name="程财宝")
    assert "R1 已转派给程财宝" in status_line(page) or "程财宝" in status_line(page)
    new = queued()[before:]
    assert any(q.name == "程财宝" and q.kind == "repair_new" and "周春明" in q.text for q in new), new
    assert any(q.name == "张丽" and q.kind == "repair_progress" for q in new), new
    assert "状态：待接单" in page and "负责：程财宝" in page or "程财宝" in page.split("<pre>")[1]

    before = len(queued())
    page = act(client, "R1", "complete", note="已更换灯泡")
    assert "已完成" in status_line(page) or "完成" in status_line(page)
    done = queued()[before:]
    assert any(q.name == "张丽" and q.kind == "repair_done" and "已更换灯泡" in q.text for q in done), done
    assert "重新打开" in page and "已发送的推送" in page and "repair_done" not in page  # kinds in Chinese
    page = act(client, "R1", "reopen", note="还是不亮")
    assert "R1" in status_line(page)
    assert client.get("/admin/repairs?status=active").get_data(as_text=True).count(">R1<") == 1
    log = client.get("/admin/audit").get_data(as_text=True)
    assert "指派报修" in log and "完成报修" in log and "重新打开报修" in log and "已更换灯泡" in log


def test_refusals_change_nothing(office, client: FlaskClient, queued) -> None:
    sign_in(client)
    before = len(queued())
    page = act(client, "R1", "assign", name="不存在的人")
    assert "不存在的人" in status_line(page) and len(queued()) == before
    page = act(client, "R1", "assign", name="")
    assert "请选择要指派的人" in status_line(page)
    assert client.post("/admin/repairs/R1/explode", data={"csrf": csrf(client, "/admin/")}).status_code == 404
    assert client.post("/admin/repairs/R99/complete", data={"csrf": csrf(client, "/admin/")}).status_code == 404


def test_merge_two_tickets_keeps_both_histories(office, client: FlaskClient, wechat_user, queued) -> None:
    office.add("王强", "teacher")
    assert "R2" in wechat_user("王强").say("报修 三年级一班 门锁坏了").text
    sign_in(client)
    page = act(client, "R2", "merge", into="R1")
    assert "已合并到 R1" in status_line(page) and "R1" in page.split("<h1>")[1][:10]
    assert "王强" in page and "（由 R2 合并）门锁坏了" in page
    r2 = client.get("/admin/repairs/R2").get_data(as_text=True)
    assert "状态：已撤销" in r2 and "已合并到 R1" in r2
    assert any(q.name == "王强" and "撤销" in q.text for q in queued())
    same = act(client, "R1", "merge", into="R1")
    assert "不能把报修单合并到它自己" in status_line(same)


def test_filters_and_charts(office, client: FlaskClient, wechat_user) -> None:
    wechat_user("张丽").say("报修 图书馆 水龙头漏水")
    sign_in(client)
    by_text = rows_of(client.get("/admin/repairs?q=水龙头").get_data(as_text=True))
    assert len(by_text) == 1 and by_text[0].startswith("R2")
    assert len(rows_of(client.get("/admin/repairs?place=三(2)").get_data(as_text=True))) == 1
    assert len(rows_of(client.get("/admin/repairs?reporter=张").get_data(as_text=True))) == 2
    assert "没有报修单" in client.get("/admin/repairs?reporter=王").get_data(as_text=True)
    assert "没有报修单" in client.get("/admin/repairs?to=2026-11-01").get_data(as_text=True)
    assert len(rows_of(client.get("/admin/repairs?from=2026-11-20&category=电教").get_data(as_text=True))) == 1
    assert client.get("/admin/repairs?from=yesterday").status_code == 400
    charts = client.get("/admin/repairs/charts").get_data(as_text=True)
    assert "每周报修数" in charts and "电教" in charts and 'class="w20"' in charts and "style=" not in charts


def test_staff_see_their_categories_first_and_may_act(office, app: Flask, client: FlaskClient, wechat_user,
                                                       houqin) -> None:
    wechat_user("张丽").say("报修 图书馆 水龙头漏水")  # 水电: R2, newer than R1 (电教)
    office.add("程财宝", "admin")
    assert houqin("console-password", "殷奇", "--password", "staff-pass-1").exit_code == 0
    sign_in(client, "殷奇", "staff-pass-1")
    rows = rows_of(client.get("/admin/repairs").get_data(as_text=True))
    assert rows[0].startswith("R1") and rows[1].startswith("R2")
    page = act(client, "R1", "complete", note="换了")
    assert "完成" in status_line(page)
