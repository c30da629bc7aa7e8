"""The 行事历 (issue 17): every rule form across the 2026 autumn term (the 国庆 holiday week, the 调休
Saturday 10月10日, the August vacation), the import's refusals, the reminder T<n>, 任务, 完成 T<n> with
its checklist walked message by message (an 异常 filing a linked repair), the fire self-check as one
task, escalation once, the digest, the month view and the ledger."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from bot.services import Services
from models import FireCheck, RepairTicket, TaskCheck, TaskOccurrence
from scheduler.runner import Runner

SHANGHAI = ZoneInfo("Asia/Shanghai")
HEADER = "任务,规则,负责,提醒提前天数,逾期上报天数,检查项\n"
CALENDAR = """日期,类型,备注
2026-09-01,开学,2026秋学期
2027-01-22,学期结束,2026秋学期
2026-10-01~2026-10-07,放假,国庆节
2026-10-10,调休,国庆调休上课
2027-01-01,放假,元旦
"""
FIRE = "消防设备自检,每月5日(顺延),消防,0,3,灭火器压力;消防栓;应急灯;疏散指示;烟感\n"


def at(local: str) -> datetime:
    return datetime.strptime(local, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI).astimezone(UTC)


@pytest.fixture
def school(people, services: Services, clock, houqin, tmp_path: Path, wechat_user):
    """Admin, a fire-and-plumbing staff member, an IT staff member, a class teacher; the autumn term's
    calendar; everyone bound on 1 August (bind codes last 14 days)."""
    clock.set("2026-08-01 09:00")
    people.add("周春明", "admin")
    people.add("程财宝", "staff", categories="水电;消防;安全")
    people.add("殷奇", "staff", categories="电教")
    people.add("张丽", "teacher", class_name="三(2)班")
    for name in ("周春明", "程财宝", "殷奇", "张丽"):
        wechat_user(name)
    calendar = tmp_path / "calendar.csv"
    calendar.write_text(CALENDAR, encoding="utf-8")
    assert houqin("calendar", "import", str(calendar)).exit_code == 0
    return people


def import_tasks(houqin, tmp_path: Path, rows: str, name: str = "tasks.csv"):
    path = tmp_path / name
    path.write_text(HEADER + rows, encoding="utf-8")
    return houqin("tasks", "import", str(path))


LINE = re.compile(r"^\s+(\d+月\d+日) (?:T\d+ )?(\S+?)(?:（(\d+月)）)? ")


def month(houqin, which: str) -> dict[str, list[str]]:
    """`houqin tasks month` as {task: [due dates]} (a month rule's date shown with its period: 10月30日/11月)."""
    result = houqin("tasks", "month", which)
    assert result.exit_code == 0, result.output
    found: dict[str, list[str]] = {}
    for line in result.output.splitlines():
        m = LINE.match(line)
        if m:
            found.setdefault(m[2], []).append(m[1] + (f"/{m[3]}" if m[3] and m[3] != which[-2:].lstrip("0") + "月"
                                                      else ""))
    return found


RULE_FORMS = """固定日,每月15日,张丽,3,3,
固定日顺延,每月15日(顺延),张丽,3,3,
固定日提前,每月1日(提前),张丽,3,3,
第一个上课日,每月第一个上课日,张丽,3,3,
最后一个上课日,每月最后一个上课日,张丽,3,3,
第二个周三,每月第2个周三,张丽,3,3,
最后一个周五,每月最后一个周五,张丽,3,3,
每周五,每周五,张丽,0,3,
每周六,每周六,张丽,0,3,
每个上课日,每个上课日,张丽,0,1,
八月十二月,8;12月 15日(顺延),张丽,3,3,
九至一月,9-1月 第一个上课日,张丽,3,3,
每年八月,8月25日(顺延),张丽,3,3,
滤芯,每3个月(从上次完成),程财宝,3,3,
一次,2026-12-20,张丽,3,3,
一次顺延,2026-12-20(顺延),张丽,3,3,
"""


def test_every_rule_form_across_the_term(school, houqin, tmp_path: Path, clock) -> None:
    clock.set("2026-08-03 09:00")
    result = import_tasks(houqin, tmp_path, RULE_FORMS)
    assert result.exit_code == 0, result.output
    assert "新增 16 项任务" in result.output
    # August: the vacation month — no school day, so no 上课日 rule and no weekly one; dated ones move to a working day
    aug = month(houqin, "2026-08")
    assert aug["固定日"] == ["8月15日"]  # a Saturday, as it falls
    assert aug["固定日顺延"] == ["8月17日"]  # Saturday 15th → Monday 17th
    assert aug["八月十二月"] == ["8月17日"] and aug["每年八月"] == ["8月25日"]
    assert aug["滤芯"] == ["8月3日"]  # never done: due the day it was imported
    for none in ("第一个上课日", "最后一个上课日", "每周五", "每周六", "每个上课日", "九至一月"):
        assert none not in aug
    # September: term starts on Tuesday 1st; Sunday 20th is an official make-up workday (chinesecalendar)
    sep = month(houqin, "2026-09")
    assert sep["第一个上课日"] == ["9月1日"] and sep["九至一月"] == ["9月1日"]
    assert sep["最后一个上课日"] == ["9月30日"] and sep["第二个周三"] == ["9月9日"]
    assert sep["最后一个周五"] == ["9月25日"]
    assert "9月20日" in sep["每个上课日"] and "9月25日" not in sep["每个上课日"]  # 中秋 Friday 25th is off
    assert sep["每周五"] == ["9月4日", "9月11日", "9月18日"]  # 25th: 中秋
    # October: the 国庆 holiday week (1st–7th) and the 调休 Saturday 10th
    oct_ = month(houqin, "2026-10")
    assert oct_["第一个上课日"] == ["10月8日"] and oct_["最后一个上课日"] == ["10月30日"]
    assert oct_["固定日"] == ["10月15日"] and oct_["第二个周三"] == ["10月14日"]
    assert oct_["固定日提前"] == ["10月30日/11月"]  # 1 November is a Sunday: the Friday before
    assert oct_["每周五"] == ["10月9日", "10月16日", "10月23日", "10月30日"]  # 2nd: holiday
    assert oct_["每周六"] == ["10月10日"]  # the 调休 Saturday is a school day
    daily = oct_["每个上课日"]
    assert "10月10日" in daily and not {"10月1日", "10月5日", "10月7日", "10月11日"} & set(daily)
    assert len(daily) == 18  # 22 weekdays less the 5 holiday ones (1st, 2nd, 5th–7th), plus Saturday 10th
    assert "固定日顺延" in oct_ and oct_["固定日顺延"] == ["10月15日"]
    nov = month(houqin, "2026-11")
    assert nov["固定日"] == ["11月15日"] and nov["固定日顺延"] == ["11月16日"]  # Sunday 15th → Monday
    dec = month(houqin, "2026-12")
    assert dec["八月十二月"] == ["12月15日"] and dec["一次"] == ["12月20日"] and dec["一次顺延"] == ["12月21日"]
    jan = month(houqin, "2027-01")
    assert jan["九至一月"] == ["1月4日"]  # 1 January: 元旦 (the school calendar); Monday 4th
    assert jan["最后一个上课日"] == ["1月22日"]  # the term's last day
    feb = month(houqin, "2027-02")
    assert "第一个上课日" not in feb and "每周五" not in feb  # after the term: the winter vacation


def test_import_names_each_bad_row_and_imports_nothing(school, houqin, tmp_path: Path) -> None:
    rows = ("好任务,每周五,程财宝,1,2,\n"
            "坏规则,每月32日,程财宝,1,2,\n"
            "乱写,有空就做,程财宝,1,2,\n"
            "没人,每周一,李四,1,2,\n"
            "天数,每周一,后勤,很多,2,\n"
            "好任务,每周一,消防,1,2,\n")
    result = import_tasks(houqin, tmp_path, rows)
    assert result.exit_code == 1
    err = result.output
    assert "导入失败，未导入任何数据" in err
    assert "第3行：规则「每月32日」的日期不对" in err
    assert "第4行：规则「有空就做」看不懂" in err and "每月第2个周三" in err  # the forms are shown
    assert "第5行：负责「李四」" in err
    assert "第6行：提醒提前天数「很多」须为 0 到 60 的整数" in err
    assert "第7行：任务「好任务」在第2行已出现" in err
    assert "还没有任务" in houqin("tasks", "list").output


def test_list_shows_next_due_and_warns_of_a_year_the_library_does_not_cover(school, houqin, tmp_path: Path,
                                                                           clock) -> None:
    clock.set("2026-05-20 09:00")
    assert import_tasks(houqin, tmp_path, "月报,每月15日(顺延),周春明,3,3,\n").exit_code == 0
    listing = houqin("tasks", "list").output
    assert "月报 | 每月15日(顺延) | 周春明 | 2026-06-15（周一） | 3天 | 3天" in listing
    assert "尚未收录" not in listing  # 2026 is in chinesecalendar
    clock.set("2039-12-20 09:00")  # a year no chinesecalendar knows yet
    listing = houqin("tasks", "list").output
    assert "2040-01-16（周一）" in listing  # the 15th is a Sunday there
    assert "2040年的法定节假日和调休尚未收录" in listing and "按周一至周五计算" in listing
    assert "houqin calendar import" in listing and "2041年" not in listing
    assert "2040年的法定节假日和调休尚未收录" in houqin("tasks", "month", "2040-01").output


def test_reminder_checklist_walk_and_linked_repair(school, houqin, tmp_path: Path, runner: Runner, queued,
                                                   wechat_user, services: Services, clock) -> None:
    clock.set("2026-10-20 09:00")
    assert import_tasks(houqin, tmp_path, FIRE + "直饮水更换滤芯,8;11月25日(顺延),程财宝,3,3,\n").exit_code == 0
    # the old hard-wired reminder gives way to the task
    assert "行事历任务「消防设备自检」" in runner.run_now("remind_fire_check", at("2026-11-05 08:00")).result
    run = runner.run_now("remind_tasks", at("2026-11-05 08:00"))
    assert "T1 消防设备自检（11月）" in run.result
    (push,) = queued("task_reminder")
    assert push.name == "程财宝"  # 消防 is his category; 殷奇 is not told
    assert push.text.startswith("【任务】T1 消防设备自检（11月） 截止 11月5日")
    assert "灭火器压力、消防栓、应急灯、疏散指示、烟感" in push.text and "完成 T1" in push.text
    runner.run_now("remind_tasks", at("2026-11-06 08:00"))
    assert len(queued("task_reminder")) == 1  # once
    staff = wechat_user("程财宝")
    clock.set("2026-11-05 10:00")
    listing = staff.say("任务").text
    assert "T1 消防设备自检（11月） 截止11月5日" in listing and "直饮水更换滤芯 11月25日" in listing
    first = staff.say("完成 T1 三楼").text
    assert "第1/5项：灭火器压力" in first
    assert "第2/5项：消防栓" in staff.say("正常").text
    assert "照片已记在「消防栓」上" in staff.image(media_id="MEDIA_HYDRANT").text
    offer = staff.say("异常 三楼东 消防栓箱门损坏").text
    assert "已记录异常：消防栓 三楼东 消防栓箱门损坏" in offer and "回复「报修」" in offer and "第3/5项：应急灯" in offer
    filed = staff.say("报修").text
    assert "R1" in filed and "关联 T1「消防栓」" in filed and "第3/5项：应急灯" in filed
    assert "第4/5项" in staff.say("没问题").text
    assert "第5/5项：烟感" in staff.say("电压 24V").text
    done = staff.say("正常").text
    assert "已完成 T1 消防设备自检（11月）（备注：三楼）" in done
    assert "正常 3 项，异常 1 项（消防栓：三楼东 消防栓箱门损坏，R1），读数 1 项" in done
    with services.factory() as s:
        occurrence = s.scalar(select(TaskOccurrence).where(TaskOccurrence.number == 1))
        assert occurrence.done_by.name == "程财宝"
        checks = s.scalars(select(TaskCheck).order_by(TaskCheck.position)).all()
        assert [c.result for c in checks] == ["正常", "异常", "正常", "读数", "正常"]
        assert checks[1].photo.media_id == "MEDIA_HYDRANT" and checks[1].ticket.code == "R1"
        ticket = s.scalar(select(RepairTicket))
        assert ticket.category == "消防" and "消防栓异常" in ticket.description and "T1" in ticket.description
        assert [p.media_id for p in ticket.photos] == ["MEDIA_HYDRANT"]
        assert s.get(FireCheck, "2026-11").done_at is not None  # the month's 消防自检 record too
    assert "无需重复提交" in staff.say("消防自检 完成").text
    assert "已于11月5日由程财宝完成" in staff.say("完成 T1").text
    assert "R1" in staff.say("完成 R1 换了门").text  # 完成 R<n> still reaches the repair capability
    with services.factory() as s:
        assert s.scalar(select(RepairTicket)).status == "done"


def test_fire_self_check_command_closes_the_task(school, houqin, tmp_path: Path, runner: Runner, wechat_user,
                                                 services: Services, clock) -> None:
    clock.set("2026-10-20 09:00")
    assert import_tasks(houqin, tmp_path, FIRE).exit_code == 0
    runner.run_now("remind_tasks", at("2026-11-05 08:00"))
    clock.set("2026-11-05 11:00")
    reply = wechat_user("程财宝").say("消防自检 完成 全部正常").text
    assert "已记录11月消防设备自检完成（备注：全部正常）" in reply and "T1 已一并完成" in reply
    with services.factory() as s:
        assert s.scalar(select(TaskOccurrence)).note == "全部正常"


def test_escalation_once_digest_and_holiday_week(school, houqin, tmp_path: Path, runner: Runner, queued,
                                                wechat_user, clock) -> None:
    clock.set("2026-09-20 09:00")
    assert import_tasks(houqin, tmp_path, "小长假值班计划,9月30日,周春明,3,2,\n"
                                          "周报,每周五,张丽,0,1,\n").exit_code == 0
    assert "T1 小长假值班计划（9月）" in runner.run_now("remind_tasks", at("2026-09-28 08:00")).result
    assert runner.run_now("remind_tasks", at("2026-10-05 08:00")).result == "今天不是工作日"  # 国庆
    assert runner.run_now("escalate_overdue_tasks", at("2026-10-01 08:30")).result == "今天不是工作日"
    # the 调休 Saturday is a working day: the job runs; Friday 9th's 周报 is reminded on its day
    assert runner.run_now("escalate_overdue_tasks", at("2026-10-10 08:30")).result.startswith("已上报管理员 1 项")
    (up,) = queued("task_escalation")
    assert up.name == "周春明" and "T1 小长假值班计划（9月） 截止 9月30日，已逾期10天" in up.text
    runner.run_now("escalate_overdue_tasks", at("2026-10-12 08:30"))
    assert len(queued("task_escalation")) == 1  # once
    run = runner.run_now("remind_tasks", at("2026-10-09 08:00"))
    assert "周报" in run.result
    digest = runner.run_now("send_daily_digest", at("2026-10-12 17:00"))
    assert digest.status == "done"
    (text,) = [q.text for q in queued("daily_digest")]
    assert "■ 行事历" in text and "逾期未完成：T1 小长假值班计划（9月）（截止9月30日，逾期12天，周春明）" in text
    assert "T2 周报（截止10月9日，逾期3天，张丽）" in text
    admin = wechat_user("周春明")
    clock.set("2026-10-12 18:00")
    listing = admin.say("任务").text
    assert "T1 小长假值班计划（9月） 截止9月30日（已逾期12天）" in listing
    # every school's 行事历 has the monthly fire self-check (made by the first reminder run): October's is late too
    assert "全校逾期未完成：3 项" in listing and "T3 消防设备自检（10月）" in listing


def test_who_may_close_a_task(school, houqin, tmp_path: Path, runner: Runner, wechat_user, clock) -> None:
    clock.set("2026-10-20 09:00")
    assert import_tasks(houqin, tmp_path, "设备巡检,每月第2个周三,殷奇,30,3,\n").exit_code == 0
    runner.run_now("remind_tasks", at("2026-10-21 08:00"))  # November's 11th is within 30 days
    clock.set("2026-10-21 09:00")
    teacher = wechat_user("张丽")
    assert "T1 设备巡检（11月） 由殷奇负责，你不能完成它" in teacher.say("完成 T1").text
    assert "没有找到任务 T9" in teacher.say("完成 T9").text
    assert "你目前没有待完成的任务" in teacher.say("任务").text
    assert "仅限管理员、后勤使用" in teacher.say("完成 R1").text  # 完成 R<n> is still the repair command's
    assert "已完成 T1 设备巡检（11月）（备注：投影都好）" in wechat_user("殷奇").say("完成t1 投影都好").text


def test_every_three_months_counts_from_the_last_completion(school, houqin, tmp_path: Path, runner: Runner,
                                                            wechat_user, clock) -> None:
    clock.set("2026-09-01 09:00")
    assert import_tasks(houqin, tmp_path, "二次供水系统定期维护,每3个月(从上次完成),程财宝,5,5,\n").exit_code == 0
    assert "T1" in runner.run_now("remind_tasks", at("2026-09-01 08:00")).result
    clock.set("2026-09-08 10:00")
    assert "已完成 T1" in wechat_user("程财宝").say("完成 T1").text
    assert "2026-12-08（周二）" in houqin("tasks", "list").output
    assert runner.run_now("remind_tasks", at("2026-12-02 08:00")).result.startswith("没有要提醒的任务")
    assert "T2" in runner.run_now("remind_tasks", at("2026-12-03 08:00")).result  # 5 days ahead


def test_month_view_and_ledger(school, houqin, tmp_path: Path, runner: Runner, wechat_user, clock, fetch_media,
                               settings) -> None:
    clock.set("2026-10-20 09:00")
    assert import_tasks(houqin, tmp_path, FIRE + "树木修剪,11月20日,程财宝,3,3,\n").exit_code == 0
    runner.run_now("remind_tasks", at("2026-11-05 08:00"))
    staff = wechat_user("程财宝")
    clock.set("2026-11-05 10:00")
    staff.say("完成 T1")
    staff.say("正常")
    assert "照片已记在「消防栓」上" in staff.image(media_id="media_first").text
    assert "照片已记在「消防栓」上" in staff.image(media_id="media_hydrant").text  # replaces the first
    for answer in ("异常 二楼 灭火器压力偏低", "报修", "正常", "正常", "正常"):
        staff.say(answer)
    assert fetch_media() == 2  # the item's photo, and the repair's own copy
    runner.run_now("remind_tasks", at("2026-11-17 08:00"))  # 树木修剪: T2, three days ahead
    runner.run_now("escalate_overdue_tasks", at("2026-11-23 08:30"))
    clock.set("2026-11-24 10:00")
    out = houqin("tasks", "month", "2026-11").output
    assert "2026-11 行事历：应完成 2 项，已完成 1 项，已逾期 1 项" in out
    assert "11月5日 T1 消防设备自检（11月） 程财宝 已完成 程财宝 11月5日" in out
    assert "11月20日 T2 树木修剪（11月） 程财宝 已逾期" in out
    path = tmp_path / "ledger.xlsx"
    result = houqin("tasks", "ledger", "--month", "2026-11", "--out", str(path))
    assert result.exit_code == 0 and "2026年11月 行事历台账 2 条" in result.output
    sheet = load_workbook(path)["行事历台账"]
    assert sheet["A1"].value == "行事历台账（2026年11月）"  # bot.export.Ledger: a title row, then the header
    rows = [[c.value for c in row] for row in sheet.iter_rows(min_row=3)]
    fire = rows[0]
    assert fire[0] == "T1" and fire[1] == "消防设备自检" and fire[5] == "按时完成" and fire[6] == "程财宝"
    assert "消防栓：异常 二楼 灭火器压力偏低" in fire[9] and "R1（二楼）" in fire[11]
    photo = fire[10].removeprefix("消防栓：")
    assert photo.startswith("tasks/T1/") and photo.endswith(".jpg") and (settings.storage_dir / photo).is_file()
    assert rows[1][:2] == ["T2", "树木修剪"] and rows[1][5] == "逾期未完成（已上报）" and rows[1][12] is not None
    term = houqin("tasks", "ledger", "--term", "--out", str(tmp_path / "term.xlsx"))
    assert term.exit_code == 0 and "2026-2027学年第一学期 行事历台账 2 条" in term.output
    summary = [[c.value for c in row] for row in load_workbook(tmp_path / "term.xlsx")["任务汇总"].iter_rows(min_row=3)]
    # imported on 20 October: November's fire check is the term's first; the tree pruning is late
    assert summary == [["消防设备自检", "每月5日(顺延)", "消防", 1, 1, 1, 0, "100%"],
                       ["树木修剪", "11月20日", "程财宝", 1, 0, 0, 1, "0%"]]


def test_an_abnormal_last_item_can_still_be_reported(school, houqin, tmp_path: Path, runner: Runner, wechat_user,
                                                      services: Services, clock) -> None:
    clock.set("2026-10-20 09:00")
    assert import_tasks(houqin, tmp_path, "二次供水巡检,每周三,程财宝,0,2,水箱;管道\n").exit_code == 0
    runner.run_now("remind_tasks", at("2026-10-21 08:00"))
    clock.set("2026-10-21 09:00")
    staff = wechat_user("程财宝")
    staff.say("完成 T1")
    staff.say("正常")
    done = staff.say("异常 一楼水泵房 管道漏水").text
    assert "已完成 T1 二次供水巡检" in done and "回复「报修」即提交报修单（关联 T1）" in done
    filed = staff.say("报修").text
    assert "R1：一楼水泵房 · 水电 · 管道异常：管道漏水（T1）" in filed and "关联 T1「管道」" in filed
    with services.factory() as s:
        (check,) = [c for c in s.scalars(select(TaskCheck)) if c.result == "异常"]
        assert check.ticket.place == "一楼水泵房" and check.ticket.reporter.name == "程财宝"
    assert "报修地点" in staff.say("报修").text  # afterwards 报修 is the repair dialog again


def test_help_for_the_shared_word_shows_both_commands(school, wechat_user) -> None:
    text = wechat_user("程财宝").say("帮助 完成").text
    assert "完成 R编号" in text
    assert "完成 T编号" in wechat_user("程财宝").say("帮助 任务").text


def test_the_reminder_job_says_when_a_year_is_not_covered(school, houqin, tmp_path: Path, runner: Runner,
                                                          clock) -> None:
    clock.set("2039-12-20 09:00")
    assert import_tasks(houqin, tmp_path, "月报,每月5日(顺延),周春明,3,3,\n").exit_code == 0
    result = runner.run_now("remind_tasks", at("2040-01-03 08:00")).result
    assert result.startswith("已提醒 1 项任务：T1 月报（1月）") and "2040年的法定节假日和调休尚未收录" in result
