"""推送 in the console: the outbox filtered and paged with Chinese names and times, 重发 of a failed
delivery, and 发通知 to a group through the notices engine — its preview shows each channel's message
and who cannot be reached, and leaves nothing behind; quiet hours hold parents. Refusals change nothing."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from models import AuditEntry, Delivery, ParentLink, Person, Push, Student
from models.outbox import FAILED, PENDING, UNDELIVERABLE
from models.voice import Notice
from tests.test_cli_outbox import queue
from tests.test_console import PASSWORD, csrf, rows_of, sign_in


@pytest.fixture
def office(people, houqin, clock, wechat_user):
    """周春明 (admin) and 宦欢 (canteen) have console passwords; 张丽 (teacher) and 陈建国 (三(2)班 陈小明's
    parent) follow the account and wrote today; 王芳 (三(2)班 parent too) never bound."""
    clock.set("2026-11-23 10:00")
    people.add("周春明", "admin")
    people.add("宦欢", "canteen")
    people.add("张丽", "teacher")
    people.add("陈建国", "parent")
    people.add("王芳", "parent")
    people.student("陈小明", "三(2)班")
    people.student("王小丫", "三(2)班")
    for name in ("周春明", "宦欢"):
        assert houqin("console-password", name, "--password", PASSWORD).exit_code == 0
    wechat_user("张丽").say("帮助")
    assert "陈小明" in wechat_user("陈建国").say(f"绑定 {people.code_of('陈小明')}").text
    with people.services.factory() as s, s.begin():
        wang = s.scalar(select(Person).where(Person.name == "王芳"))
        child = s.scalar(select(Student).where(Student.name == "王小丫"))
        s.add(ParentLink(person_id=wang.id, student_id=child.id))
    return people


def counts(services) -> tuple[int, int, int]:
    with services.factory() as s:
        return tuple(s.scalar(select(func.count()).select_from(m)) or 0 for m in (Notice, Push, AuditEntry))  # type: ignore[return-value]


def test_outbox_filters_pages_and_names_in_chinese(office, client: FlaskClient, services, clock) -> None:
    for n in range(51):
        queue(services, "张丽", f"第{n}条")
    clock.set("2026-11-24 09:00")
    queue(services, "周春明", "第二天的")
    sign_in(client)
    first = client.get("/admin/outbox").get_data(as_text=True)
    assert "共 52 条，第 1 / 2 页" in first and "下一页" in first and "第二天的" in first
    second = client.get("/admin/outbox?page=2").get_data(as_text=True)
    assert "第 2 / 2 页" in second and "第0条" in second and "上一页" in second
    day = rows_of(client.get("/admin/outbox?day=2026-11-24").get_data(as_text=True))
    assert len(day) == 1 and "11-24 09:00" in day[0] and "周春明" in day[0] and "无法送达" in day[0]
    who = client.get("/admin/outbox?who=张丽&status=pending").get_data(as_text=True)
    assert "共 51 条" in who
    assert "共 0 条" in client.get("/admin/outbox?kind=bus_alarm").get_data(as_text=True)
    for bad in ("?status=lost", "?kind=nope", "?day=2026-13-01", "?page=0", "?page=x"):
        assert client.get(f"/admin/outbox{bad}").status_code == 400, bad


def test_retry_queues_a_failed_delivery_again_and_records_it(office, client: FlaskClient, services) -> None:
    delivery_id = queue(services, "张丽", "会失败的")
    with services.factory() as s, s.begin():
        row = s.get(Delivery, delivery_id)
        row.status, row.attempts, row.last_error = FAILED, 5, "微信接口错误"
    sign_in(client)
    page = client.get("/admin/outbox").get_data(as_text=True)
    assert f'action="/admin/outbox/{delivery_id}/retry"' in page and "失败" in page
    res = client.post(f"/admin/outbox/{delivery_id}/retry", data={"csrf": csrf(client, "/admin/outbox")})
    assert res.status_code == 302
    assert f"投递 {delivery_id} 已重新排队。" in client.get("/admin/outbox").get_data(as_text=True)
    with services.factory() as s:
        row = s.get(Delivery, delivery_id)
        assert row.status == PENDING and row.attempts == 0 and row.last_error is None
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "outbox_retry"))
        assert entry.actor == "周春明" and entry.target == f"投递 {delivery_id}"
    unbound = queue(services, "王芳", "送不到")  # never bound: nothing to retry
    with services.factory() as s:
        assert s.get(Delivery, unbound).status == UNDELIVERABLE
    refused = client.post(f"/admin/outbox/{unbound}/retry", data={"csrf": csrf(client, "/admin/outbox")})
    assert refused.status_code == 400 and "没有可以重发的微信账号" in refused.get_data(as_text=True)
    assert client.post("/admin/outbox/99999/retry", data={"csrf": csrf(client, "/admin/outbox")}).status_code == 404


def compose(client: FlaskClient, action: str, **form: str):
    data = {"csrf": csrf(client, "/admin/outbox/compose"), "action": action, "audience": "class",
            "class_name": "三(2)班", "person": "", "title": "周五停水", "body": "周五下午学校停水，请带好饮用水。",
            "confirm": "1"}
    data.update(form)
    return client.post("/admin/outbox/compose", data=data)


def test_compose_previews_each_channel_then_sends_a_notice(office, client: FlaskClient, services, queued) -> None:
    sign_in(client)
    form = client.get("/admin/outbox/compose").get_data(as_text=True)
    assert "某班家长" in form and "需要回执" in form and "夜间免打扰" not in form
    before = counts(services)
    preview = compose(client, "preview").get_data(as_text=True)
    assert "预览：三(2)班家长，共 2 人" in preview
    assert "客服消息（1 人）" in preview and "陈建国" in preview
    assert "【通知】周五停水\n周五下午学校停水，请带好饮用水。\n请回复「收到 N1」确认（回执）。" in preview
    assert "无法送达" in preview and "王芳：未绑定微信" in preview
    assert "发送给 2 人" in preview
    assert counts(services) == before  # the preview queued nothing

    sent = compose(client, "send")
    assert sent.status_code == 302
    page = client.get(sent.headers["Location"]).get_data(as_text=True)
    assert "通知 N1 已发出（2 人）：已通知陈建国；王芳暂时无法送达（未绑定微信）。" in page
    with services.factory() as s:
        notice = s.scalar(select(Notice))
        assert notice.title == "周五停水" and notice.confirm and notice.audience == "三(2)班家长"
        assert notice.sender.name == "周春明" and len(notice.recipients) == 2
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "notice_send"))
        assert entry.actor == "周春明" and entry.target == "N1 三(2)班家长"
    assert sorted(r.name for r in queued("notice")) == ["王芳", "陈建国"]  # 王芳 recorded as undeliverable


def test_quiet_hours_hold_parents_in_the_preview(office, client: FlaskClient, clock) -> None:
    clock.set("2026-11-23 22:00")
    sign_in(client)
    assert "夜间免打扰" in client.get("/admin/outbox/compose").get_data(as_text=True)
    preview = compose(client, "preview", audience="parents").get_data(as_text=True)
    assert re.search(r"夜间免打扰：家长将在 11-24 07:00 后收到", preview), preview


def test_compose_refusals_change_nothing(office, client: FlaskClient, services, app) -> None:
    sign_in(client)
    before = counts(services)
    for form, words in (({"title": ""}, "请填写通知标题"), ({"audience": "class", "class_name": ""}, "请填写班级"),
                        ({"audience": "person", "person": "没有这个人"}, "没有「没有这个人」这个发送对象"),
                        ({"audience": "class", "class_name": "九(9)班"}, "「九(9)班家长」目前没有人"),
                        ({"audience": "everybody"}, "请选择发给谁"), ({"title": "长" * 101}, "最多 100 个字")):
        res = compose(client, "send", **form)
        assert res.status_code == 400 and words in res.get_data(as_text=True), form
    no_csrf = client.post("/admin/outbox/compose", data={"action": "send", "audience": "teachers", "title": "x"})
    assert no_csrf.status_code == 400
    assert counts(services) == before
    canteen = app.test_client()
    sign_in(canteen, "宦欢")
    assert canteen.get("/admin/outbox/compose").status_code == 403
    assert canteen.post("/admin/outbox/1/retry", data={"csrf": csrf(canteen, "/admin/canteen")}).status_code == 403
    assert canteen.get("/admin/bus").status_code == 403 and canteen.get("/admin/duty").status_code == 403
    assert canteen.get("/admin/canteen/menu").status_code == 200
