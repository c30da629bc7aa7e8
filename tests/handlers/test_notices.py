"""Notices with confirmation (回执): sent through the one engine, confirmed by 收到 through the webhook,
followed up with 通知 N<n> and 提醒, kept as a ledger; drill notices to parents use it."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.export import read_ledger
from bot.outbox import Outbox
from bot.services import Services
from handlers.notices import AudienceError, send_notice
from models import Delivery, Drill, Notice, NoticeRecipient, ParentLink, Person, Push, Student

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(local: str) -> datetime:
    return datetime.strptime(local, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI).astimezone(UTC)


@pytest.fixture
def school(people, services: Services, clock):
    """周春明 admin, 程财宝 staff, 张丽 teacher; 陈建国 is 陈小明's (三(2)班) parent, 李梅 is 孙悦's (四(1)班)."""
    clock.set("2026-11-23 09:00")  # a Monday
    people.add("周春明", "admin")
    people.add("程财宝", "staff")
    people.add("张丽", "teacher", class_name="三(2)班")
    people.add("陈建国", "parent")
    people.add("李梅", "parent")
    with services.factory() as s, s.begin():
        for parent, child, class_name in (("陈建国", "陈小明", "三(2)班"), ("李梅", "孙悦", "四(1)班")):
            student = Student(name=child, class_name=class_name)
            s.add(student)
            s.flush()
            person = s.scalar(select(Person).where(Person.name == parent))
            s.add(ParentLink(person_id=person.id, student_id=student.id))
    return people


def send(services: Services, audience: str, title: str, body: str, confirm: bool = True, sender: str = "周春明"):
    with services.factory() as s, s.begin():
        person = s.scalar(select(Person).where(Person.name == sender)) if sender else None
        sent = send_notice(s, Outbox(s, services.settings, services.now()), person, audience, title, body,
                           confirm=confirm)
        return sent.notice.code, sent.told, sorted(r.name for r in sent.notice.recipients)


def test_a_class_notice_is_confirmed_with_shou_dao_and_followed_up(school, services, wechat_user, queued,
                                                                   clock) -> None:
    admin, parent = wechat_user("周春明"), wechat_user("陈建国")
    wechat_user("李梅")
    code, told, names = send(services, "三(2)班家长", "防溺水告家长书", "暑期请看护好孩子，远离危险水域。")
    assert (code, names) == ("N1", ["陈建国"])
    assert told == "已通知陈建国。"
    pushed = queued("notice")
    assert [p.name for p in pushed] == ["陈建国"]
    assert "防溺水告家长书" in pushed[0].text and "收到 N1" in pushed[0].text
    assert "已确认 0/1" in admin.say("通知 N1").text

    clock.advance(minutes=30)
    assert parent.say("收到").text == "已确认收到通知 N1「防溺水告家长书」。谢谢！"
    status = admin.say("通知 N1").text
    assert "已确认 1/1" in status and "未确认" not in status
    # nothing open: 收到 is a courtesy again
    assert "已确认" not in parent.say("收到").text
    with services.factory() as s:
        row = s.scalar(select(NoticeRecipient))
        assert row.confirmed_at == at("2026-11-23 09:30") and row.confirmed_via == "微信回复"


def test_with_several_open_the_latest_is_confirmed_or_the_one_named(school, services, wechat_user) -> None:
    parent = wechat_user("陈建国")
    send(services, "全体家长", "家长会通知", "周五下午家长会。")
    send(services, "全体家长", "校车停运", "周三校车停运一天。")
    reply = parent.say("收到").text
    assert "N2「校车停运」" in reply and "还有 1 条通知未确认：N1" in reply
    assert parent.say("收到 N1").text.startswith("已确认收到通知 N1「家长会通知」")
    assert "你已于" in parent.say("收到N1").text
    assert parent.say("收到 N9").text == "没有找到发给你的通知 N9。"


def test_remind_the_unconfirmed_once(school, services, wechat_user, queued, clock) -> None:
    admin, parent = wechat_user("周春明"), wechat_user("陈建国")
    wechat_user("李梅")
    send(services, "全体家长", "冬季交通安全", "请提醒孩子注意交通安全。")
    parent.say("收到")
    clock.advance(hours=2)
    status = admin.say("通知 N1").text
    assert "未确认：李梅（四(1)班孙悦家长）" in status and "通知 N1 提醒" in status
    assert admin.say("通知 N1 提醒").text.startswith("已提醒 1 位未确认的人：已通知李梅")
    reminders = [p for p in queued("notice") if p.text.startswith("【提醒】")]
    assert [p.name for p in reminders] == ["李梅"]
    assert "提醒过一次，不再重复提醒" in admin.say("通知 N1 提醒").text
    assert len([p for p in queued("notice") if p.text.startswith("【提醒】")]) == 1
    # only the sender and admins see who confirmed
    assert "只有发送人和管理员" in wechat_user("程财宝").say("通知 N1").text


def test_parents_get_a_notice_after_the_quiet_hours(school, services, wechat_user, queued, clock) -> None:
    wechat_user("陈建国"), wechat_user("张丽")
    clock.set("2026-11-23 21:30")
    send(services, "三(2)班家长", "明天降温", "请给孩子添衣。")
    send(services, "教师", "明天降温", "请提醒学生添衣。")
    due = {p.name: p.due for p in queued("notice")}
    assert due["陈建国"] == at("2026-11-24 07:00")
    assert due["张丽"] == at("2026-11-23 21:30")


def test_audiences_and_refusals(school, services) -> None:
    assert send(services, "全体教职工", "大扫除", "周五大扫除。")[2] == ["周春明", "张丽", "程财宝"]
    assert send(services, "后勤", "盘点", "月底盘点。")[2] == ["程财宝"]
    bureau = send(services, "管理员", "安全检查", "下周县局来校检查。", sender="")
    assert bureau[2] == ["周春明"]
    assert send(services, "张丽", "请到后勤处", "领取物品。")[2] == ["张丽"]
    with pytest.raises(AudienceError, match="没有「火星人」这个发送对象"):
        send(services, "火星人", "x", "y")
    with pytest.raises(AudienceError, match=r"「五\(3\)班家长」目前没有人"):
        send(services, "五(3)班家长", "x", "y")


def test_cli_sends_shows_reminds_and_exports_the_record(school, services, houqin, wechat_user, tmp_path: Path
                                                        ) -> None:
    parent = wechat_user("陈建国")
    result = houqin("notices", "send", "--to", "全体家长", "--title", "防溺水告家长书", "远离危险水域")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("已发送通知 N1「防溺水告家长书」给全体家长（2 人）")
    parent.say("收到")
    shown = houqin("notices", "show", "N1").output
    assert "已确认 1/2" in shown and "未确认：李梅" in shown
    assert "错误：没有找到通知 N7。" in houqin("notice", "show", "N7").output
    assert houqin("notices", "remind", "N1").output.startswith("已提醒 1 位未确认的人")
    out = tmp_path / "notices.xlsx"
    assert houqin("export", "notices", "--month", "2026-11", "--out", str(out)).exit_code == 0
    rows = read_ledger(out, "通知回执台账")
    assert rows[0][:3] == ("通知编号", "标题", "发送对象")
    by_name = {r[6]: r for r in rows[1:]}
    assert by_name["陈建国"][7] == "三(2)班陈小明家长" and by_name["陈建国"][9] is not None
    assert by_name["李梅"][9] is None and by_name["李梅"][11] is not None


def test_drill_notice_to_parents_asks_for_a_receipt(school, services, runner, wechat_user, queued) -> None:
    parent = wechat_user("陈建国")
    with services.factory() as s, s.begin():
        s.add(Drill(day=date(2026, 11, 24), at=time(10, 0), kind="消防疏散", scope="全校"))
    runner.run_now("remind_drill_eve", at("2026-11-23 16:00"))
    pushed = queued("drill_notice")
    assert sorted(p.name for p in pushed) == ["李梅", "陈建国"]
    assert "消防疏散演练" in pushed[0].text and "收到 N1" in pushed[0].text
    assert "已确认收到通知 N1「消防疏散演练通知」" in parent.say("收到").text
    with services.factory() as s:
        notice = s.scalar(select(Notice))
        assert notice.kind == "drill_notice" and notice.confirm


def test_each_recipient_confirms_from_their_own_page(school, services, wechat_user, client, clock) -> None:
    wechat_user("陈建国"), wechat_user("李梅")
    send(services, "全体家长", "防溺水告家长书", "远离危险水域。")
    with services.factory() as s:
        pages = {d.person_id: p.token for p, d in s.execute(
            select(Push, Delivery).join(Delivery, Delivery.push_id == Push.id).where(Push.kind == "notice"))}
        chen = s.scalar(select(Person.id).where(Person.name == "陈建国"))
    assert len(set(pages.values())) == 2  # a page each: the page is the recipient's own key
    page = client.get(f"/p/{pages[chen]}").get_data(as_text=True)
    assert "防溺水告家长书" in page and "确认收到</button>" in page
    clock.advance(minutes=5)
    answer = client.post(f"/p/{pages[chen]}/confirm")
    assert answer.status_code == 303
    page = client.get(f"/p/{pages[chen]}").get_data(as_text=True)
    assert "你已于" in page and "确认收到</button>" not in page
    with services.factory() as s:
        rows = {r.name: r for r in s.scalars(select(NoticeRecipient))}
        assert rows["陈建国"].confirmed_via == "详情页" and rows["李梅"].confirmed_at is None
    assert client.post("/p/not-a-token/confirm").status_code == 404
