"""The safety programme's jobs: drill reminders and escalation, the month's safety topic, the Friday
夕会 reminder, fire self-check reminder and escalation; and the safety section of the daily digest."""

from __future__ import annotations

import contextlib
from datetime import date, datetime, timedelta

from sqlalchemy import select

from bot.school import admins, get_setting, people_with_role
from bot.text import day_label, month_key
from handlers.notices import ALL_PARENTS, AudienceError, send_notice
from handlers.safety import drills_in_month, month_topic
from handlers.tasks.schedule import fire_task
from models import Drill, FireCheck, Person
from scheduler import JobContext

DRILL_EVE_TEACHERS = "【演练提醒】明天{day} {time} 将举行{kind}演练（范围：{scope}）。请提前向学生讲清疏散路线和注意事项。"
DRILL_EVE_PARENTS_TITLE = "{kind}演练通知"
DRILL_EVE_PARENTS = ("学校将于明天{day} {time} 举行{kind}演练，届时请不必担心。"
                     "欢迎在家和孩子一起复习逃生要点。")
DRILL_MORNING = "【演练提醒】今天 {time} 举行{kind}演练（范围：{scope}）。请按预案组织学生有序疏散。"
DRILL_UNLOGGED = "【演练未记录】{month}的应急演练尚未记录（{plan}）。演练后请发送「演练 完成 疏散用时分钟 [问题]」。"
DRILL_UNPLANNED = "本月尚未安排"
SAFETY_TOPIC = "【{month}安全教育】本月主题：{topics}。{activities}请家长在家配合孩子进行安全教育。"
SAFETY_ACTIVITIES = "学校活动：{activities}。"
FRIDAY_TALK = "【夕会提醒】今天周五，请在夕会上进行安全教育。本月主题：{topics}。"
FIRE_REMINDER = "【消防设备自检】请在3天内完成{month}消防设备自检（灭火器、消防栓、应急灯、疏散指示），完成后发送「消防自检 完成 [备注]」。"
FIRE_ESCALATION = "【逾期未完成】{month}消防设备自检已提醒3天仍未完成。负责人：{who}。"
FIRE_GRACE = timedelta(days=3)
FIRE_BY_TASK = "消防设备自检由行事历任务「{title}」提醒和上报（houqin tasks list）"


def remind_drill_eve(ctx: JobContext, now: datetime) -> str:
    """16:00 the day before a drill: teachers are reminded, parents get a notice to confirm (回执,
    handlers.notices)."""
    tomorrow = ctx.local_now.date() + timedelta(days=1)
    drills = list(ctx.db.scalars(select(Drill).where(Drill.day == tomorrow).order_by(Drill.at)))
    for d in drills:
        fields = {"day": day_label(d.day), "time": f"{d.at:%H:%M}", "kind": d.kind, "scope": d.scope}
        named = {"drill": d.kind, "scope": d.scope, "time": f"{d.day:%Y-%m-%d} {d.at:%H:%M}"}
        ctx.outbox.notify(people_with_role(ctx.db, "teacher"), "drill_reminder", DRILL_EVE_TEACHERS.format(**fields),
                          fields=named)
        with contextlib.suppress(AudienceError):  # a school with no parents yet
            send_notice(ctx.db, ctx.outbox, None, ALL_PARENTS[0], DRILL_EVE_PARENTS_TITLE.format(**fields),
                        DRILL_EVE_PARENTS.format(**fields), confirm=True, kind="drill_notice", sender_name="安全",
                        fields=named)
    return f"{len(drills)} 场演练的前一天提醒" if drills else "明天没有演练"


def remind_drill_morning(ctx: JobContext, now: datetime) -> str:
    """07:30 on the drill's morning: teachers are reminded."""
    today = ctx.local_now.date()
    drills = list(ctx.db.scalars(select(Drill).where(Drill.day == today).order_by(Drill.at)))
    for d in drills:
        ctx.outbox.notify(people_with_role(ctx.db, "teacher"), "drill_reminder",
                          DRILL_MORNING.format(time=f"{d.at:%H:%M}", kind=d.kind, scope=d.scope))
    return f"{len(drills)} 场演练的当天提醒" if drills else "今天没有演练"


def escalate_unlogged_drill(ctx: JobContext, now: datetime) -> str:
    """On the month's last school day: a month with no logged drill is escalated to admin."""
    today = ctx.local_now.date()
    school_days = ctx.calendar.month_school_days(today)
    if not school_days or today != school_days[-1]:
        return "不是本月最后一个上课日"
    drills = drills_in_month(ctx.db, today)
    if any(d.logged_at for d in drills):
        return "本月演练已记录"
    plan = "；".join(f"计划{day_label(d.day)} {d.kind}" for d in drills) or DRILL_UNPLANNED
    ctx.outbox.notify(admins(ctx.db), "drill_escalation", DRILL_UNLOGGED.format(month=f"{today.month}月", plan=plan),
                      fields={"month": f"{today.month}月"})
    return "已提醒管理员：本月演练未记录"


def push_safety_topic(ctx: JobContext, now: datetime) -> str:
    """The month's first school day: the month's safety-education topics go to parents."""
    today = ctx.local_now.date()
    school_days = ctx.calendar.month_school_days(today)
    if not school_days or today != school_days[0]:
        return "不是本月第一个上课日"
    topics, activities = month_topic(ctx.db, today.month)
    if not topics:
        return f"{today.month}月没有安全教育专题"
    text = SAFETY_TOPIC.format(month=f"{today.month}月", topics=topics,
                               activities=SAFETY_ACTIVITIES.format(activities=activities) if activities else "")
    push = ctx.outbox.notify(people_with_role(ctx.db, "parent"), "safety_topic", text,
                             fields={"month": f"{today.month}月", "topic": topics}).push
    return f"已推送{today.month}月安全教育专题给 {len(push.deliveries) if push else 0} 位家长"


def remind_friday_talk(ctx: JobContext, now: datetime) -> str:
    """Friday 14:00: class teachers are reminded of the 夕会 safety talk, with the month's topic."""
    topics, _ = month_topic(ctx.db, ctx.local_now.month)
    class_teachers = [p for p in people_with_role(ctx.db, "teacher") if p.class_name]
    ctx.outbox.notify(class_teachers, "friday_talk", FRIDAY_TALK.format(topics=topics or "安全常规教育"),
                      fields={"topic": topics or "安全常规教育"})
    return f"已提醒 {len(class_teachers)} 位班主任"


def responsible_for_fire(ctx: JobContext) -> list[Person]:
    category = get_setting(ctx.db, "fire_check_category")
    staff = people_with_role(ctx.db, "staff")
    return [p for p in staff if category in p.category_list] or staff or admins(ctx.db)


def remind_fire_check(ctx: JobContext, now: datetime) -> str:
    """On the configured day (or the first school day after it) remind the responsible staff once a month."""
    today = ctx.local_now.date()
    task = fire_task(ctx.db)
    if task is not None:  # the fire self-check is one of the 行事历's tasks: scheduler/tasks.py reminds
        return FIRE_BY_TASK.format(title=task.title)
    if today.day < int(get_setting(ctx.db, "fire_check_day")):
        return "未到本月自检提醒日"
    key = month_key(today)
    check = ctx.db.get(FireCheck, key)
    if check is not None and (check.reminded_at or check.done_at):
        return "本月已提醒或已完成"
    if check is None:
        check = FireCheck(month=key)
        ctx.db.add(check)
    check.reminded_at = ctx.now
    people = responsible_for_fire(ctx)
    ctx.outbox.notify(people, "fire_check_reminder", FIRE_REMINDER.format(month=f"{today.month}月"),
                      fields={"month": f"{today.month}月"})
    return "已提醒：" + "、".join(p.name for p in people)


def escalate_fire_check(ctx: JobContext, now: datetime) -> str:
    """Not closed within 3 days of the reminder: escalate to admin, once."""
    today = ctx.local_now.date()
    task = fire_task(ctx.db)
    if task is not None:
        return FIRE_BY_TASK.format(title=task.title)
    check = ctx.db.get(FireCheck, month_key(today))
    if check is None or check.reminded_at is None or check.done_at or check.escalated_at:
        return "无需升级"
    if ctx.now - check.reminded_at < FIRE_GRACE:
        return "仍在3天期限内"
    check.escalated_at = ctx.now
    who = "、".join(p.name for p in responsible_for_fire(ctx))
    ctx.outbox.notify(admins(ctx.db), "fire_check_escalation", FIRE_ESCALATION.format(month=f"{today.month}月", who=who),
                      fields={"month": f"{today.month}月", "person": who})
    return "已升级给管理员"


def digest_section(ctx: JobContext, day: date) -> str | None:
    """Safety lines for the daily digest: today's drill, this month's fire self-check."""
    lines = []
    for d in ctx.db.scalars(select(Drill).where(Drill.day == day)):
        status = (f"已记录，疏散用时 {d.evacuation_minutes:g} 分钟" if d.logged_at and d.evacuation_minutes is not None
                  else "未记录")
        lines.append(f"演练：{d.kind} {d.at:%H:%M}，{status}")
    check = ctx.db.get(FireCheck, month_key(day))
    if check is not None:
        state = "已完成" if check.done_at else ("已逾期，已升级" if check.escalated_at else "待完成")
        lines.append(f"消防自检（{day.month}月）：{state}")
    return "\n".join(lines) if lines else None
