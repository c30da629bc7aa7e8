"""Disposal: 报废 by staff or the custodian, approved by admin with the history attached; the thing
leaves the active register and stays in the ledger."""

from __future__ import annotations

from tests.handlers.assets.conftest import status_of


def test_disposal_asked_approved_and_out_of_the_register(school, wechat_user, services, queued) -> None:
    wechat_user("周春明")
    teacher = wechat_user("王强")
    assert "只有后勤、管理员或" in teacher.say("报废 DJ-0302 太旧了").text  # not his
    zhang = wechat_user("张丽")  # responsible for 三(2)班
    assert "请写明报废原因" in zhang.say("报废 DJ-0302").text
    assert "没有编号为「XX-1」的资产" in zhang.say("报废 XX-1 坏了").text
    reply = zhang.say("报废 DJ-0302 灯泡老化无法维修")
    assert "已申请报废 BF1：投影仪（DJ-0302）" in reply.text and "已通知周春明" in reply.text
    assert "已有报废申请 BF1" in zhang.say("报废 DJ-0302 再申请").text
    ask = queued(kind="disposal_request")[0]
    assert ask.name == "周春明" and "经历" in ask.text and "登记 导入登记" in ask.text
    assert "需由管理员审批" in wechat_user("程财宝").say("批准 BF1").text
    assert status_of(services, "DJ-0302") == "in_use"
    assert "已批准 BF1" in wechat_user("周春明").say("批准 BF1").text
    assert status_of(services, "DJ-0302") == "disposed"
    assert "投影仪" not in zhang.say("本室资产").text  # out of the active register
    assert "已报废" in wechat_user("周春明").say("资产 DJ-0302").text  # its file stays
    assert [p.name for p in queued(kind="disposal_decided")] == ["张丽"]


def test_a_thing_on_loan_is_not_disposed(school, wechat_user) -> None:
    wechat_user("王强").say("借 篮球 1")
    assert "还在借用中（王强）" in wechat_user("程财宝").say("报废 TY-001 破了").text
