"""The 行事历's working core, shared by the chat, the jobs and the CLI: who a task's 负责 names, which
occurrences (T<n>) are due, completing one (the fire self-check's month record with it), and how a
task is quoted in pushes and lists."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.numbering import allocate_number
from bot.people import PersonNotFound, resolve_person
from bot.school import admins, get_setting, people_with_role
from bot.text import month_key
from handlers.tasks.rules import Rule, RuleError, TaskCalendar, parse_rule
from models import FireCheck, Person, Task, TaskOccurrence
from models.identity import ROLE_NAMES

LOOKBACK = timedelta(days=7)  # a due date missed while the scheduler was down is still reminded this long after
ROLE_WORDS = {**{name: role for role, name in ROLE_NAMES.items()}, **{role: role for role in ROLE_NAMES},
              "后勤人员": "staff", "班主任": "teacher", "老师": "teacher"}
UNKNOWN_ASSIGNEE = "负责「{who}」既不是角色（管理员、后勤、教师、食堂…）、负责类别（{categories}），也不是人员：{reason}"
TASK_CODE = re.compile(r"[Tt](\d{1,9})")
DUE_LABEL = "{month}月{day}日"


def due_label(day: date) -> str:
    return DUE_LABEL.format(month=day.month, day=day.day)


def known_categories(db: Session) -> list[str]:
    """Every 负责类别 someone has (one column read: not every person of the school with their roles)."""
    texts = db.scalars(select(Person.categories).where(Person.categories != "").distinct())
    return sorted({c for text in texts for c in text.replace("、", ";").split(";") if c})


def assignee_parts(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"[;；、，,]", text) if p.strip()]


def check_assignee(db: Session, text: str) -> str | None:
    """Why `text` names nobody (Chinese), or None when every part names a role, a category or a person."""
    categories = known_categories(db)
    for part in assignee_parts(text) or [text]:
        if part in ROLE_WORDS or part in categories:
            continue
        try:
            resolve_person(db, part)
        except PersonNotFound as exc:
            return UNKNOWN_ASSIGNEE.format(who=part, categories="、".join(categories) or "无", reason=exc.message)
    return None


def responsible(db: Session, task: Task) -> list[Person]:
    """Who does the task: the people of a role, the staff of a category, or the named person; admin when
    the 负责 names nobody any more."""
    people: list[Person] = []
    categories: list[str] | None = None
    for part in assignee_parts(task.assignee):
        if part in ROLE_WORDS:
            people += people_with_role(db, ROLE_WORDS[part])
        elif part in (categories := known_categories(db) if categories is None else categories):
            people += [p for p in people_with_role(db, "staff") if part in p.category_list]
        else:
            try:
                people.append(resolve_person(db, part))
            except PersonNotFound:
                continue
    unique = list({p.id: p for p in people}.values())
    return unique or admins(db)


def is_responsible(db: Session, task: Task, person: Person) -> bool:
    return any(p.id == person.id for p in responsible(db, task))


def rule_of(task: Task) -> Rule | None:
    try:
        return parse_rule(task.rule)
    except RuleError:
        return None


def last_done(task: Task, tz: object) -> date | None:
    days = [o.done_at.astimezone(tz).date() for o in task.occurrences if o.done_at is not None]  # type: ignore[arg-type]
    return max(days) if days else None


def next_due(db: Session, cal: TaskCalendar, task: Task, today: date, tz: object) -> tuple[date, str] | None:
    """The task's next due date from `today` on (an open occurrence counts: its due date), with its period."""
    open_ = [o for o in task.occurrences if o.done_at is None]
    if open_:
        return open_[0].due, open_[0].period
    rule = rule_of(task)
    if rule is None:
        return None
    start = max(today, task.created_on)
    if rule.from_completion:
        return rule.next_due(cal, start, last_done=last_done(task, tz), created=task.created_on)
    return rule.next_due(cal, start)


def due_occurrences(db: Session, cal: TaskCalendar, today: date, tz: object) -> list[TaskOccurrence]:
    """Make the occurrences whose reminder day has come (due within each task's 提醒提前天数), numbered
    T<n>; returns those not yet reminded."""
    for task in db.scalars(select(Task).where(Task.active.is_(True)).order_by(Task.id)):
        rule = rule_of(task)
        if rule is None:
            continue
        first = max(task.created_on, today - LOOKBACK)
        last = today + timedelta(days=task.remind_days)
        existing = {o.due for o in task.occurrences}
        if rule.from_completion:
            if any(o.done_at is None for o in task.occurrences):
                continue
            dues = rule.due_dates(cal, first, last, last_done=last_done(task, tz), created=task.created_on)
        else:
            dues = rule.due_dates(cal, first, last)
        for due, period in dues:
            if due not in existing:
                db.add(TaskOccurrence(number=allocate_number(db, TaskOccurrence.number), task=task, due=due,
                                      period=period))
                existing.add(due)
    db.flush()
    return list(db.scalars(select(TaskOccurrence).where(TaskOccurrence.reminded_at.is_(None),
                                                        TaskOccurrence.done_at.is_(None))
                           .order_by(TaskOccurrence.due, TaskOccurrence.number)))


def occurrence_by_code(db: Session, word: str) -> TaskOccurrence | None:
    match = TASK_CODE.fullmatch(word)
    return db.scalar(select(TaskOccurrence).where(TaskOccurrence.number == int(match[1]))) if match else None


def open_occurrences(db: Session) -> list[TaskOccurrence]:
    return list(db.scalars(select(TaskOccurrence).where(TaskOccurrence.done_at.is_(None))
                           .order_by(TaskOccurrence.due, TaskOccurrence.number)))


def complete(db: Session, occurrence: TaskOccurrence, person: Person | None, now: datetime, note: str,
             tz: object) -> None:
    """Close an occurrence; the fire self-check task also closes its month's 消防自检 record."""
    occurrence.done_at, occurrence.done_by, occurrence.note = now, person, note
    if occurrence.task.key == "fire_check":
        key = month_key(occurrence.due)
        check = db.get(FireCheck, key)
        if check is None:
            check = FireCheck(month=key)
            db.add(check)
        if check.done_at is None:
            check.done_at, check.done_by, check.note = now, person, note


FIRE_TITLE = "消防设备自检"
FIRE_CHECKLIST = "灭火器压力;消防栓;应急灯;疏散指示;烟感;消防通道"
FIRE_RULE = "每月{day}日(顺延)"


def ensure_fire_task(db: Session, today: date) -> Task | None:
    """The monthly fire self-check as one of the 行事历's tasks: made the first time the 行事历 is used when
    the school has none (on the 消防自检 settings' day and category, reminded that day, escalated 3 days
    late); returned when made. One stopped in the console, or imported under its title, is left as it is."""
    if db.scalar(select(Task.id).where((Task.key == "fire_check") | (Task.title == FIRE_TITLE)).limit(1)):
        return None
    task = Task(title=FIRE_TITLE, rule=FIRE_RULE.format(day=int(get_setting(db, "fire_check_day"))),
                assignee=str(get_setting(db, "fire_check_category")), remind_days=0, escalate_days=3,
                checklist=FIRE_CHECKLIST, key="fire_check", created_on=today)
    db.add(task)
    db.flush()
    return task


def fire_task(db: Session) -> Task | None:
    return db.scalar(select(Task).where(Task.key == "fire_check", Task.active.is_(True)))


def open_fire_occurrence(db: Session, today: date) -> TaskOccurrence | None:
    """This month's open occurrence of the fire self-check task (消防自检 完成 closes it)."""
    task = fire_task(db)
    if task is None:
        return None
    month = month_key(today)
    return next((o for o in task.occurrences if o.done_at is None and month_key(o.due) == month), None)
