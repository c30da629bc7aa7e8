"""Who signs in to the console and what each role may open: the roles checked on every request, the
one-time password link, 修改密码, 退出所有设备, Flask-WTF's CSRF on every POST, and the 操作记录 page
listing changes from the console and the CLI."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from bot.console.auth import LINK_BAD, NOT_SAME, PASSWORD_CHANGED, WRONG_CURRENT
from models import Person, PersonRole
from tests.test_console import PASSWORD, csrf, sign_in


def person_of(services, name: str) -> Person:
    with services.factory() as s:
        person = s.scalar(select(Person).where(Person.name == name))
        assert person is not None
        return person


def link_for(client: FlaskClient, person_id: int) -> str:
    page = client.post(f"/admin/people/{person_id}/password-link", data={"csrf": csrf(client, "/admin/people")})
    assert page.status_code == 200, page.get_data(as_text=True)
    match = re.search(r'value="(http://[^"]+/admin/set-password/[^"]+)"', page.get_data(as_text=True))
    assert match
    return match.group(1).removeprefix("http://localhost")


def test_each_role_sees_its_areas_checked_on_every_request(office, app: Flask, client: FlaskClient, services) -> None:
    office.add("宦欢", "canteen")
    sign_in(client)
    staff, canteen, teacher = (person_of(services, name) for name in ("殷奇", "宦欢", "张丽"))
    links = {p.name: link_for(client, p.id) for p in (staff, canteen)}
    refused = client.post(f"/admin/people/{teacher.id}/password-link", data={"csrf": csrf(client, "/admin/people")})
    assert "只有管理员、食堂和后勤人员可以登录控制台" in refused.get_data(as_text=True)

    for name, link in links.items():
        other = app.test_client()
        page = other.get(link)
        assert page.status_code == 200 and f"{name}，请设置你的控制台密码" in page.get_data(as_text=True)
        token = csrf(other, link)
        assert NOT_SAME in other.post(link, data={"csrf": token, "new": "abcdefgh1", "again": "x"}).get_data(True)
        done = other.post(link, data={"csrf": token, "new": "abcdefgh1", "again": "abcdefgh1"})
        assert done.status_code == 200 and "密码已设置，请登录" in done.get_data(as_text=True)
        again = other.get(link)  # single use
        assert again.status_code == 410 and LINK_BAD in again.get_data(as_text=True)

    staff_client = app.test_client()
    assert sign_in(staff_client, "殷奇", "abcdefgh1").endswith("/admin/")
    assert staff_client.get("/admin/").headers["Location"].endswith("/admin/repairs")
    nav = staff_client.get("/admin/repairs").get_data(as_text=True)
    assert "R1" in nav and ">人员<" not in nav and ">今日<" not in nav
    for path in ("/admin/people", "/admin/outbox", "/admin/canteen", "/admin/audit"):
        assert staff_client.get(path).status_code == 403, path
    assert staff_client.post("/admin/alerts/acknowledge", data={"csrf": csrf(staff_client, "/admin/repairs")}
                             ).status_code == 403

    canteen_client = app.test_client()
    sign_in(canteen_client, "宦欢", "abcdefgh1")
    assert canteen_client.get("/admin/").headers["Location"].endswith("/admin/canteen")
    assert canteen_client.get("/admin/canteen").status_code == 200
    assert canteen_client.get("/admin/repairs").status_code == 403

    # the staff member stops being staff: the next request is refused, signed out
    with services.factory() as s, s.begin():
        s.execute(PersonRole.__table__.delete().where(PersonRole.person_id == staff.id, PersonRole.role == "staff"))
    assert staff_client.get("/admin/repairs").status_code == 302

    nav = client.get("/admin/").get_data(as_text=True)
    order = [m for m in re.findall(r'<a href="/admin/[^"]*">([^<]+)</a>', nav) if m in
             ("今日", "报修", "人员", "食堂", "校车", "值日", "日程", "推送", "台账", "设置", "操作记录")]
    assert order[:5] == ["今日", "报修", "人员", "食堂", "推送"]
    log = client.get("/admin/audit").get_data(as_text=True)
    assert "生成设置密码链接" in log and "殷奇" in log and "设置控制台密码" in log and "一次性链接" in log


def test_password_link_expires(office, client: FlaskClient, clock, services) -> None:
    sign_in(client)
    staff = person_of(services, "殷奇")
    link = link_for(client, staff.id)
    clock.advance(hours=49)
    assert client.get(link).status_code == 410
    assert client.get("/admin/set-password/not-a-token").status_code == 410


def test_change_password_and_sign_out_everywhere(office, app: Flask, client: FlaskClient) -> None:
    sign_in(client)
    elsewhere = app.test_client()
    sign_in(elsewhere)
    token = csrf(client, "/admin/account")
    wrong = client.post("/admin/account", data={"csrf": token, "current": "nope", "new": "newpass-2026",
                                                "again": "newpass-2026"})
    assert wrong.status_code == 400 and WRONG_CURRENT in wrong.get_data(as_text=True)
    changed = client.post("/admin/account", data={"csrf": token, "current": PASSWORD, "new": "newpass-2026",
                                                  "again": "newpass-2026"})
    assert PASSWORD_CHANGED in changed.get_data(as_text=True)
    assert client.get("/admin/").status_code == 200  # this browser stays signed in
    assert elsewhere.get("/admin/").status_code == 302  # the other one is out
    assert sign_in(elsewhere, password="newpass-2026").endswith("/admin/")
    assert client.post("/admin/logout", data={"csrf": csrf(client, "/admin/account")}).status_code == 302
    assert elsewhere.get("/admin/").status_code == 302  # 退出所有设备
    sign_in(client, password="newpass-2026")
    log = client.get("/admin/audit?action=password_changed").get_data(as_text=True)
    assert "修改密码" in log and "退出所有设备" not in log.split("<table")[1]


def test_every_console_post_needs_the_csrf_token(office, client: FlaskClient) -> None:
    sign_in(client)
    for path in ("/admin/alerts/acknowledge", "/admin/account", "/admin/logout", "/admin/people/1/password-link"):
        assert client.post(path, data={"csrf": "forged"}).status_code == 400, path
        assert client.post(path).status_code == 400, path
    assert client.get("/admin/").status_code == 200  # still signed in: nothing happened


def test_cli_changes_are_in_the_audit_log(office, houqin, client: FlaskClient, tmp_path) -> None:
    assert houqin("setting", "console_idle_hours", "6").exit_code == 0
    sign_in(client)
    log = client.get("/admin/audit?via=cli").get_data(as_text=True)
    assert "修改设置" in log and "console_idle_hours" in log and "命令行" in log
    assert "设置控制台密码" in log  # the fixture's `houqin console-password`
    assert "修改设置" not in client.get("/admin/audit?via=console").get_data(as_text=True).split("<table")[1]
    assert client.get("/admin/audit?action=nonsense").status_code == 400
    assert client.get("/admin/audit?from=2026-13-01").status_code == 400
    assert "修改设置" in client.get("/admin/audit?from=2026-11-20&to=2026-11-30").get_data(as_text=True)
    assert "修改设置" not in client.get("/admin/audit?to=2026-11-01").get_data(as_text=True).split("<table")[1]
