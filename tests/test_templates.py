"""Template pushes under WeChat's 2023 rules: each kind's named fields, the HOUQIN_TEMPLATES mapping,
values fitted to their keyword's type, and a fake that reports what WeChat would cut or drop."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, time
from typing import Any

import pytest
from sqlalchemy import select

from bot.config import ConfigError, Settings, load_settings
from bot.outbox import USER_BLOCKED
from bot.school import TEMPLATES_TTL, StoredTemplates
from bot.services import Services
from bot.wechat.fake import Webhook
from bot.wechat.templates import Template, fit
from handlers.repair.ledger import import_rooms
from models import Delivery, DeliveryAlert, Drill, Push
from models.outbox import PENDING, SENT, UNDELIVERABLE
from tests.handlers.test_duty import at as duty_at
from tests.handlers.test_duty import school  # noqa: F401  (the duty school: posts, roster, 张丽 on 课间)
from tests.test_console import PASSWORD, sign_in

TEMPLATE = "message/template/send"
REPAIR_TEMPLATE = Template("TPL_REPAIR", {"character_string1": "{code}", "thing2": "{place}",
                                          "thing3": "{description}", "time4": "{time}"})
ROOMS = "楼栋,楼层,房间,别名,负责人\n教学楼,3,三(2)班,,张丽\n"
LONG = "三(2)班讲台右边的投影仪开机后一直闪烁蓝屏，插上电脑也没有任何信号显示出来"


@pytest.fixture
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    return settings.with_overrides(**getattr(request, "param", {}))


@pytest.fixture
def school_people(people, services: Services, tmp_path, clock):
    """张丽 files repairs in 三(2)班; 程财宝 looks after every category."""
    clock.set("2026-11-23 08:00")
    people.add("程财宝", "staff", categories="水电;门窗;桌椅;消防;安全;其他;电教")
    people.add("张丽", "teacher", class_name="三(2)班")
    (tmp_path / "rooms.csv").write_text(ROOMS, encoding="utf-8")
    with services.factory() as s, s.begin():
        import_rooms(s, tmp_path / "rooms.csv")
    return people


def with_templates(**templates: Template) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("settings", [{"templates": templates}], indirect=True, ids=["templates"])


def env(**extra: str) -> dict[str, str]:
    return {"WECHAT_TOKEN": "templatesToken123", "WECHAT_APPID": "wxappid", "WECHAT_SECRET": "secret",
            "HOUQIN_SECRET_KEY": "s" * 32, "DATABASE_URL": "sqlite://", **extra}


def test_the_retired_form_is_refused_with_what_to_write(tmp_path):
    with pytest.raises(ConfigError) as refused:
        load_settings(env(HOUQIN_TEMPLATES=json.dumps({"repair_new": "TPL_OLD"})))
    message = str(refused.value)
    assert "HOUQIN_TEMPLATES" in message and '"template_id": "TPL_OLD"' in message and "thing1" in message


@pytest.mark.parametrize("mapping", [
    {"repair_new": {"template_id": "T", "data": {"thing1": "{nope}"}}},  # not a field of the kind
    {"repair_new": {"template_id": "", "data": {"thing1": "{code}"}}},
    {"repair_new": {"template_id": "T"}},
    {"repair_new": {"template_id": "T", "data": {"thing1": "{code"}}},
])
def test_a_bad_mapping_is_refused_at_start_up(mapping: dict[str, Any]):
    with pytest.raises(ConfigError, match="HOUQIN_TEMPLATES"):
        load_settings(env(HOUQIN_TEMPLATES=json.dumps(mapping)))


def test_the_new_form_is_read():
    raw = json.dumps({"repair_new": {"template_id": "TPL_REPAIR", "data": {"character_string1": "{code}"}}})
    settings = load_settings(env(HOUQIN_TEMPLATES=raw))
    assert settings.templates["repair_new"] == Template("TPL_REPAIR", {"character_string1": "{code}"})


@pytest.mark.parametrize(("keyword", "value", "shown"), [
    ("thing2", "投影仪不亮", "投影仪不亮"),
    ("thing2", LONG, LONG[:19] + "…"),
    ("phrase3", "已完成待评价", "已完成待…"),
    ("name4", "欧阳" * 6, "欧阳" * 4 + "欧…"),
    ("character_string1", "R" * 40, "R" * 31 + "…"),
    ("time5", "2026-11-24 10:00", "2026年11月24日 10:00"),
    ("date6", "2026-11-24", "2026年11月24日"),
    ("thing7", "第一行\n第二行 🔥 着火", "第一行 第二行 着火"),
])
def test_values_are_fitted_to_the_keyword_type(keyword: str, value: str, shown: str):
    assert fit(keyword, value) == shown


def test_templates_list_prints_each_kind_with_fields_and_example(houqin):
    result = houqin("templates", "list")
    assert result.exit_code == 0, result.output
    assert "repair_new" in result.output and "code, place, description, status, person" in result.output
    assert "R12" in result.output and "weekly_menu" in result.output and "title" in result.output
    assert "duty_reminder  值日提醒\n  fields: title, time, post, slot, text" in result.output
    assert "bus_arrival  校车到校\n  fields: title, time, student, route, text" in result.output


@with_templates(repair_new=REPAIR_TEMPLATE)
def test_a_repair_push_fills_the_template_with_fitted_fields(school_people, wechat_user, fake_wechat, deliver,
                                                              clock, services: Services):
    clock.set("2026-11-24 10:00")
    wechat_user("程财宝")
    teacher = wechat_user("张丽")
    teacher.dialog([("报修", "地点"), ("三(2)班", "描述"), (LONG, "R1")])
    deliver()
    (call,) = [c for c in fake_wechat.sent_to("程财宝") if c.endpoint == TEMPLATE]
    assert call.body["template_id"] == "TPL_REPAIR"
    assert call.body["data"] == {"character_string1": {"value": "R1"}, "thing2": {"value": "三(2)班"},
                                 "thing3": {"value": LONG[:19] + "…"},
                                 "time4": {"value": "2026年11月24日 10:00"}}
    assert call.warnings == []
    with services.factory() as s:
        push = s.query(Push).filter_by(kind="repair_new").one()
        assert push.fields is not None and push.fields["description"] == LONG and push.fields["person"]


def test_templates_set_reaches_a_push_queued_by_the_running_web_process(
        school_people, wechat_user, fake_wechat, deliver, clock, services: Services, houqin, queued):
    """`houqin templates set` in another process while the app runs: the webhook's next push after the
    stored ids are looked at again (at most every TEMPLATES_TTL seconds; the test steps that clock) goes as
    a template with the new id, where before it was undeliverable outside the 48-hour window."""
    ticks = [0.0]
    services.monotonic = lambda: ticks[0]
    clock.set("2026-11-24 10:00")
    wechat_user("程财宝")
    teacher = wechat_user("张丽")
    clock.advance(hours=49)  # 程财宝 last wrote two days ago: only a template reaches him now
    assert "R1" in teacher.say("报修 三(2)班 窗户关不上").text
    set_new = houqin("templates", "set", "repair_new=TPL_REPAIR", "--data", json.dumps(dict(REPAIR_TEMPLATE.data)))
    assert set_new.exit_code == 0, set_new.output
    ticks[0] += 1.0  # within TEMPLATES_TTL of the last look: the ids the process had
    assert "R2" in teacher.say("报修 四(1)班 课桌腿松了").text
    ticks[0] += TEMPLATES_TTL
    assert "R3" in teacher.say("报修 五(3)班 门锁坏了").text
    to_staff = [q for q in queued(kind="repair_new") if q.name == "程财宝"]
    assert [q.status for q in to_staff] == [UNDELIVERABLE, UNDELIVERABLE, PENDING]
    deliver()
    (call,) = [c for c in fake_wechat.sent_to("程财宝") if c.endpoint == TEMPLATE]
    assert call.body["template_id"] == "TPL_REPAIR" and call.body["data"]["character_string1"] == {"value": "R3"}


def test_stored_template_ids_the_first_lookup_waits_for_and_a_bad_edit_does_not_replace() -> None:
    """Lookups made while the first read of the stored ids is under way wait for it (a school of its own has
    no environment ids: judged without them, a push would be taken for undeliverable); a later stored value
    that does not parse (a hand edit) keeps the ids read before."""
    import threading

    stored = json.dumps({"repair_new": {"template_id": "TPL_REPAIR", "data": dict(REPAIR_TEMPLATE.data)}})
    reading, release = threading.Event(), threading.Event()
    reads: list[str] = []
    ticks = [0.0]

    def read() -> str:
        reads.append(stored)
        reading.set()
        release.wait(5)
        return reads[-1]

    templates = StoredTemplates(read, {}, clock=lambda: ticks[0])
    first = threading.Thread(target=lambda: templates.now())
    first.start()
    assert reading.wait(5)
    seen: list[bool] = []
    second = threading.Thread(target=lambda: seen.append("repair_new" in templates))
    second.start()
    second.join(0.2)
    assert second.is_alive()  # waiting for the first read, not answering from the empty mapping
    release.set()
    first.join(5)
    second.join(5)
    assert seen == [True] and len(reads) == 1
    stored = "{not json"
    ticks[0] += TEMPLATES_TTL
    assert templates["repair_new"].template_id == "TPL_REPAIR" and len(reads) == 2


def test_the_fake_reports_what_wechat_would_cut_or_drop(services: Services, fake_wechat):
    services.api.send_template("oSomeone", "TPL_NOTICE", {
        "first": {"value": "您好"}, "thing1": {"value": LONG}, "thing9": {"value": "不存在"},
        "time2": {"value": "2026年11月24日\n10:00"}, "remark": {"value": "谢谢"}})
    (call,) = [c for c in fake_wechat.calls if c.endpoint == TEMPLATE]
    assert call.warnings == [
        "first: dropped (WeChat no longer shows first/remark)",
        f"thing1: cut ({len(LONG)} characters, thing allows 20)",
        "thing9: dropped (not a keyword of this template)",
        "time2: line break (WeChat shows one line)",
        "remark: dropped (WeChat no longer shows first/remark)",
    ]


def test_the_fake_answers_a_send_with_a_msgid_and_refuses_an_unknown_template(services: Services, fake_wechat):
    first = services.api.send_template("oSomeone", "TPL_NOTICE", {"thing1": {"value": "通知"}})
    second = services.api.send_template("oSomeone", "TPL_NOTICE", {"thing1": {"value": "通知"}})
    assert first and second and first != second
    with pytest.raises(Exception, match="40037"):
        services.api.send_template("oSomeone", "TPL_NOT_IN_LIBRARY", {"thing1": {"value": "通知"}})


@with_templates(repair_new=REPAIR_TEMPLATE)
def test_templates_check_passes_a_good_mapping(houqin, monkeypatch, fake_wechat):
    monkeypatch.setenv("HOUQIN_TEMPLATES", json.dumps(
        {"repair_new": {"template_id": "TPL_REPAIR", "data": dict(REPAIR_TEMPLATE.data)}}))
    result = houqin("templates", "check")
    assert result.exit_code == 0, result.output
    assert any(c.endpoint == "template/get_all_private_template" for c in fake_wechat.calls)


def test_templates_check_reports_each_problem_and_fails(houqin, monkeypatch, fake_wechat):
    fake_wechat.fake.add_template("TPL_SHORT", "报修状态", "状态：{{phrase1.DATA}}")
    monkeypatch.setenv("HOUQIN_TEMPLATES", json.dumps({
        "repair_new": {"template_id": "TPL_GONE", "data": {"thing1": "{code}"}},
        "repair_done": {"template_id": "TPL_REPAIR", "data": {"thing9": "{place}"}},
        "repair_progress": {"template_id": "TPL_SHORT", "data": {"phrase1": "{description}"}}}))
    result = houqin("templates", "check")
    assert result.exit_code == 1
    assert "repair_new：模板 TPL_GONE 不在公众号的模板库中" in result.output
    assert "repair_done：关键词 thing9 不在模板「报修通知」的内容中" in result.output
    assert "repair_progress：phrase1 的值（{description}）常超过 phrase 的 5 字上限" in result.output


# -- msgid and TEMPLATESENDJOBFINISH -------------------------------------------------------------------
@pytest.fixture
def filed(school_people, wechat_user, fake_wechat, deliver, clock, services: Services, settings: Settings,
          transport) -> Callable[[], Delivery]:
    """张丽 files a repair; its template push to 程财宝 is sent; the fake can report on it to the webhook."""
    fake_wechat.fake.webhook = Webhook(settings.wechat_token, settings.wechat_appid, transport, settings.wechat_aes_key)
    clock.set("2026-11-24 10:00")
    wechat_user("程财宝")
    wechat_user("张丽").dialog([("报修", "地点"), ("三(2)班", "描述"), ("投影仪不亮", "R1")])
    deliver()

    def row() -> Delivery:
        with services.factory() as s:
            return s.scalars(select(Delivery).join(Push).where(Push.kind == "repair_new")).one()

    return row


@with_templates(repair_new=REPAIR_TEMPLATE)
def test_a_template_send_records_the_msgid_and_success_confirms_it(filed, fake_wechat, houqin):
    sent = filed()
    assert sent.status == SENT and sent.msgid and sent.confirmed_at is None
    assert fake_wechat.finish_template_job(sent.msgid, "success") == 200
    assert filed().confirmed_at is not None and filed().status == SENT
    assert "sent ✓" in houqin("outbox").output


@with_templates(repair_new=REPAIR_TEMPLATE)
def test_a_user_block_makes_the_delivery_undeliverable_without_retry(filed, fake_wechat, deliver, houqin,
                                                                     people, client):
    sent = filed()
    fake_wechat.finish_template_job(sent.msgid, "failed:user block")
    blocked = filed()
    assert (blocked.status, blocked.last_error) == (UNDELIVERABLE, USER_BLOCKED)
    sends = len([c for c in fake_wechat.calls if c.endpoint == TEMPLATE])
    assert deliver() == 0 and len([c for c in fake_wechat.calls if c.endpoint == TEMPLATE]) == sends
    listed = houqin("outbox", "--status", "undeliverable").output
    assert "repair_new" in listed and "拒收模板消息" in listed
    people.add("周春明", "admin")
    assert houqin("console-password", "周春明", "--password", PASSWORD).exit_code == 0
    sign_in(client)
    page = client.get("/admin/outbox?status=undeliverable").get_data(as_text=True)
    assert "repair_new" in page and USER_BLOCKED in page


@with_templates(repair_new=REPAIR_TEMPLATE)
def test_a_system_failure_is_sent_again(filed, fake_wechat, deliver):
    sent = filed()
    fake_wechat.finish_template_job(sent.msgid, "failed: system failed")
    retried = filed()
    assert retried.status == PENDING and "failed: system failed" in (retried.last_error or "")
    deliver()
    again = filed()
    assert again.status == SENT and again.msgid and again.msgid != sent.msgid and again.attempts == 2
    assert len(fake_wechat.sent_to("程财宝")) == 2


@with_templates(repair_new=REPAIR_TEMPLATE)
def test_a_report_for_an_unknown_msgid_changes_nothing(filed, fake_wechat, wechat_user):
    before = filed()
    reply = wechat_user("程财宝").event("TEMPLATESENDJOBFINISH", MsgID=42, Status="failed:user block")
    assert reply.status == 200 and reply.text == ""
    after = filed()
    assert (after.status, after.msgid, after.confirmed_at) == (before.status, before.msgid, None)


@with_templates(repair_urgent=REPAIR_TEMPLATE)
def test_a_blocked_safety_push_is_put_before_the_office(school_people, wechat_user, fake_wechat, deliver, clock,
                                                       services: Services, settings: Settings, transport):
    fake_wechat.fake.webhook = Webhook(settings.wechat_token, settings.wechat_appid, transport, settings.wechat_aes_key)
    clock.set("2026-11-24 10:00")
    wechat_user("程财宝")
    wechat_user("张丽").dialog([("报修", "地点"), ("三(2)班", "描述"), ("水管漏水了", "R1")])
    deliver()
    with services.factory() as s:
        sent = s.scalars(select(Delivery).join(Push).where(Push.kind == "repair_urgent")).one()
    fake_wechat.finish_template_job(sent.msgid or "", "failed:user block")
    with services.factory() as s:
        (alert,) = s.scalars(select(DeliveryAlert)).all()
        assert (alert.name, alert.reason, alert.safety) == ("程财宝", USER_BLOCKED, True)


@with_templates(drill_notice=Template("TPL_NOTICE", {"thing1": "{drill}演练（{scope}）", "time2": "{time}"}))
def test_a_drill_notice_reaches_a_parent_by_template_with_the_drill_time(people, wechat_user, fake_wechat, deliver,
                                                                         clock, services: Services, runner):
    clock.set("2026-11-20 08:00")
    people.add("陈建国", "parent")
    wechat_user("陈建国")
    with services.factory() as s, s.begin():
        s.add(Drill(day=date(2026, 11, 24), at=time(10, 0), kind="消防疏散", scope="全校"))
    clock.set("2026-11-23 16:00")  # his 48-hour window closed long ago: only a template reaches him
    assert runner.run_now("remind_drill_eve", services.now()).status == "done"
    deliver()
    (call,) = fake_wechat.sent_to("陈建国")
    assert call.body["data"] == {"thing1": {"value": "消防疏散演练（全校）"}, "time2": {"value": "2026年11月24日 10:00"}}
    assert call.warnings == []


@with_templates(duty_reminder=Template("TPL_NOTICE", {"thing1": "{post}", "time2": "{time}"}))
@pytest.mark.usefixtures("school")
def test_a_duty_reminder_reaches_a_teacher_by_template_with_the_post_and_start(wechat_user, fake_wechat, deliver,
                                                                                runner, clock):
    wechat_user("张丽")
    clock.set("2026-11-23 09:30")
    runner.run_now("remind_duty", duty_at("2026-11-23 09:30"))
    deliver()
    (call,) = [c for c in fake_wechat.sent_to("张丽") if c.endpoint == TEMPLATE]
    assert call.body["data"] == {"thing1": {"value": "一楼东楼梯"}, "time2": {"value": "2026年11月23日 09:40"}}
    assert call.warnings == []


def test_a_push_naming_a_field_its_kind_does_not_declare_is_refused(services: Services):
    from bot.push_kinds import push_fields

    with pytest.raises(ValueError, match="not declared in bot.push_kinds"):
        push_fields("duty_reminder", "值日提醒", services.now(), {"plate": "苏A12345"})
    assert push_fields("duty_reminder", "值日提醒", services.now(), {"post": "校门口"})["post"] == "校门口"
