"""The admin console: sign-in (password, CSRF, lockout), today's overview, repairs with photos,
the outbox and people — through the real Flask app."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient

from bot.console import BAD_LOGIN, LOCKED

PASSWORD = "后勤2026secret"


@pytest.fixture
def office(people, houqin, wechat_user, fetch_media, deliver):
    """An admin with a console password, and a repair ticket R1 with a downloaded photo."""
    people.add("周春明", "admin")
    people.add("殷奇", "staff", categories="电教")
    people.add("张丽", "teacher")
    result = houqin("console-password", "周春明", "--password", PASSWORD)
    assert result.exit_code == 0, result.output
    teacher = wechat_user("张丽")
    assert "R1" in teacher.say("报修 三(2)班 投影仪不亮").text
    teacher.image(media_id="media_console_photo")
    assert fetch_media() == 1
    deliver()
    return people


def csrf(client: FlaskClient, path: str = "/admin/login") -> str:
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def sign_in(client: FlaskClient, name: str = "周春明", password: str = PASSWORD) -> str:
    res = client.post("/admin/login", data={"csrf": csrf(client), "name": name, "password": password})
    return res.get_data(as_text=True) if res.status_code != 302 else res.headers["Location"]


def test_console_needs_sign_in(client: FlaskClient) -> None:
    for path in ("/admin/", "/admin/repairs", "/admin/repairs/R1", "/admin/outbox", "/admin/people",
                 "/admin/photos/1"):
        res = client.get(path)
        assert res.status_code == 302 and "/admin/login" in res.headers["Location"], path


def test_only_admins_get_a_password(office, houqin) -> None:
    result = houqin("console-password", "张丽", "--password", PASSWORD)
    assert result.exit_code != 0 and "只有管理员" in result.output
    short = houqin("console-password", "周春明", "--password", "short")
    assert short.exit_code != 0 and "至少 8 位" in short.output


def test_wrong_password_then_lockout(office, client: FlaskClient) -> None:
    assert BAD_LOGIN in sign_in(client, password="wrong-password")
    for _ in range(4):
        sign_in(client, password="wrong-password")
    assert LOCKED in sign_in(client)  # even the right password, for 15 minutes
    assert client.get("/admin/").status_code == 302


def test_login_form_needs_its_csrf_token(office, client: FlaskClient) -> None:
    res = client.post("/admin/login", data={"name": "周春明", "password": PASSWORD})
    assert res.status_code == 400


def test_overview_repairs_and_photo(office, client: FlaskClient) -> None:
    assert sign_in(client).endswith("/admin/")
    overview = client.get("/admin/").get_data(as_text=True)
    assert "未完成报修" in overview and "R1" in overview and "投影仪不亮" in overview
    listing = client.get("/admin/repairs").get_data(as_text=True)
    assert "R1" in listing and "待接单" in listing
    page = client.get("/admin/repairs/R1").get_data(as_text=True)
    assert "报修单 R1" in page and "照片：报修 1 张" in page
    src = re.search(r'src="(/admin/photos/\d+)"', page)
    assert src, page
    image = client.get(src.group(1))
    assert image.status_code == 200 and image.data.startswith(b"\xff\xd8")
    assert client.get("/admin/repairs/R99").status_code == 404
    assert client.get("/admin/repairs/..%2F..%2Fetc").status_code == 404
    assert client.get("/admin/photos/999").status_code == 404


def test_outbox_and_people_pages(office, client: FlaskClient) -> None:
    sign_in(client)
    outbox = client.get("/admin/outbox").get_data(as_text=True)
    assert "repair_new" in outbox and "殷奇" in outbox
    people_page = client.get("/admin/people").get_data(as_text=True)
    assert "周春明" in people_page and "管理员" in people_page and "未绑定" in people_page


def test_logout_ends_the_session(office, client: FlaskClient) -> None:
    sign_in(client)
    token = csrf(client, "/admin/")
    assert client.post("/admin/logout", data={"csrf": token}).status_code == 302
    assert client.get("/admin/").status_code == 302
