"""Canteen jobs: Thursday 12:00 the canteen is reminded if next week's menu is unpublished; Thursday
16:00 the published menu goes to parents and teachers — or, still unpublished, admin is told and
nothing is sent; the monthly satisfaction survey (the term questionnaire in the term-survey months);
and the canteen section of the daily digest."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from sqlalchemy import select

from bot.school import admins, get_setting, people_with_role
from bot.text import day_bounds, month_key
from handlers.canteen import (
    MONTHLY_PUSH,
    TERM_PUSH,
    accompanied_count,
    average,
    counted_ratings,
    find_week,
    group_ratings,
    month_day,
    next_week_of,
    open_survey,
    push_menu,
    term_key,
    week_key,
    week_monday,
)
from models import ROLE_NAMES, CanteenFeedback, MenuWeek, SurveyResponse, SurveyRound
from models.canteen import MONTHLY, TERM
from scheduler import JobContext

REMIND_UNPUBLISHED = "【菜单提醒】下周（{first}–{last}）菜单还未发布。请核对后发送「发布菜单」，16:00 将推送给家长和教师。"
REMIND_MISSING = "【菜单提醒】下周（{first}–{last}）菜单还没有导入。请导入（houqin menu import）后发送「发布菜单」，16:00 推送给家长和教师。"
ADMIN_UNPUBLISHED = ("【菜单未发布】下周（{first}–{last}）菜单到 16:00 仍{state}，本周没有推送给家长和教师。"
                     "食堂负责人：{who}。发布后（「发布菜单」）会立即推送。")
STATE_DRAFT, STATE_MISSING = "未发布（草稿）", "未导入"
DIGEST_TODAY = "今日评价 {count} 条，平均 {avg} 分（{groups}）"
DIGEST_NONE = "今日无评价"
DIGEST_ALERT = "食品安全：{code} {group} {rating}分：{comment}"
DIGEST_SURVEY_ALERT = "食品安全（调查）：{group}：{comment}"
DIGEST_MEALS = "本月陪餐 {count} 次"
DIGEST_MENU = "下周菜单尚未发布"


def _next_week(ctx: JobContext) -> tuple[tuple[int, int], MenuWeek | None, date, date]:
    target = next_week_of(ctx.local_now.date())
    monday = week_monday(*target)
    return target, find_week(ctx.db, *target), monday, monday + timedelta(days=4)


def _has_school_days(ctx: JobContext, first: date, last: date) -> bool:
    return bool(ctx.calendar.school_days(first, last))


def remind_menu_publish(ctx: JobContext, now: datetime) -> str:
    """Thursday 12:00: next week's menu not yet published → remind the canteen (admin if nobody has the role)."""
    target, menu, first, last = _next_week(ctx)
    if menu is not None and menu.published:
        return f"下周菜单 {week_key(*target)} 已发布"
    if not _has_school_days(ctx, first, last):
        return "下周没有上课日"
    template = REMIND_UNPUBLISHED if menu is not None and menu.items else REMIND_MISSING
    people = people_with_role(ctx.db, "canteen") or admins(ctx.db)
    ctx.outbox.notify(people, "menu_reminder", template.format(first=month_day(first), last=month_day(last)),
                      fields={"week": f"{month_day(first)}-{month_day(last)}"})
    if menu is not None:
        menu.reminded_at = ctx.now
    return "已提醒：" + "、".join(p.name for p in people)


def push_weekly_menu(ctx: JobContext, now: datetime) -> str:
    """Thursday 16:00: the published menu to parents and teachers; unpublished → admin is told, nothing sent."""
    target, menu, first, last = _next_week(ctx)
    if not _has_school_days(ctx, first, last):
        return "下周没有上课日，不推送菜单"
    if menu is not None and menu.published and menu.items:
        if menu.pushed_at is not None:
            return f"下周菜单 {week_key(*target)} 已推送过"
        count = push_menu(ctx.db, menu, ctx.now, ctx.settings, ctx.outbox)
        return f"已推送下周菜单 {week_key(*target)} 给 {count} 位家长和教师"
    state = STATE_DRAFT if menu is not None and menu.items else STATE_MISSING
    who = "、".join(p.name for p in people_with_role(ctx.db, "canteen")) or "未登记"
    ctx.outbox.notify(admins(ctx.db), "menu_unpublished", ADMIN_UNPUBLISHED.format(
        first=month_day(first), last=month_day(last), state=state, who=who),
        fields={"week": f"{month_day(first)}-{month_day(last)}", "status": state})
    if menu is not None:
        menu.late_told_at = ctx.now
    return f"下周菜单{state}：已告知管理员，未推送"


def term_survey_months(ctx: JobContext) -> set[int]:
    return {int(m) for m in re.split(r"[;；,，、]", get_setting(ctx.db, "canteen_term_survey_months"))
            if m.strip().isdigit()}


def push_canteen_survey(ctx: JobContext, now: datetime) -> str:
    """On the configured day (or the first school day after it), once a month: parents and teachers
    are asked for a rating — in the term-survey months, the term questionnaire. A plain reply answers."""
    today = ctx.local_now.date()
    if today.day < int(get_setting(ctx.db, "canteen_survey_day")):
        return "未到本月调查日"
    key = month_key(today)
    if ctx.db.get(SurveyRound, key) is not None:
        return "本月已推送满意度调查"
    term = today.month in term_survey_months(ctx)
    people = people_with_role(ctx.db, "parent", "teacher")
    kind, period = (TERM, term_key(today)) if term else (MONTHLY, key)
    text = TERM_PUSH if term else MONTHLY_PUSH.format(month=f"{today.month}月")
    ctx.outbox.notify(people, "canteen_survey", text, fields={"month": f"{today.month}月"})
    opened = open_survey(ctx.db, people, kind, period, ctx.now)
    ctx.db.add(SurveyRound(month=key, kind=kind, pushed_at=ctx.now, recipients=len(people)))
    return f"已推送{'学期问卷' if term else '月度调查'}给 {len(people)} 人（{opened} 个微信可直接回复作答）"


def digest_section(ctx: JobContext, day: date) -> str | None:
    """Today's ratings (every feedback counted; the average of each giver's latest score, by group), every
    food-safety feedback (a later rating never hides one), this month's 陪餐 count."""
    rows = list(ctx.db.scalars(select(CanteenFeedback).where(CanteenFeedback.day == day)
                               .order_by(CanteenFeedback.number)))
    lines = []
    if rows:
        groups = "，".join(f"{ROLE_NAMES[g]} {len(v)} 条 {average(v)} 分" for g, v in group_ratings(rows).items())
        lines.append(DIGEST_TODAY.format(count=len(rows), avg=average(counted_ratings(rows)), groups=groups))
    lines += [DIGEST_ALERT.format(code=r.code, group=ROLE_NAMES.get(r.role, r.role), rating=r.rating,
                                  comment=r.comment) for r in rows if r.alert_words]
    start, end = day_bounds(day, ctx.settings.tz)
    surveys = ctx.db.scalars(select(SurveyResponse).where(
        SurveyResponse.at >= start, SurveyResponse.at < end, SurveyResponse.alert_words != ""))
    lines += [DIGEST_SURVEY_ALERT.format(group=ROLE_NAMES.get(s.role, s.role), comment=s.comment) for s in surveys]
    meals = accompanied_count(ctx.db, day)
    if not lines and not meals:
        return None
    if not rows:
        lines.insert(0, DIGEST_NONE)
    lines.append(DIGEST_MEALS.format(count=meals))
    if day.weekday() in (3, 4):  # Thursday, Friday: next week's menu should be out
        upcoming = find_week(ctx.db, *next_week_of(day))
        if upcoming is None or not upcoming.published:
            lines.append(DIGEST_MENU)
    return "\n".join(lines)
