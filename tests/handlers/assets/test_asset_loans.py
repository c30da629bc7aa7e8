"""Borrowing and returning through the webhook: by text and by scanning a thing's QR code, quantities,
the lender's approval, every refusal changing nothing, 我借的, and the rolled-up due reminders and the
overdue escalation with fixed clocks."""

from __future__ import annotations

from sqlalchemy import select

from handlers.assets.common import BAD_QUANTITY
from models import AssetEvent, RepairTicket
from tests.conftest import asset_id, at, heard
from tests.handlers.assets.conftest import loans, scan, status_of


def test_borrow_and_return_by_quantity(school, wechat_user, services) -> None:
    teacher = wechat_user("王强")
    reply = teacher.say("借 篮球 3 周五")
    assert "已借用 J1：篮球 ×3" in reply.text and "11月27日（周五）" in reply.text
    assert "篮球 ×3" in teacher.say("我借的").text
    assert "只剩 7 个可借" in wechat_user("张丽").say("借 篮球×8").text
    assert loans(services) == [("J1", "王强", 3, "out")]
    assert "已归还 J1：篮球 ×2" in teacher.say("还 篮球 2").text  # part of it back
    assert loans(services) == [("J1", "王强", 1, "out"), ("J2", "王强", 2, "returned")]
    assert "已归还 J1" in teacher.say("还 TY-001").text
    assert "不用再还" in teacher.say("还 篮球").text  # a double return changes nothing
    assert loans(services)[0][3] == "returned" and len(loans(services)) == 2
    assert "没有借用中的物品" in teacher.say("我借的").text
    with services.factory() as s:
        kinds = [e.kind for e in s.scalars(select(AssetEvent).where(AssetEvent.asset_id == asset_id(services, "TY-001"))
                                           .order_by(AssetEvent.id))]
    assert kinds == ["registered", "lent", "returned", "returned"]


def test_bad_quantities_unknown_things_and_refusals_change_nothing(school, wechat_user, services) -> None:
    teacher = wechat_user("王强")
    for said in ("借 篮球 0", "借 篮球 -1", "借 篮球 1.5"):
        assert teacher.say(said).text.startswith(BAD_QUANTITY.split("「")[0]), said
    assert "没有找到「飞机」" in teacher.say("借 飞机").text
    assert "不外借" in teacher.say("借 DJ-0302").text
    assert "领钥匙" in teacher.say("借 YS-KX1").text
    assert "不能早于今天" in teacher.say("借 篮球 11月20日").text
    assert "请按格式发送" in teacher.say("借").text
    assert "你没有借用" in teacher.say("还 篮球").text
    assert loans(services) == []
    wechat_user("张丽").say("借 篮球 2")
    assert "是张丽借用的（J1），只能由借用人归还" in teacher.say("还 篮球").text  # return by someone else
    assert loans(services) == [("J1", "张丽", 2, "out")]


def test_a_single_thing_is_lent_out_and_back(school, wechat_user, services, fake_wechat, deliver) -> None:
    teacher = wechat_user("张丽")
    wechat_user("殷奇")
    reply = teacher.say("借 笔记本电脑 12月1日")  # needs 殷奇's approval
    assert "已申请借用 J1" in reply.text and "需殷奇批准" in reply.text and "已通知殷奇" in reply.text
    deliver()
    assert heard(fake_wechat, "殷奇", "张丽", "笔记本电脑", "批准 J1")
    assert status_of(services, "DJ-101") == "in_use"
    assert "等待批准" in teacher.say("还 笔记本电脑").text
    assert "需由殷奇审批" in wechat_user("王强").say("批准 J1").text
    assert "已批准 J1" in wechat_user("殷奇").say("批准 J1").text
    assert "已处理过" in wechat_user("殷奇").say("批准 J1").text
    deliver()
    assert heard(fake_wechat, "张丽", "J1", "已由殷奇批准", "12月1日")
    assert status_of(services, "DJ-101") == "on_loan"
    assert "已全部借出（张丽）" in wechat_user("王强").say("借 DJ-101").text
    assert "已归还 J1" in teacher.say("还 DJ-101").text
    assert status_of(services, "DJ-101") == "in_use"


def test_declined_loan_tells_the_borrower(school, wechat_user, services, fake_wechat, deliver) -> None:
    wechat_user("张丽").say("借 DJ-101")
    assert "已驳回 J1" in wechat_user("殷奇").say("驳回 J1 期末要用").text
    deliver()
    assert heard(fake_wechat, "张丽", "J1", "未获殷奇批准", "期末要用")
    assert loans(services) == [("J1", "张丽", 1, "declined")]


def test_scanning_a_thing_offers_borrow_return_and_repair(school, wechat_user, services) -> None:
    teacher = wechat_user("王强")
    reply = scan(teacher, f"asset:{asset_id(services, 'TY-001')}")
    assert "借用" in reply.text and "归还" in reply.text and "报修" in reply.text
    assert "已借用 J1：篮球 ×2" in teacher.say("借用 2").text
    scan(teacher, f"asset:{asset_id(services, 'TY-001')}")
    assert "已归还 J1：篮球 ×2" in teacher.say("还").text  # the short word, which is also a command
    scan(teacher, f"asset:{asset_id(services, 'TY-001')}")
    assert "R1" in teacher.say("气不足了").text  # anything else is the repair's description
    with services.factory() as s:
        ticket = s.scalar(select(RepairTicket))
        assert ticket is not None and ticket.asset is not None and ticket.asset.code == "TY-001"
    assert "正在维修，暂不能借用" in teacher.say("借 篮球").text  # an open repair: 维修中
    assert "TY-001 篮球 ×10 · 维修中" in wechat_user("程财宝").say("本室资产").text
    assert loans(services)[-1][3] == "returned"


def test_scanning_a_thing_not_lent_still_files_a_repair(school, wechat_user, services) -> None:
    teacher = wechat_user("张丽")
    reply = scan(teacher, f"asset:{asset_id(services, 'DJ-0302')}")
    assert "三(2)班 投影仪" in reply.text and "借用" not in reply.text


def test_due_reminders_are_rolled_up_once_a_day(school, wechat_user, services, clock, runner, fake_wechat,
                                                deliver) -> None:
    teacher = wechat_user("王强")
    teacher.say("借 篮球 2 周二")
    teacher.say("领钥匙 科学室 门")  # a key: due today
    wechat_user("张丽").say("借 篮球 1 周五")
    assert runner.run_now("remind_loans_due", at("2026-11-23 08:00")).result.startswith("已提醒：王强（1项）")
    result = runner.run_now("remind_loans_due", at("2026-11-24 08:00")).result
    assert result == "已提醒：王强（2项）"
    clock.set("2026-11-24 08:01")
    deliver()
    sent = [c for c in fake_wechat.sent_to("王强") if "借用到期提醒" in c.text]
    assert len(sent) == 2  # one a day, in either order (the worker sends a batch concurrently)
    both = next(c.text for c in sent if "篮球" in c.text)
    assert "篮球 ×2" in both and "科学室门钥匙 第1把" in both and "逾期1天" in both and "今天到期" in both
    assert fake_wechat.sent_to("张丽") == []
    clock.set("2026-11-24 09:00")
    wechat_user("王强").say("还钥匙 科学室")
    assert runner.run_now("remind_loans_due", at("2026-11-25 08:00")).result == "已提醒：王强（1项）"


def test_overdue_loans_are_escalated_once_to_custodian_and_admin(school, wechat_user, runner, queued) -> None:
    wechat_user("周春明")
    wechat_user("程财宝")
    wechat_user("王强").say("借 篮球 2 周二")
    assert runner.run_now("escalate_overdue_loans", at("2026-11-26 08:30")).result == "没有需要督办的逾期借用"
    assert runner.run_now("escalate_overdue_loans", at("2026-11-27 08:30")).result.startswith("逾期 1 项")
    assert runner.run_now("escalate_overdue_loans", at("2026-11-28 08:30")).result == "没有需要督办的逾期借用"
    pushes = queued(kind="loan_overdue")
    assert sorted(p.name for p in pushes) == ["周春明", "程财宝"]  # the custodian and admin, once each
    assert all("王强" in p.text and "篮球 ×2" in p.text and "逾期3天" in p.text for p in pushes)
