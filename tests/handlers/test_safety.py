"""The safety programme: drill reminders and log, safety topics, 夕会, fire self-checks, daily digest."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.services import Services
from handlers.safety import import_drills, import_topics
from models import Drill, FireCheck
from scheduler.runner import NOT_SCHOOL_DAY, Runner

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(local: str) -> datetime:
    return datetime.strptime(local, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI).astimezone(UTC)


@pytest.fixture
def school(people, services: Services, clock):
    """A small school: admin, a fire-safety staff member, an IT staff member, a class teacher, a
    subject teacher, a parent — and a fire drill on Tuesday 24 November 2026 at 10:00."""
    clock.set("2026-11-20 08:00")  # bind codes are issued now and last 14 days: past every test's dates
    people.add("周春明", "admin")
    people.add("程财宝", "staff", categories="水电;消防;安全")
    people.add("殷奇", "staff", categories="电教")
    people.add("张丽", "teacher", class_name="三(2)班")
    people.add("王强", "teacher")
    people.add("陈建国", "parent")
    with services.factory() as s, s.begin():
        s.add(Drill(day=date(2026, 11, 24), at=time(10, 0), kind="消防疏散", scope="全校"))
    return people


def names(rows) -> set[str]:
    return {r.name for r in rows}


def test_drill_eve_reminds_teachers_and_notifies_parents(school, runner: Runner, queued) -> None:
    run = runner.run_now("remind_drill_eve", at("2026-11-23 16:00"))
    assert run.status == "done"
    reminders = queued("drill_reminder")
    assert names(reminders) == {"张丽", "王强"}
    assert all("明天11月24日（周二） 10:00" in r.text and "消防疏散" in r.text for r in reminders)
    notices = queued("drill_notice")
    assert names(notices) == {"陈建国"} and "消防疏散演练" in notices[0].text
    # the day after, nothing more
    runner.run_now("remind_drill_eve", at("2026-11-24 16:00"))
    assert len(queued()) == 3


def test_drill_morning_reminds_teachers_only(school, runner: Runner, queued) -> None:
    runner.run_now("remind_drill_morning", at("2026-11-24 07:30"))
    assert names(queued()) == {"张丽", "王强"}
    assert "今天 10:00 举行消防疏散演练" in queued()[0].text


def test_admin_logs_the_drill_and_bad_input_changes_nothing(school, wechat_user, services: Services, clock) -> None:
    clock.set("2026-11-24 10:30")
    admin = wechat_user("周春明")
    assert "疏散用时「九十」不对" in admin.say("演练 完成 九十").text
    assert "请按格式发送" in admin.say("演练 开始").text
    with services.factory() as s:
        assert s.scalar(select(Drill)).logged_at is None
    reply = admin.say("演练 完成 3.5 二楼东楼梯拥挤")
    assert "已记录11月24日（周二）消防疏散演练：疏散用时 3.5 分钟，问题：二楼东楼梯拥挤" in reply.text
    with services.factory() as s:
        drill = s.scalar(select(Drill))
        assert drill.evacuation_minutes == 3.5 and drill.problems == "二楼东楼梯拥挤"
        assert drill.logged_by is not None and drill.logged_by.name == "周春明"
    assert "（已记录）" in admin.say("演练").text


def test_an_unplanned_drill_is_logged_for_today_without_saying_演练_twice(school, wechat_user, services: Services,
                                                                        clock) -> None:
    clock.set("2026-12-01 10:30")  # December has no drill planned
    reply = wechat_user("周春明").say("演练 完成 4 二楼东楼梯拥挤")
    assert reply.text == "已记录12月1日（周二）应急演练：疏散用时 4 分钟，问题：二楼东楼梯拥挤。"
    with services.factory() as s:
        drill = s.scalar(select(Drill).where(Drill.day == date(2026, 12, 1)))
        assert drill is not None and drill.kind == "应急" and drill.evacuation_minutes == 4


@pytest.mark.parametrize("typed", ["演练完成 用时4分钟", "演练 完成 疏散用时4分钟", "演练 完成 四分钟"])
def test_drill_minutes_as_people_write_them(school, wechat_user, services: Services, clock, typed) -> None:
    clock.set("2026-11-24 10:30")
    assert "疏散用时 4 分钟，未发现问题" in wechat_user("周春明").say(typed).text
    with services.factory() as s:
        assert s.scalar(select(Drill)).evacuation_minutes == 4


def test_drill_log_is_for_admin_only(school, wechat_user, services: Services, clock) -> None:
    clock.set("2026-11-24 10:30")
    teacher = wechat_user("张丽")
    reply = teacher.say("演练 完成 3")
    assert "仅限管理员使用" in reply.text
    with services.factory() as s:
        assert s.scalar(select(Drill)).logged_at is None


def test_unlogged_drill_is_escalated_on_the_months_last_school_day(school, runner: Runner, queued) -> None:
    assert runner.run_now("escalate_unlogged_drill", at("2026-11-27 17:30")).result == "不是本月最后一个上课日"
    assert queued() == []
    run = runner.run_now("escalate_unlogged_drill", at("2026-11-30 17:30"))  # Monday 30 Nov
    assert run.result == "已提醒管理员：本月演练未记录"
    (row,) = queued()
    assert row.name == "周春明" and "11月的应急演练尚未记录" in row.text and "消防疏散" in row.text


def test_logged_drill_is_not_escalated(school, runner: Runner, queued, wechat_user, clock) -> None:
    clock.set("2026-11-24 10:30")
    wechat_user("周春明").say("演练 完成 4")
    runner.run_now("escalate_unlogged_drill", at("2026-11-30 17:30"))
    assert queued("drill_escalation") == []


def test_safety_topic_goes_to_parents_on_the_first_school_day(school, runner: Runner, queued) -> None:
    # 1 November 2026 is a Sunday: the first school day is Monday the 2nd
    assert runner.run_now("push_safety_topic", at("2026-11-01 07:40")).result == NOT_SCHOOL_DAY
    runner.run_now("push_safety_topic", at("2026-11-02 07:40"))
    (row,) = queued()
    assert row.name == "陈建国" and "119消防安全" in row.text and "校车安全演练" in row.text
    runner.run_now("push_safety_topic", at("2026-11-03 07:40"))
    assert len(queued()) == 1


def test_topics_import_replaces_the_default(school, runner: Runner, queued, services: Services, tmp_path: Path) -> None:
    csv = tmp_path / "topics.csv"
    csv.write_text("月份,教育专题,安全活动\n十一月,防火防电,消防演练\n", encoding="utf-8")
    with services.factory() as s, s.begin():
        assert import_topics(s, csv) == 1
    runner.run_now("push_safety_topic", at("2026-11-02 07:40"))
    assert "防火防电" in queued()[0].text and "119" not in queued()[0].text


def test_friday_talk_reminds_class_teachers_with_the_topic(school, runner: Runner, queued) -> None:
    runner.run_now("remind_friday_talk", at("2026-11-27 14:00"))
    (row,) = queued()
    assert row.name == "张丽" and "夕会" in row.text and "校车安全教育" in row.text


def test_fire_check_reminder_escalation_and_close(school, runner: Runner, queued, wechat_user, services: Services,
                                                  clock) -> None:
    assert runner.run_now("remind_fire_check", at("2026-11-04 08:00")).result == "未到本月自检提醒日"
    runner.run_now("remind_fire_check", at("2026-11-05 08:00"))
    (row,) = queued()
    assert row.name == "程财宝" and "消防设备自检" in row.text  # 消防 is his category; 殷奇 is not told
    runner.run_now("remind_fire_check", at("2026-11-06 08:00"))
    assert len(queued()) == 1
    assert runner.run_now("escalate_fire_check", at("2026-11-06 08:30")).result == "仍在3天期限内"
    runner.run_now("escalate_fire_check", at("2026-11-09 08:30"))
    escalations = queued("fire_check_escalation")
    assert names(escalations) == {"周春明"} and "程财宝" in escalations[0].text
    runner.run_now("escalate_fire_check", at("2026-11-10 08:30"))
    assert len(queued("fire_check_escalation")) == 1
    clock.set("2026-11-10 09:00")
    staff = wechat_user("程财宝")
    assert "已记录11月消防设备自检完成（备注：三楼灭火器已更换）" in staff.say("消防自检 完成 三楼灭火器已更换").text
    assert "无需重复提交" in staff.say("消防自检 完成").text
    with services.factory() as s:
        check = s.get(FireCheck, "2026-11")
        assert check.done_at is not None and check.done_by.name == "程财宝"


def test_fire_check_closed_before_deadline_is_not_escalated(school, runner: Runner, queued, wechat_user,
                                                            clock) -> None:
    runner.run_now("remind_fire_check", at("2026-11-05 08:00"))
    clock.set("2026-11-06 09:00")
    wechat_user("程财宝").say("消防自检 完成")
    runner.run_now("escalate_fire_check", at("2026-11-09 08:30"))
    assert queued("fire_check_escalation") == []


def test_fire_check_is_for_staff_and_admin(school, wechat_user, clock) -> None:
    clock.set("2026-11-10 09:00")
    assert "仅限管理员、后勤使用" in wechat_user("张丽").say("消防自检 完成").text


def test_daily_digest_goes_to_admin_with_each_section(school, runner: Runner, queued, wechat_user, clock) -> None:
    clock.set("2026-11-24 10:30")
    wechat_user("周春明").say("演练 完成 3")
    run = runner.run_now("send_daily_digest", at("2026-11-24 17:00"))
    assert run.status == "done"
    (row,) = queued("daily_digest")
    assert row.name == "周春明"
    assert "【后勤日报】11月24日（周二）" in row.text
    assert "演练：消防疏散 10:00，已记录，疏散用时 3 分钟" in row.text
    assert "收到消息" in row.text
    assert runner.run_now("send_daily_digest", at("2026-11-28 17:00")).result == NOT_SCHOOL_DAY  # Saturday


def test_drills_import_checks_rows(services: Services, tmp_path: Path) -> None:
    from bot.tables import TableError

    good = tmp_path / "drills.csv"
    good.write_text("日期,时间,类型,范围\n2026-12-15,10:00,防震,全校\n", encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text("日期,时间,类型\n2026-12-15,25:00,防震\n2026-12-16,10:00,\n", encoding="utf-8")
    with services.factory() as s, s.begin():
        assert import_drills(s, good) == 1
        assert import_drills(s, good) == 0  # re-import changes nothing
        with pytest.raises(TableError) as err:
            import_drills(s, bad)
    assert [p[:3] for p in err.value.problems] == ["第2行", "第3行"]
