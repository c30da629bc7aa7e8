"""The 行事历 for the office: `houqin tasks import FILE` (任务 规则 负责 提醒提前天数 逾期上报天数 检查项),
the list of next due dates, a month's view (due, done, overdue), and the 行事历 ledger of a month or a
term (task, due, done by, when, checklist results, photos, linked repairs) as XLSX sheets."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from bot.tables import TableError, read_table
from bot.text import local_naive, month_span
from handlers.tasks.rules import RuleError, TaskCalendar, parse_rule
from handlers.tasks.schedule import check_assignee, due_label, next_due, responsible, rule_of
from models import Task, TaskOccurrence
from models.tasks import FIRE_CHECK_KEY

COLUMNS = {"title": ("任务", "任务名称", "事项"), "rule": ("规则", "周期", "时间"), "assignee": ("负责", "负责人"),
           "remind": ("提醒提前天数", "提前提醒天数", "提醒"), "escalate": ("逾期上报天数", "逾期天数", "上报"),
           "checklist": ("检查项", "检查内容")}
FIRE_TITLES = {"消防设备自检", "消防自检"}
DEFAULT_REMIND, DEFAULT_ESCALATE = 3, 3
MAX_DAYS = 60
NO_TITLE = "任务为空"
NO_ASSIGNEE = "负责为空"
TITLE_TWICE = "第{row}行：任务「{title}」在第{first}行已出现"
TITLE_TOO_LONG = "任务「{title}」太长（最多40字）"
BAD_DAYS = "{column}「{value}」须为 0 到 60 的整数（天）"
ROW_PROBLEM = "第{row}行：{problem}"
PHOTO_NOT_SAVED = "（照片尚未下载）"
LEDGER_DONE, LEDGER_DONE_LATE, LEDGER_OPEN, LEDGER_ESCALATED = "按时完成", "逾期完成", "未完成", "逾期未完成（已上报）"
STATUS_DONE, STATUS_LATE, STATUS_OPEN, STATUS_PLANNED = "已完成", "已逾期", "待完成", "未到提醒日"
LEDGER_HEADER = ["编号", "任务", "周期", "截止日期", "负责", "状态", "完成人", "完成时间", "备注", "检查结果", "照片",
                 "关联报修", "逾期上报时间"]
LEDGER_WIDE = ["检查结果", "照片", "关联报修", "备注"]
SUMMARY_HEADER = ["任务", "规则", "负责", "应完成", "已完成", "按时完成", "逾期未完成（已上报）", "按时完成率"]


@dataclass
class ImportResult:
    added: int = 0
    updated: int = 0
    warnings: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"新增 {self.added} 项任务，更新 {self.updated} 项"


def _days(value: str, column: str, default: int, problems: list[str]) -> int:
    text = value.removesuffix("天").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) > MAX_DAYS:
        problems.append(BAD_DAYS.format(column=column, value=value))
        return default
    return int(text)


def _rule_text(row: Any) -> str:
    cell = row.cells.get("rule")
    if isinstance(cell, datetime):
        return f"{cell:%Y-%m-%d}"
    if isinstance(cell, date):
        return f"{cell:%Y-%m-%d}"
    return str(row.get("rule"))


def task_values(db: Session, title: str, rule: str, assignee: str, remind: str, escalate: str,
                checklist: str) -> tuple[dict[str, Any], list[str]]:
    """One task's fields as written (an import row, the console's form) checked the same way: the values
    to store, and each problem in Chinese (nothing is stored while there is one)."""
    problems: list[str] = []
    title, rule, assignee = title.strip(), rule.strip(), assignee.strip()
    if not title:
        problems.append(NO_TITLE)
    elif len(title) > 40:
        problems.append(TITLE_TOO_LONG.format(title=title))
    try:
        parse_rule(rule)
    except RuleError as exc:
        problems.append(str(exc))
    reason = check_assignee(db, assignee) if assignee else NO_ASSIGNEE
    if reason:
        problems.append(reason)
    items = ";".join(i.strip() for i in checklist.replace("；", ";").replace("、", ";").split(";") if i.strip())
    values = {"title": title, "rule": rule, "assignee": assignee,
              "remind_days": _days(remind, "提醒提前天数", DEFAULT_REMIND, problems),
              "escalate_days": _days(escalate, "逾期上报天数", DEFAULT_ESCALATE, problems), "checklist": items,
              "key": FIRE_CHECK_KEY if title in FIRE_TITLES else ""}
    return values, problems


def import_tasks(db: Session, path: str | Path, today: date) -> ImportResult:
    """Every row checked first (a problem names its row and nothing is written); then each task is added,
    or updated by its title. `today` (school-local) is the first day a task can fall due."""
    rows = read_table(path, COLUMNS, required=("title", "rule", "assignee"))
    problems: list[str] = []
    parsed: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for row in rows:
        values, found = task_values(db, row.get("title"), _rule_text(row), row.get("assignee"), row.get("remind"),
                                    row.get("escalate"), row.get("checklist"))
        problems += [ROW_PROBLEM.format(row=row.number, problem=p) for p in found]
        title = values["title"]
        if title and title in seen:
            problems.append(TITLE_TWICE.format(row=row.number, title=title, first=seen[title]))
        if title:
            seen.setdefault(title, row.number)
            parsed.append(values)
    if problems:
        raise TableError(problems)
    result = ImportResult()
    for values in parsed:
        task = db.scalar(select(Task).where(Task.title == values["title"]))
        if task is None:
            db.add(Task(**values, created_on=today))
            result.added += 1
        else:
            for key, value in values.items():
                setattr(task, key, value)
            task.active = True
            result.updated += 1
    db.flush()
    cal = TaskCalendar(db)  # the year ahead's dates looked up once: an uncovered year is warned of now
    for task in db.scalars(select(Task).where(Task.active.is_(True))):
        task_rule = rule_of(task)
        if task_rule is not None and not task_rule.from_completion:
            task_rule.due_dates(cal, today, today + timedelta(days=366))
    result.warnings = cal.warnings
    return result


# -- tasks list ---------------------------------------------------------------------------------
@dataclass
class Listing:
    rows: list[list[str]]
    warnings: list[str]


LIST_HEADER = ["任务", "规则", "负责", "下次截止", "提醒提前", "逾期上报", "检查项"]


def task_listing(db: Session, today: date, tz: tzinfo) -> Listing:
    cal = TaskCalendar(db)
    rows = []
    for task in db.scalars(select(Task).where(Task.active.is_(True)).order_by(Task.id)
                           .options(selectinload(Task.occurrences))):  # next_due reads them: one query, not one a task
        due = next_due(db, cal, task, today, tz)
        shown = f"{due[0]:%Y-%m-%d}（周{'一二三四五六日'[due[0].weekday()]}）" if due else "无"
        rows.append([task.title, task.rule, task.assignee, shown, f"{task.remind_days}天", f"{task.escalate_days}天",
                     "、".join(task.items)])
    return Listing(rows, cal.warnings)


# -- month view --------------------------------------------------------------------------------
@dataclass
class Entry:
    due: date
    task: Task
    period: str
    occurrence: TaskOccurrence | None

    def status(self, today: date) -> str:
        if self.occurrence is not None and self.occurrence.done_at is not None:
            return STATUS_DONE
        if self.due < today:
            return STATUS_LATE
        return STATUS_OPEN if self.occurrence is not None else STATUS_PLANNED


def entries(db: Session, first: date, last: date, tz: tzinfo) -> tuple[list[Entry], list[str]]:
    """Every due date in [first, last]: the occurrences made, and the rules' dates still to come."""
    cal = TaskCalendar(db)
    found: dict[tuple[int, date], Entry] = {}
    for occ in db.scalars(select(TaskOccurrence).where(TaskOccurrence.due >= first, TaskOccurrence.due <= last)):
        found[(occ.task_id, occ.due)] = Entry(occ.due, occ.task, occ.period, occ)
    for task in db.scalars(select(Task).where(Task.active.is_(True)).options(selectinload(Task.occurrences))):
        rule = rule_of(task)
        if rule is None:
            continue
        if rule.from_completion:
            due = next_due(db, cal, task, max(first, task.created_on), tz)
            dues = [due] if due and first <= due[0] <= last else []
        else:
            dues = rule.due_dates(cal, max(first, task.created_on), last)
        for day, period in dues:
            found.setdefault((task.id, day), Entry(day, task, period, None))
    return sorted(found.values(), key=lambda e: (e.due, e.task.id)), cal.warnings


def month_view(db: Session, month: date, today: date, tz: tzinfo) -> tuple[list[list[str]], list[str]]:
    first, after = month_span(month)
    found, warnings = entries(db, first, after - timedelta(days=1), tz)
    rows = []
    for e in found:
        occ = e.occurrence
        label = f"{e.task.title}（{e.period}）" if e.period else e.task.title
        done = ""
        if occ is not None and occ.done_at is not None:
            at = occ.done_at.astimezone(tz)
            done = f"{occ.done_by.name if occ.done_by else ''} {at.month}月{at.day}日".strip()
        who = "、".join(p.name for p in responsible(db, e.task))
        rows.append([due_label(e.due), occ.code if occ else "", label, who, e.status(today), done])
    return rows, warnings


# -- the ledger --------------------------------------------------------------------------------
@dataclass
class TaskLedger:
    rows: list[list[Any]]
    summary: list[list[Any]]


def occurrence_status(occurrence: TaskOccurrence, tz: tzinfo) -> str:
    """What the record says, whatever day it is read: done (on time or late), or not done (escalated or not)."""
    if occurrence.done_at is not None:
        return LEDGER_DONE if occurrence.done_at.astimezone(tz).date() <= occurrence.due else LEDGER_DONE_LATE
    return LEDGER_ESCALATED if occurrence.escalated_at is not None else LEDGER_OPEN


def task_ledger(db: Session, first: date, after: date, tz: tzinfo) -> TaskLedger:
    """The 行事历台账 of the occurrences (T<n>) due in [first, after): one row each, and a row per task."""
    occurrences = list(db.scalars(select(TaskOccurrence).where(TaskOccurrence.due >= first, TaskOccurrence.due < after)
                                  .order_by(TaskOccurrence.due, TaskOccurrence.number)))
    rows: list[list[Any]] = []
    per_task: dict[int, list[TaskOccurrence]] = {}
    for occ in occurrences:
        per_task.setdefault(occ.task_id, []).append(occ)
        checks = occ.checks
        results = "\n".join(f"{c.item}：{c.result}{(' ' + c.detail) if c.detail else ''}" for c in checks if c.result)
        photos = "\n".join(f"{c.item}：{c.photo.path or PHOTO_NOT_SAVED}" for c in checks if c.photo is not None)
        repairs = "、".join(f"{c.ticket.code}（{c.ticket.place}）" for c in checks if c.ticket)
        rows.append([occ.code, occ.task.title, occ.period, occ.due, "、".join(p.name for p in responsible(db, occ.task)),
                     occurrence_status(occ, tz), occ.done_by.name if occ.done_by else "", local_naive(occ.done_at, tz),
                     occ.note, results, photos, repairs, local_naive(occ.escalated_at, tz)])
    summary = []
    for mine in per_task.values():
        task = mine[0].task
        statuses = [occurrence_status(o, tz) for o in mine]
        on_time = statuses.count(LEDGER_DONE)
        summary.append([task.title, task.rule, task.assignee, len(mine), on_time + statuses.count(LEDGER_DONE_LATE),
                        on_time, statuses.count(LEDGER_ESCALATED), f"{round(100 * on_time / len(mine))}%"])
    return TaskLedger(rows, summary)
