"""The 行事历's jobs: remind each task's responsible people when its due date is near (T<n>), escalate an
overdue one to admin once, and the digest's section of overdue tasks."""

from __future__ import annotations

from datetime import date, datetime

from bot.school import admins
from handlers.tasks.rules import TaskCalendar
from handlers.tasks.schedule import (
    due_label,
    due_occurrences,
    ensure_fire_task,
    open_occurrences,
    responsible,
)
from models import TaskOccurrence
from scheduler import JobContext

REMINDER = "【任务】{code} {label} 截止 {due}\n{what}"
WHAT_PLAIN = "完成后发送「完成 {code} [备注]」。"
WHAT_CHECKLIST = "检查项：{items}。检查时发送「完成 {code}」，逐项回复正常 / 异常 情况 / 读数，可附照片。"
ESCALATION = "【任务逾期】{code} {label} 截止 {due}，已逾期{days}天仍未完成。负责：{who}。"
NOT_WORKDAY = "今天不是工作日"
NOTHING_DUE = "没有要提醒的任务"
REMINDED = "已提醒 {n} 项任务：{items}"
NOTHING_LATE = "没有需要上报的逾期任务"
ESCALATED = "已上报管理员 {n} 项逾期任务：{items}"
DIGEST_LATE = "逾期未完成：{code} {label}（截止{due}，逾期{days}天，{who}）"
DIGEST_TODAY = "今天截止：{code} {label}（{who}）"
DIGEST_MORE = "……另有 {n} 项（houqin tasks month 查看）"
DIGEST_SHOWN = 10


def push_fields(occurrence: TaskOccurrence, who: str) -> dict[str, str]:
    return {"code": occurrence.code, "task": occurrence.label, "due": due_label(occurrence.due), "person": who}


def reminder_text(occurrence: TaskOccurrence) -> str:
    items = occurrence.task.items
    what = (WHAT_CHECKLIST.format(items="、".join(items), code=occurrence.code) if items
            else WHAT_PLAIN.format(code=occurrence.code))
    return REMINDER.format(code=occurrence.code, label=occurrence.label, due=due_label(occurrence.due), what=what)


def remind_tasks(ctx: JobContext, now: datetime) -> str:
    """Working days 08:00: each task whose due date is within its 提醒提前天数 gets its T<n>, pushed once
    to whoever its 负责 names (admin when that names nobody)."""
    today = ctx.local_now.date()
    cal = TaskCalendar(ctx.db)
    if not cal.is_workday(today):
        return NOT_WORKDAY
    ensure_fire_task(ctx.db, today)  # every school's 行事历 has the monthly fire self-check
    due = due_occurrences(ctx.db, cal, today, ctx.settings.tz)
    for occurrence in due:
        people = responsible(ctx.db, occurrence.task)
        ctx.outbox.notify(people, "task_reminder", reminder_text(occurrence),
                          fields=push_fields(occurrence, "、".join(p.name for p in people)))
        occurrence.reminded_at = ctx.now
    result = REMINDED.format(n=len(due), items="、".join(f"{o.code} {o.label}" for o in due)) if due else NOTHING_DUE
    return "；".join([result, *cal.warnings])  # a year chinesecalendar does not cover is said, not guessed


def days_late(occurrence: TaskOccurrence, today: date) -> int:
    return (today - occurrence.due).days


def escalate_overdue_tasks(ctx: JobContext, now: datetime) -> str:
    """Working days 08:30: a task still open its 逾期上报天数 after its due date goes to admin, once."""
    today = ctx.local_now.date()
    if not TaskCalendar(ctx.db).is_workday(today):
        return NOT_WORKDAY
    late = [o for o in open_occurrences(ctx.db) if o.escalated_at is None and days_late(o, today) > 0
            and days_late(o, today) >= o.task.escalate_days]
    for occurrence in late:
        who = "、".join(p.name for p in responsible(ctx.db, occurrence.task))
        ctx.outbox.notify(admins(ctx.db), "task_escalation",
                          ESCALATION.format(code=occurrence.code, label=occurrence.label, due=due_label(occurrence.due),
                                            days=days_late(occurrence, today), who=who),
                          fields=push_fields(occurrence, who))
        occurrence.escalated_at = ctx.now
    if not late:
        return NOTHING_LATE
    return ESCALATED.format(n=len(late), items="、".join(f"{o.code} {o.label}" for o in late))


def digest_section(ctx: JobContext, day: date) -> str | None:
    """Overdue tasks, and those due today, for the daily digest."""
    lines = []
    for occurrence in open_occurrences(ctx.db):
        who = "、".join(p.name for p in responsible(ctx.db, occurrence.task))
        if occurrence.due < day:
            lines.append(DIGEST_LATE.format(code=occurrence.code, label=occurrence.label,
                                            due=due_label(occurrence.due), days=days_late(occurrence, day), who=who))
        elif occurrence.due == day:
            lines.append(DIGEST_TODAY.format(code=occurrence.code, label=occurrence.label, who=who))
    if len(lines) > DIGEST_SHOWN:
        lines[DIGEST_SHOWN:] = [DIGEST_MORE.format(n=len(lines) - DIGEST_SHOWN)]
    return "\n".join(lines) if lines else None
