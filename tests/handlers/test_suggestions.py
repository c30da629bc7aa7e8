"""意见箱: signed and anonymous suggestions through the webhook, routed by topic, answered with 回复 Y<n>,
read back with 我的意见; in the digest and the ledger; the anonymous ones kept out of the message log."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.export import read_ledger
from bot.inbox import REDACTED
from bot.school import set_setting
from bot.services import Services
from models import InboundMessage, Suggestion

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(local: str) -> datetime:
    return datetime.strptime(local, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI).astimezone(UTC)


@pytest.fixture
def school(people, services: Services, clock):
    """The 分工 of seeds/001: 宦欢 the canteen (and the bus manager), 程财宝 水电 门窗, 周春明 admin."""
    clock.set("2026-11-23 09:00")
    people.add("周春明", "admin")
    people.add("宦欢", "canteen")
    people.add("程财宝", "staff", categories="水电;门窗;保洁")
    people.add("张丽", "teacher", class_name="三(2)班")
    people.add("陈建国", "parent")
    with services.factory() as s, s.begin():
        set_setting(s, "bus_manager", "宦欢")
    return people


def test_a_signed_suggestion_goes_to_the_canteen_and_its_answer_back(school, wechat_user, queued) -> None:
    teacher, canteen = wechat_user("张丽"), wechat_user("宦欢")
    reply = teacher.say("意见 食堂午餐的汤太咸了，希望淡一点").text
    assert reply.startswith("已收到你的意见 Y1，已转给宦欢。")
    new = queued("suggestion_new")
    assert [p.name for p in new] == ["宦欢"] and "Y1（食堂）张丽：食堂午餐的汤太咸了" in new[0].text
    assert canteen.say("回复 Y1 已调整盐量，谢谢建议").text == "已答复意见 Y1。已通知张丽。"
    answer = queued("suggestion_reply")
    assert [p.name for p in answer] == ["张丽"] and "已调整盐量，谢谢建议" in answer[0].text
    mine = teacher.say("我的意见").text
    assert "Y1" in mine and "【已答复】" in mine and "答复（宦欢）：已调整盐量，谢谢建议" in mine


def test_an_anonymous_suggestion_names_nobody_and_its_sender_still_reads_the_answer(
        school, wechat_user, queued, services: Services, runner) -> None:
    parent, staff, teacher = wechat_user("陈建国"), wechat_user("程财宝"), wechat_user("张丽")
    reply = parent.say("匿名意见 三楼厕所的水龙头漏水很久了").text
    assert reply.startswith("已匿名收到你的意见 Y1，将在整点与其他匿名意见一起转给程财宝")
    assert queued("suggestion_new") == []  # not at the moment it came: that moment is in the log
    assert runner.run_now("push_anonymous_suggestions", at("2026-11-23 10:00")).result == "已转交匿名意见：Y1"
    new = queued("suggestion_new")
    assert [p.name for p in new] == ["程财宝"] and "Y1（水电）匿名：三楼厕所的水龙头漏水很久了" in new[0].text
    assert "陈建国" not in new[0].text
    answered = staff.say("回复 Y1 已经换了新的水龙头").text
    assert answered == "已答复意见 Y1。提意见的人是匿名的，无法推送；对方发送「我的意见」时会看到答复。"
    assert queued("suggestion_reply") == []
    mine = parent.say("我的意见").text
    assert "Y1" in mine and "（匿名）" in mine and "答复（程财宝）：已经换了新的水龙头" in mine
    assert "Y1" not in teacher.say("我的意见").text
    with services.factory() as s:
        row = s.scalar(select(Suggestion))
        assert row.person_id is None and row.filed_at is None and row.claim and parent.openid not in row.claim
        logged = list(s.scalars(select(InboundMessage).where(InboundMessage.openid == parent.openid)))
        private = [m for m in logged if m.content == REDACTED]
        assert len(private) == 2  # the suggestion and 我的意见: that they came, not what they said
        for m in logged:
            assert "水龙头" not in f"{m.content}{m.payload}{m.reply}" and "Y1" not in f"{m.reply}"


def test_anonymous_asked_for_its_text_keeps_the_text_out_of_the_log(school, wechat_user, services) -> None:
    parent = wechat_user("陈建国")
    assert "请直接发送你的匿名意见内容" in parent.say("匿名意见").text
    assert parent.say("校门口接送时太拥挤，希望错峰放学").text.startswith("已匿名收到你的意见 Y1，将在整点")
    with services.factory() as s:
        assert s.scalar(select(Suggestion.topic)) == "安保"
        texts = [f"{m.content}{m.payload}{m.reply}" for m in s.scalars(select(InboundMessage))]
        assert not any("拥挤" in t for t in texts)


def test_only_the_one_it_went_to_or_an_admin_answers(school, wechat_user) -> None:
    wechat_user("张丽").say("意见 班车司机开得太快")
    teacher = wechat_user("张丽")
    assert "意见 Y1 转给的是宦欢" in teacher.say("回复 Y1 我来回").text
    assert wechat_user("周春明").say("回复 Y1 已提醒司机注意车速").text.startswith("已答复意见 Y1。")
    assert wechat_user("周春明").say("回复 Y9 好").text == "没有找到意见 Y9。"
    assert "请按格式发送：回复 Y编号 内容" in teacher.say("回复 Y1").text


def test_the_digest_and_the_ledger(school, wechat_user, runner, queued, houqin, tmp_path: Path) -> None:
    wechat_user("张丽").say("意见 希望多一些课间活动的器材")
    wechat_user("陈建国").say("匿名意见 食堂的饭有时候是凉的")
    wechat_user("宦欢").say("回复 Y2 已加装保温柜")
    runner.run_now("send_daily_digest", at("2026-11-23 17:00"))
    digest = queued("daily_digest")[0].text
    assert "■ 意见箱" in digest and "新意见 Y2（食堂，匿名）：食堂的饭有时候是凉的" in digest
    assert "本月意见 2 条（匿名 1 条），已答复 1 条，待答复 1 条" in digest and "待答复：Y1" in digest
    out = tmp_path / "suggestions.xlsx"
    result = houqin("export", "suggestions", "--month", "2026-11", "--out", str(out))
    assert result.exit_code == 0 and f"意见箱台账 2026年11月：2 行，{out}" in result.output
    rows = read_ledger(out, "意见箱台账")
    assert rows[1][2:5] == ("实名", "张丽", "综合")
    assert rows[2][2:4] == ("匿名", "匿名") and rows[2][7] == "已答复" and rows[2][10] == "已加装保温柜"
    assert "陈建国" not in str(rows)


def test_a_replayed_anonymous_suggestion_gets_a_reply_push_that_names_nothing(school, wechat_user, services,
                                                                              queued) -> None:
    from bot.engine import Incoming
    from bot.inbox import PRIVATE_REPLAYED

    parent = wechat_user("陈建国")  # a message the spool kept while the database was away, replayed now
    msg = Incoming.from_wechat({"FromUserName": parent.openid, "ToUserName": "gh_test", "MsgType": "text",
                                "Content": "匿名意见 操场的跑道有个坑", "MsgId": "998877", "CreateTime": "1795000000"})
    assert services.inbox.replayed(msg, services.now()).startswith("已匿名收到你的意见 Y1")
    replies = queued("reply")
    assert [r.text for r in replies] == [PRIVATE_REPLAYED]
