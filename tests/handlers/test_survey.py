"""后勤工作满意度测评 through the webhook and `houqin survey`: one item per message or all at once, parents
asked only their items, reminders to who has not finished, results with the 5-answer floor, the
comparison with last term and last year, the XLSX with its chart — and anonymity checked in the database:
after an anonymous suggestion and survey answers, no row links them to a person or an openid in the clear."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from bot.inbox import REDACTED
from bot.services import Services
from models import Base, InboundMessage, OfficeSurvey, OfficeSurveyTaker, OfficeSurveyTally, Person

SHANGHAI = ZoneInfo("Asia/Shanghai")
STAFF = ("周春明", "程财宝", "殷奇", "张丽", "王强", "李娜")
PARENTS = ("陈建国", "李梅")


def at(local: str) -> datetime:
    return datetime.strptime(local, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI).astimezone(UTC)


@pytest.fixture
def school(people, services: Services, clock):
    clock.set("2027-01-04 09:00")  # a Monday in January: the seeds' survey month
    people.add("周春明", "admin")
    people.add("程财宝", "staff", categories="水电;门窗")
    people.add("殷奇", "staff", categories="电教")
    for name in ("张丽", "王强", "李娜"):
        people.add(name, "teacher")
    for name in PARENTS:
        people.add(name, "parent")
    return people


@pytest.fixture
def started(school, wechat_user, houqin) -> dict[str, Any]:
    users = {name: wechat_user(name) for name in (*STAFF, *PARENTS)}
    result = houqin("survey", "start", "--days", "7")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "已开始2026秋后勤满意度测评（2027-01-04至2027-01-10），已发给 6 位教职工、2 位家长。"
    return users


def test_answered_one_item_per_message_or_all_at_once(started, queued) -> None:
    pushed = {p.name: p.text for p in queued("office_survey")}
    assert set(pushed) == {*STAFF, *PARENTS}
    assert "共7项" in pushed["张丽"] and "第1/7项：食堂" in pushed["张丽"]
    assert "共4项" in pushed["陈建国"] and "第1/4项：食堂" in pushed["陈建国"]
    teacher = started["张丽"]
    assert teacher.say("5").text == "第2/7项：保洁，请回复 1-5。"  # a plain reply answers the push
    assert teacher.say("4 保洁阿姨很辛苦，但厕所下午有异味").text == "第3/7项：维修，请回复 1-5。"
    assert teacher.say("很好").text.startswith("没有看懂。")
    assert teacher.say("不满意 维修要等很久").text == "第4/7项：校车，请回复 1-5。"
    assert teacher.say("跳过").text == "第5/7项：安保，请回复 1-5。"
    assert teacher.say("5 4 4").text == "已记录3项。测评已提交，谢谢！你的回答是匿名的，后勤处只看到汇总。"
    assert teacher.say("满意度测评").text == "你已经完成了本次后勤满意度测评，谢谢！"
    parent = started["陈建国"]
    assert parent.say("5 4 3 5").text.startswith("已记录4项。测评已提交")


def test_results_show_a_group_from_five_answers_and_compare_with_earlier_terms(
        started, houqin, services: Services, tmp_path: Path) -> None:
    with services.factory() as s, s.begin():  # last term (2026春) and a year ago (2025秋), as tallies
        for period, level in (("2026春", 3), ("2025秋", 2)):
            old = OfficeSurvey(period=period, items="食堂;保洁", parent_items="食堂", opens_on=date(2026, 1, 5),
                               closes_on=date(2026, 1, 9))
            s.add(old)
            s.flush()
            s.add(OfficeSurveyTally(survey_id=old.id, item="食堂", group="staff", level=level, count=10))
    for i, name in enumerate(STAFF[:5]):
        started[name].say("5 4 4 3 5 4 5" if i % 2 else "4 5 3 3 5 4 4")
    started["陈建国"].say("2 太咸")
    started["李梅"].say("1 饭是凉的")
    out = tmp_path / "survey.xlsx"
    result = houqin("survey", "results", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "2026秋后勤满意度测评（2027-01-04至2027-01-10）：7 人参与" in result.output
    assert "食堂：7 份，满意率 71%（上学期 0%，去年同期 0%）" in result.output
    assert "维修：5 份，满意率 40%（上学期 —，去年同期 —）" in result.output
    book = load_workbook(out)
    rows = {r[0]: r for r in book["满意度"].iter_rows(values_only=True)}
    assert rows["食堂"][4] == "100%" and rows["食堂"][5] == "不足5份"  # 2 parents: their figure is held back
    assert rows["食堂"][6:11] == (2, 3, 0, 1, 1)  # 非常满意 … 非常不满意: the whole item, 7 answers
    assert rows["宿舍"][1] == 5 and rows["校车"][2] == "0%" and rows["物品领用"][2] == "100%"
    comments = [r[1] for r in book["意见（匿名）"].iter_rows(values_only=True)][1:]
    assert sorted(comments) == ["太咸", "饭是凉的"]
    assert len(book["图表"]._charts) == 1


def test_reminders_go_once_to_who_has_not_finished(started, runner, queued) -> None:
    started["张丽"].say("5 5 5 5 5 5 5")
    started["王强"].say("4")  # one of seven
    assert runner.run_now("remind_office_survey", at("2027-01-05 15:30")).result == "未到提醒日"
    run = runner.run_now("remind_office_survey", at("2027-01-08 15:30"))
    assert run.result == "已提醒 7 位尚未完成的人。"
    reminded = {p.name: p.text for p in queued("office_survey") if p.text.startswith("【提醒】")}
    assert "张丽" not in reminded and "还有6项未填" in reminded["王强"] and "第2/7项：保洁" in reminded["王强"]
    assert runner.run_now("remind_office_survey", at("2027-01-08 15:30"), force=True).result == "已提醒过"
    assert started["王强"].say("3").text == "第3/7项：维修，请回复 1-5。"


def test_a_second_survey_in_the_term_is_refused(started, houqin) -> None:
    result = houqin("survey", "start")
    assert result.exit_code == 1 and "2026秋的后勤满意度测评已于 01-04 开始" in result.output


def _rows(services: Services) -> list[tuple[str, dict[str, Any]]]:
    out = []
    with services.factory() as s:
        for table in Base.metadata.sorted_tables:
            for row in s.execute(select(table)).mappings():
                out.append((table.name, dict(row)))
    return out


def _person_columns() -> dict[str, set[str]]:
    """Per table, the columns that point at a person."""
    found: dict[str, set[str]] = {}
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if any(fk.column.table.name == "people" for fk in column.foreign_keys):
                found.setdefault(table.name, set()).add(column.name)
    return found


def test_no_row_links_an_anonymous_answer_or_suggestion_to_its_sender(started, services: Services, runner,
                                                                       queued) -> None:
    parent = started["陈建国"]
    assert parent.say("匿名意见 接送时校门口的保安态度很差").text.startswith("已匿名收到你的意见 Y1")
    assert parent.say("满意度测评").text.startswith("【后勤工作满意度测评】")
    parent.say("2 菜式太单调吃不饱")
    parent.say("1 2 3")
    parent.say("我的意见")
    runner.run_now("push_anonymous_suggestions", at("2027-01-04 10:00"))  # the suggestion's push to 保安's boss
    with services.factory() as s:
        person_id = s.scalar(select(Person.id).where(Person.name == "陈建国"))
        assert s.get(OfficeSurveyTaker, (1, person_id)).answered == 4  # who took part, not what they said
    secrets_ = ("保安态度很差", "菜式太单调吃不饱")
    openid, people_refs = parent.openid, _person_columns()
    carrying = 0
    for table, row in _rows(services):
        text = " ".join(str(v) for v in row.values())
        if any(secret in text for secret in secrets_):
            carrying += 1
            assert openid not in text and "陈建国" not in text, (table, row)
            assert all(row.get(c) != person_id for c in people_refs.get(table, ())), (table, row)
            if table == "pushes":  # the suggestion pushed to whoever answers it: not to its sender
                with services.factory() as s:
                    from models import Delivery
                    assert {d.openid for d in s.scalars(select(Delivery).where(Delivery.push_id == row["id"]))} \
                        .isdisjoint({openid})
        if openid in text or any(row.get(c) == person_id for c in people_refs.get(table, ())):
            # a row about the parent holds no level, comment, suggestion or its number
            assert not any(secret in text for secret in secrets_), (table, row)
            if table == "inbound_messages" and row["content"] == REDACTED:
                assert row["reply"] in (REDACTED, "") and "Y1" not in str(row["payload"])
    assert carrying >= 3  # the suggestion, its push to whoever answers it, and the comment: unattributed
    assert [p.name for p in queued("suggestion_new")] == ["周春明"]  # 安保: no staff of that category here
    with services.factory() as s:
        levels = list(s.scalars(select(OfficeSurveyTally).where(OfficeSurveyTally.group == "parent")))
        assert sorted((t.item, t.level) for t in levels) == [("安保", 2), ("宿舍", 3), ("校车", 1), ("食堂", 2)]
        assert not set(OfficeSurveyTally.__table__.columns.keys()) & {"person_id", "openid", "at", "created_at"}
        logged = list(s.scalars(select(InboundMessage).where(InboundMessage.openid == openid)))
        assert sum(m.content == REDACTED for m in logged) == 5


def test_a_sentence_for_something_else_passes_the_waiting_survey_by(started, services: Services) -> None:
    teacher = started["王强"]
    reply = teacher.say("三楼男厕所的灯坏了好几天了").text
    assert not reply.startswith("没有看懂") and "1-5" not in reply
    with services.factory() as s:
        logged = s.scalars(select(InboundMessage).where(InboundMessage.openid == teacher.openid)
                           .order_by(InboundMessage.id.desc())).first()
        assert logged.content == "三楼男厕所的灯坏了好几天了"  # not private: it was no survey answer
    assert "报修" in reply  # the repair capability took it up
    teacher.say("取消")
    assert "第1/7项：食堂" in teacher.say("满意度测评").text  # the survey is there to go back to
