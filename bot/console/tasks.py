"""行事历: the month's due, done and overdue tasks day by day (each T<n> with its checklist answers,
photos and linked repairs), the tasks with their rules and next due dates (as `houqin tasks list`),
adding, editing and stopping a task (checked as the import checks a row), marking a T<n> done with a
note, and the 行事历台账 of a month or a term (the 台账 page's download)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Response, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.audit import record
from bot.console import base
from bot.console.acting import field, refuse
from bot.console.base import MAX_ID, actor, bp, check_csrf, month_asked, requires
from bot.ledgers import terms
from bot.text import month_key, month_span
from handlers.tasks.ledger import STATUS_DONE, STATUS_LATE, entries, task_listing, task_values
from handlers.tasks.schedule import complete, responsible
from models import Task, TaskOccurrence
from models.tasks import FIRE_CHECK_KEY, TaskPhoto

FIELDS = (("title", "任务", 40), ("rule", "规则", 100), ("assignee", "负责", 100), ("remind", "提醒提前天数", 10),
          ("escalate", "逾期上报天数", 10), ("checklist", "检查项", 500))
NOTE_LIMIT = 200
TITLE_TAKEN = "任务「{title}」已存在：请换一个名称，或编辑那一项。"
TASK_ADDED = "已新增任务「{title}」：{rule}，负责 {assignee}。"
TASK_SAVED = "已保存任务「{title}」：{changes}。"
TASK_SAME = "任务「{title}」没有改动。"
TASK_STOPPED = "已停用任务「{title}」：不再提醒，已有的记录保留。"
TASK_RESUMED = "已恢复任务「{title}」。"
ALREADY_DONE = "{code} 已于 {at} 由 {who} 完成，无需重复提交。"
MARKED_DONE = "已记录 {code} {label} 完成{note}。"
CHANGE = "{label}：{before}→{after}"


def _today() -> Any:
    services = base.services()
    return services.now().astimezone(services.settings.tz).date()


@bp.get("/tasks")
@requires("admin", "bureau")
def tasks() -> str:
    services = base.services()
    tz = services.settings.tz
    today = _today()
    month = month_asked(request.args.get("month", ""), today)
    first, after = month_span(month)
    with base.read_db() as db:
        found, warnings = entries(db, first, after - timedelta(days=1), tz)
        days: dict[Any, list[dict[str, Any]]] = {}
        who: dict[int, str] = {}  # a task's 负责, worked out once for all its dates of the month
        for e in found:
            if e.task.id not in who:
                who[e.task.id] = "、".join(p.name for p in responsible(db, e.task))
            days.setdefault(e.due, []).append({
                "entry": e, "status": e.status(today), "label": f"{e.task.title}（{e.period}）" if e.period else e.task.title,
                "who": who[e.task.id]})
        listing = task_listing(db, today, tz)
        active = list(db.scalars(select(Task).where(Task.active.is_(True)).order_by(Task.id)))
        stopped = list(db.scalars(select(Task).where(Task.active.is_(False)).order_by(Task.id)))
        known_terms = terms(db)
        statuses = [item["status"] for items in days.values() for item in items]
        return render_template("admin/tasks.html", today=today, month=month, days=sorted(days.items()),
                               rows=list(zip(active, listing.rows, strict=True)), stopped=stopped,
                               warnings=sorted({*warnings, *listing.warnings}), terms=known_terms,
                               key=month_key(month), earlier=month_key(first - timedelta(days=1)),
                               later=month_key(after), done_word=STATUS_DONE, late_word=STATUS_LATE,
                               due_count=len(statuses), done_count=statuses.count(STATUS_DONE),
                               late_count=statuses.count(STATUS_LATE), weekdays="一二三四五六日")


def _form() -> dict[str, str]:
    return {name: field(name, label, limit) for name, label, limit in FIELDS}


def _checked(db: Session, form: dict[str, str], task: Task | None) -> dict[str, Any]:
    """The form's task, checked as an import row is; any problem refuses the form, changing nothing."""
    values, problems = task_values(db, form["title"], form["rule"], form["assignee"], form["remind"],
                                   form["escalate"], form["checklist"])
    other = db.scalar(select(Task).where(Task.title == values["title"]))
    if other is not None and other is not task:
        problems.append(TITLE_TAKEN.format(title=values["title"]))
    if problems:
        refuse("；".join(problems))
    if task is not None and task.key == FIRE_CHECK_KEY:  # renamed, it is still the fire self-check
        values["key"] = FIRE_CHECK_KEY
    return values


@bp.post("/tasks")
@requires("admin")
def add_task() -> Any:
    check_csrf()
    form = _form()
    with base.db() as db, db.begin():
        values = _checked(db, form, None)
        db.add(Task(**values, created_on=_today()))
        text = TASK_ADDED.format(title=values["title"], rule=values["rule"], assignee=values["assignee"])
        record(db, actor(), "task_add", values["title"], text, at=base.services().now())
    flash(text)
    return redirect(url_for("console.tasks"))


def _task(db: Session, task_id: int) -> Task:
    task = db.get(Task, task_id)
    if task is None:
        abort(404)
    return task


@bp.get(f"/tasks/<int(max={MAX_ID}):task_id>")
@requires("admin", "bureau")
def task_form(task_id: int) -> str:
    with base.read_db() as db:
        task = _task(db, task_id)
        return render_template("admin/task_form.html", task=task)


@bp.post(f"/tasks/<int(max={MAX_ID}):task_id>")
@requires("admin")
def save_task(task_id: int) -> Any:
    check_csrf()
    form = _form()
    labels = {"title": "任务", "rule": "规则", "assignee": "负责", "remind_days": "提醒提前天数",
              "escalate_days": "逾期上报天数", "checklist": "检查项"}
    with base.db() as db, db.begin():
        task = _task(db, task_id)
        values = _checked(db, form, task)
        title = task.title
        changes = [CHANGE.format(label=labels[k], before=getattr(task, k), after=v) for k, v in values.items()
                   if k in labels and getattr(task, k) != v]
        for key, value in values.items():
            setattr(task, key, value)
        if changes:
            task.updated_at = base.services().now()
            text = TASK_SAVED.format(title=values["title"], changes="；".join(changes))
            record(db, actor(), "task_edit", title, text, at=base.services().now())
        else:
            text = TASK_SAME.format(title=title)
    flash(text)
    return redirect(url_for("console.tasks"))


@bp.post(f"/tasks/<int(max={MAX_ID}):task_id>/active")
@requires("admin")
def task_active(task_id: int) -> Any:
    """停用 (no more reminders; its T<n> stay in the ledger) or 恢复."""
    check_csrf()
    with base.db() as db, db.begin():
        task = _task(db, task_id)
        task.active = request.form.get("active") == "1"
        text = (TASK_RESUMED if task.active else TASK_STOPPED).format(title=task.title)
        record(db, actor(), "task_resume" if task.active else "task_stop", task.title, text,
               at=base.services().now())
    flash(text)
    return redirect(url_for("console.tasks"))


def _occurrence(db: Session, code: str) -> TaskOccurrence:
    number = base.number(code.removeprefix("T"))
    occurrence = db.scalar(select(TaskOccurrence).where(TaskOccurrence.number == number)) if number else None
    if occurrence is None:
        abort(404)
    return occurrence


@bp.get("/tasks/occurrences/<code>")
@requires("admin", "bureau")
def occurrence(code: str) -> str:
    with base.read_db() as db:
        occ = _occurrence(db, code)
        who = "、".join(p.name for p in responsible(db, occ.task))
        return render_template("admin/task_occurrence.html", occ=occ, who=who, today=_today())


@bp.post("/tasks/occurrences/<code>/done")
@requires("admin")
def occurrence_done(code: str) -> Any:
    """Mark a T<n> done from the console with a note (the fire self-check's month record closes with it)."""
    check_csrf()
    note = field("note", "备注", NOTE_LIMIT)
    services = base.services()
    with base.db() as db, db.begin():
        occ = _occurrence(db, code)
        if occ.done_at is not None:
            at = occ.done_at.astimezone(services.settings.tz)
            refuse(ALREADY_DONE.format(code=occ.code, at=f"{at.month}月{at.day}日",
                                       who=occ.done_by.name if occ.done_by else "他人"))
        complete(db, occ, base.acting_person(db), services.now(), note, services.settings.tz)
        text = MARKED_DONE.format(code=occ.code, label=occ.label, note=f"（备注：{note}）" if note else "")
        record(db, actor(), "task_done", occ.code, text, at=services.now())
    flash(text)
    return redirect(url_for("console.occurrence", code=code))


@bp.get(f"/tasks/photos/<int(max={MAX_ID}):photo_id>")
@requires("admin", "bureau")
def task_photo(photo_id: int) -> Response:
    return base.send_photo(TaskPhoto, photo_id)
