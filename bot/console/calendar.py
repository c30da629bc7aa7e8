"""日程: the school calendar (terms, holidays, 调休) as a month calendar to edit, the drills' plan and
log, the safety-education topics per month and the fire self-checks. A day is marked as the calendar
import marks it (bot.school: one row per day and kind), so the school-day rules read it the same way."""

from __future__ import annotations

import calendar as months
from datetime import date, datetime, time, timedelta
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from sqlalchemy import delete, select

from bot.audit import record
from bot.console import base
from bot.console.acting import field, refuse
from bot.console.base import MAX_ID, actor, bp, check_csrf, month_asked, requires
from bot.school import Calendar
from bot.text import month_key, month_span
from models import CalendarDay, Drill, FireCheck, SafetyTopic
from models.school import DAY_KINDS, HOLIDAY, TERM_END, TERM_START, WORKDAY

KIND_NAMES = {HOLIDAY: "放假", WORKDAY: "调休上课", TERM_START: "开学", TERM_END: "学期结束"}
KIND_CLASSES = {HOLIDAY: "holiday", WORKDAY: "workday", TERM_START: "term", TERM_END: "term"}
CLEAR = "clear"
WEEK_HEAD = ("一", "二", "三", "四", "五", "六", "日")
NOTE_LIMIT = 200
MAX_SPAN = 366
BAD_DATE = "日期「{value}」不对：请写成 2026-10-01。"
BAD_SPAN = "结束日期不能早于开始日期，且一次最多标记 366 天。"
BAD_KIND = "请选择类型：放假、调休上课、开学、学期结束或清除标记。"
DAYS_MARKED = "已将 {first}{last} 标记为「{kind}」（{count} 天）。"
DAYS_CLEARED = "已清除 {first}{last} 的标记（{count} 天）。"
BAD_TIME = "时间「{value}」不对：请写成 10:00。"
NO_DRILL_KIND = "请填写演练类型，例如：消防疏散。"
DRILL_SAVED = "已安排 {day} {at} {kind}演练（{scope}）。"
DRILL_EXISTS = "{day} 已有{kind}演练，已改为 {at}（{scope}）。"
DRILL_DELETED = "已删除 {day} 的{kind}演练安排。"
DRILL_LOGGED_KEPT = "{day} 的{kind}演练已记录结果，不能删除。"
BAD_MONTH = "月份须是 1 到 12。"
NO_TOPIC = "请填写教育专题。"
TOPIC_SAVED = "已保存{month}月的安全教育专题。"
TOPIC_LIMIT = 1000


def _date(text: str) -> date:
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        refuse(BAD_DATE.format(value=text))


@bp.get("/calendar")
@requires("admin", "bureau")
def calendar() -> str:
    services = base.services()
    today = services.now().astimezone(services.settings.tz).date()
    month = month_asked(request.args.get("month", ""), today)
    first, after = month_span(month)
    weeks = months.Calendar().monthdatescalendar(month.year, month.month)
    with base.read_db() as db:
        school = Calendar(db)
        marks: dict[date, list[CalendarDay]] = {}
        for row in db.scalars(select(CalendarDay).where(CalendarDay.day >= weeks[0][0],
                                                        CalendarDay.day <= weeks[-1][-1]).order_by(CalendarDay.kind)):
            marks.setdefault(row.day, []).append(row)
        drills = list(db.scalars(select(Drill).where(Drill.day >= first, Drill.day < after)
                                 .order_by(Drill.day, Drill.at)))
        upcoming = list(db.scalars(select(Drill).where(Drill.day >= after).order_by(Drill.day, Drill.at).limit(10)))
        topics = {t.month: t for t in db.scalars(select(SafetyTopic))}
        checks = list(db.scalars(select(FireCheck).order_by(FireCheck.month.desc()).limit(12)))
        school_days = len(school.month_school_days(month))
        return render_template("admin/calendar.html", month=month, weeks=weeks, marks=marks, school=school,
                               today=today, kind_names=KIND_NAMES, kind_classes=KIND_CLASSES, week_head=WEEK_HEAD,
                               drills=drills, upcoming=upcoming, topics=topics, checks=checks,
                               school_days=school_days, earlier=month_key(first - timedelta(days=1)),
                               later=month_key(after), clear=CLEAR, this_month=month_key(month))


@bp.post("/calendar/days")
@requires("admin")
def mark_days() -> Any:
    """Mark a day or a span (放假 10-01~10-07) with one kind, or clear a span's marks."""
    check_csrf()
    first = _date(field("first", "开始日期", 10))
    last_text = field("last", "结束日期", 10)
    last = _date(last_text) if last_text else first
    if last < first or (last - first).days >= MAX_SPAN:
        refuse(BAD_SPAN)
    kind = field("kind", "类型", 16)
    if kind not in (*DAY_KINDS, CLEAR):
        refuse(BAD_KIND)
    note = field("note", "备注", NOTE_LIMIT)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    span: dict[str, Any] = {"first": f"{first:%Y-%m-%d}", "last": f"~{last:%Y-%m-%d}" if last != first else "", "count": len(days)}
    with base.db() as db, db.begin():
        if kind == CLEAR:
            db.execute(delete(CalendarDay).where(CalendarDay.day >= first, CalendarDay.day <= last))
            text = DAYS_CLEARED.format(**span)
        else:
            for day in days:  # as the calendar import writes them: the day's other kinds stay
                db.execute(delete(CalendarDay).where(CalendarDay.day == day, CalendarDay.kind == kind))
                db.add(CalendarDay(day=day, kind=kind, note=note))
            text = DAYS_MARKED.format(**span, kind=KIND_NAMES[kind])
        record(db, actor(), "calendar_mark", span["first"] + span["last"], text + (f" 备注：{note}" if note else ""), at=base.services().now())
    flash(text)
    return redirect(url_for("console.calendar", month=month_key(first)))


@bp.post("/calendar/drills")
@requires("admin")
def plan_drill() -> Any:
    """A drill in the plan (as the drills import: one per day and kind; the same day and kind is moved)."""
    check_csrf()
    day = _date(field("day", "日期", 10))
    at_text = field("at", "时间", 5)
    try:
        at = time.fromisoformat(at_text) if len(at_text) == 5 else None
    except ValueError:
        at = None
    if at is None:
        refuse(BAD_TIME.format(value=at_text))
    kind = field("kind", "演练类型", 32)
    if not kind:
        refuse(NO_DRILL_KIND)
    scope = field("scope", "范围", 100) or "全校"
    with base.db() as db, db.begin():
        existing = db.scalar(select(Drill).where(Drill.day == day, Drill.kind == kind))
        words = {"day": f"{day:%Y-%m-%d}", "at": f"{at:%H:%M}", "kind": kind, "scope": scope}
        if existing is None:
            db.add(Drill(day=day, at=at, kind=kind, scope=scope))
            text = DRILL_SAVED.format(**words)
        else:
            existing.at, existing.scope = at, scope
            text = DRILL_EXISTS.format(**words)
        record(db, actor(), "drill_plan", f"{day:%Y-%m-%d} {kind}", text, at=base.services().now())
    flash(text)
    return redirect(url_for("console.calendar", month=month_key(day)))


@bp.post(f"/calendar/drills/<int(max={MAX_ID}):drill_id>/delete")
@requires("admin")
def delete_drill(drill_id: int) -> Any:
    check_csrf()
    with base.db() as db, db.begin():
        drill = db.get(Drill, drill_id)
        if drill is None:
            abort(404)
        words = {"day": f"{drill.day:%Y-%m-%d}", "kind": drill.kind}
        if drill.logged_at is not None:
            refuse(DRILL_LOGGED_KEPT.format(**words))
        record(db, actor(), "drill_delete", f"{words['day']} {drill.kind}", DRILL_DELETED.format(**words), at=base.services().now())
        db.delete(drill)
        month = month_key(drill.day)
    flash(DRILL_DELETED.format(**words))
    return redirect(url_for("console.calendar", month=month))


@bp.post("/calendar/topics")
@requires("admin")
def save_topic() -> Any:
    check_csrf()
    number = base.number(field("month", "月份", 2))
    if number is None or not 1 <= number <= 12:
        refuse(BAD_MONTH)
    topics = field("topics", "教育专题", TOPIC_LIMIT, lines=True)
    activities = field("activities", "安全活动", TOPIC_LIMIT, lines=True)
    if not topics:
        refuse(NO_TOPIC)
    with base.db() as db, db.begin():
        row = db.get(SafetyTopic, number)
        if row is None:
            db.add(SafetyTopic(month=number, topics=topics, activities=activities))
        else:
            row.topics, row.activities = topics, activities
        record(db, actor(), "safety_topic", f"{number}月", f"专题：{topics}；活动：{activities}", at=base.services().now())
    flash(TOPIC_SAVED.format(month=number))
    return redirect(url_for("console.calendar", month=request.form.get("back", "")) if
                    request.form.get("back", "") else url_for("console.calendar"))
