"""The 行事历 in the chat: 任务 (my open tasks), 完成 T<n> [备注] (closes one; a checklist is walked one
item per message: 正常, 异常 and what, a reading, a photo), and 报修 right after an 异常 item files a
repair ticket linked to the task (handlers/repair/chat.py's own filing)."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from bot.engine import Context, Conversation, Incoming, Reply
from bot.text import normalize
from handlers import repair
from handlers.tasks.rules import TaskCalendar
from handlers.tasks.schedule import (
    TASK_CODE,
    complete,
    due_label,
    is_responsible,
    next_due,
    occurrence_by_code,
    open_occurrences,
    responsible,
)
from models import Task, TaskCheck, TaskOccurrence, TaskPhoto
from models.repair import REPORT
from models.tasks import ABNORMAL, NORMAL, READING

TASK_ROLES = {"teacher", "staff", "admin", "canteen"}
HELP_LIST = "任务 — 我负责的待完成任务（行事历）"
HELP_FINISH = "完成 T编号 [备注] — 完成一项任务（有检查项的逐项填写）"
NONE_OPEN = "你目前没有待完成的任务。"
LIST_HEADER = "你的待完成任务："
LIST_LINE = "{code} {label} 截止{due}{late}"
LATE = "（已逾期{days}天）"
LIST_FOOTER = "完成后发送「完成 T编号 [备注]」。"
UPCOMING = "接下来：{items}"
SCHOOL_OVERDUE = "全校逾期未完成：{n} 项（{items}）。"
UNKNOWN = "没有找到任务 {code}。发送「任务」查看你的待完成任务。"
ALREADY_DONE = "{code} {label} 已于{when}由{who}完成。"
NOT_YOURS = "{code} {label} 由{who}负责，你不能完成它。"
DONE = "已完成 {code} {label}{note}。{summary}"
DONE_NOTE = "（备注：{note}）"
SUMMARY = "检查 {n} 项：正常 {normal} 项{abnormal}{readings}。"
SUMMARY_ABNORMAL = "，异常 {n} 项（{items}）"
SUMMARY_READINGS = "，读数 {n} 项"
ASK_ITEM = "{code} {label} 第{i}/{n}项：{item}\n请回复「正常」，或「异常 情况」（如：异常 三楼东灭火器压力偏低），或读数（如 1.2MPa）；可先发照片。"
OFFER_REPAIR = "已记录异常：{item} {detail}。如需报修，回复「报修」即提交报修单（关联 {code}）；或直接回复下一项。"
OFFER_REPAIR_LAST = "已记录异常：{item} {detail}。如需报修，回复「报修」即提交报修单（关联 {code}）。"
ASK_WHAT = "请写明异常情况，例如：异常 三楼东灭火器压力偏低"
ITEM_USAGE = "「{item}」请回复「正常」、「异常 情况」或读数（如 1.2），也可发照片。发送「取消」暂停，之后发「完成 {code}」接着填。"
PHOTO_KEPT = "照片已记在「{item}」上。请回复该项结果：正常 / 异常 情况 / 读数。"
PAUSED = "已暂停 {code} 的检查（已填 {done}/{n} 项），之后发送「完成 {code}」接着填。"
REPAIR_FILED = "{text}\n（已关联 {code}「{item}」）"
NORMAL_WORDS = {"正常", "好", "好的", "完好", "无异常", "没问题", "ok", "√", "合格", "良好"}
ABNORMAL_WORDS = ("异常", "不正常", "有问题", "坏了", "不合格")
REPAIR_WORDS = {"报修", "要报修", "报修一下"}
WALK_TIMEOUT = timedelta(hours=2)  # a checklist is walked around the school
REPAIR_OFFER = timedelta(minutes=10)  # after the last item, 报修 files its 异常 this long


class Step:
    ITEM = "item"
    AFTER = "after"  # the walk is done; 报修 still files the last 异常


def is_task_code(args: str) -> bool:
    return bool(args) and TASK_CODE.fullmatch(args.split(" ", 1)[0]) is not None


task_list = Conversation("tasks", title="任务", keywords=["任务", "我的任务"], roles=TASK_ROLES, help=HELP_LIST,
                         topic="任务")
task_finish = Conversation("task_finish", title="完成任务", keywords=["完成"], roles=TASK_ROLES, help=HELP_FINISH,
                           topic="任务", accepts=is_task_code, sample="完成 T1", timeout=WALK_TIMEOUT)


# -- 任务 --------------------------------------------------------------------------------------
@task_list.entry
def list_mine(msg: Incoming, ctx: Context) -> Reply:
    me = ctx.person
    assert me is not None
    today = ctx.local_now.date()
    tz = ctx.settings.tz
    everything = open_occurrences(ctx.db)
    mine = [o for o in everything if is_responsible(ctx.db, o.task, me)]
    lines = [LIST_HEADER, *(_line(o, today) for o in mine), LIST_FOOTER] if mine else [NONE_OPEN]
    cal = TaskCalendar(ctx.db)
    upcoming = []
    for task in ctx.db.scalars(select(Task).where(Task.active.is_(True)).order_by(Task.id)):
        if any(o.task_id == task.id for o in mine) or not is_responsible(ctx.db, task, me):
            continue
        due = next_due(ctx.db, cal, task, today, tz)
        if due is not None:
            upcoming.append((due[0], f"{task.title} {due_label(due[0])}"))
    if upcoming:
        lines.append(UPCOMING.format(items="；".join(text for _, text in sorted(upcoming)[:3])))
    if "admin" in ctx.roles:
        late = [o for o in everything if o.due < today]
        if late:
            lines.append(SCHOOL_OVERDUE.format(n=len(late), items="、".join(f"{o.code} {o.label}" for o in late[:5])))
    return Reply.end("\n".join(lines))


def _line(occurrence: TaskOccurrence, today: object) -> str:
    days = (today - occurrence.due).days  # type: ignore[operator]
    return LIST_LINE.format(code=occurrence.code, label=occurrence.label, due=due_label(occurrence.due),
                            late=LATE.format(days=days) if days > 0 else "")


# -- 完成 T<n> -----------------------------------------------------------------------------------
@task_finish.entry
def finish(msg: Incoming, ctx: Context) -> Reply:
    me = ctx.person
    assert me is not None
    code = msg.args[0].upper()
    occurrence = occurrence_by_code(ctx.db, code)
    if occurrence is None:
        return Reply.end(UNKNOWN.format(code=code))
    label = occurrence.label
    if occurrence.done_at is not None:
        when = occurrence.done_at.astimezone(ctx.settings.tz)
        who = occurrence.done_by.name if occurrence.done_by else "他人"
        return Reply.end(ALREADY_DONE.format(code=code, label=label, when=f"{when.month}月{when.day}日", who=who))
    if "admin" not in ctx.roles and not is_responsible(ctx.db, occurrence.task, me):
        who = "、".join(p.name for p in responsible(ctx.db, occurrence.task))
        return Reply.end(NOT_YOURS.format(code=code, label=label, who=who))
    note = " ".join(msg.kept_args[1:])[:500]
    if not occurrence.task.items:
        return Reply.end(_close(ctx, occurrence, note))
    ctx.data = {"occurrence": occurrence.number, "note": note}
    return _ask_next(ctx, occurrence, prefix="")


def _answered(occurrence: TaskOccurrence) -> dict[int, TaskCheck]:
    return {c.position: c for c in occurrence.checks}


def _ask_next(ctx: Context, occurrence: TaskOccurrence, prefix: str) -> Reply:
    items = occurrence.task.items
    answered = _answered(occurrence)
    pending = [i for i in range(len(items)) if i not in answered or not answered[i].result]
    if not pending:
        text = _close(ctx, occurrence, str(ctx.data.get("note", "")))
        last = ctx.data.get("abnormal")
        if last is not None and answered[last].ticket_id is None:
            return Reply(f"{prefix}\n{text}".strip(), next=Step.AFTER)
        return Reply.end(f"{prefix}\n{text}".strip())
    i = pending[0]
    ask = ASK_ITEM.format(code=occurrence.code, label=occurrence.label, i=i + 1, n=len(items), item=items[i])
    return Reply(f"{prefix}\n{ask}".strip(), next=Step.ITEM, data={"position": i})


def _close(ctx: Context, occurrence: TaskOccurrence, note: str) -> str:
    complete(ctx.db, occurrence, ctx.person, ctx.now, note, ctx.settings.tz)
    checks = [c for c in occurrence.checks if c.result]
    summary = ""
    if checks:
        abnormal = [c for c in checks if c.result == ABNORMAL]
        readings = [c for c in checks if c.result == READING]
        summary = SUMMARY.format(
            n=len(checks), normal=sum(c.result == NORMAL for c in checks),
            abnormal=SUMMARY_ABNORMAL.format(n=len(abnormal), items="；".join(
                f"{c.item}：{c.detail}" + (f"，{c.ticket.code}" if c.ticket else "") for c in abnormal))
            if abnormal else "",
            readings=SUMMARY_READINGS.format(n=len(readings)) if readings else "")
    return DONE.format(code=occurrence.code, label=occurrence.label,
                       note=DONE_NOTE.format(note=note) if note else "", summary=summary)


def _walking(ctx: Context) -> TaskOccurrence | None:
    occurrence = occurrence_by_code(ctx.db, f"T{ctx.data.get('occurrence')}")
    return occurrence


def _check(ctx: Context, occurrence: TaskOccurrence, position: int) -> TaskCheck:
    check = _answered(occurrence).get(position)
    if check is None:
        check = TaskCheck(position=position, item=occurrence.task.items[position][:100], created_at=ctx.now,
                          person=ctx.person)
        occurrence.checks.append(check)
    return check


@task_finish.on(Step.ITEM)
def answer_item(msg: Incoming, ctx: Context) -> Reply | None:
    occurrence = _walking(ctx)
    if occurrence is None or occurrence.done_at is not None:
        return None
    position = int(ctx.data.get("position", 0))
    items = occurrence.task.items
    if position >= len(items):
        return _ask_next(ctx, occurrence, "")
    item = items[position]
    if msg.msg_type == "image" and msg.media_id:
        check = _check(ctx, occurrence, position)
        if check.photo is not None:  # one per item: a second replaces it
            check.photo.replace_media(msg.media_id, ctx.now)
        else:
            check.photo = TaskPhoto(media_id=msg.media_id[:200], occurrence_id=occurrence.id, next_attempt_at=ctx.now,
                                    created_at=ctx.now)
        return Reply(PHOTO_KEPT.format(item=item), next=Step.ITEM, data={"position": position})
    text = normalize(msg.text).strip().lower()
    last = ctx.data.get("abnormal")
    if text in REPAIR_WORDS and last is not None:
        filed = _file_repair(ctx, occurrence, int(last))
        ctx.data["abnormal"] = None
        return Reply(filed + "\n" + ASK_ITEM.format(code=occurrence.code, label=occurrence.label, i=position + 1,
                                                    n=len(items), item=item),
                     next=Step.ITEM, data={"position": position, "abnormal": None})
    kept = msg.kept_text.strip()
    if text in NORMAL_WORDS:
        result, detail = NORMAL, ""
    elif word := next((w for w in ABNORMAL_WORDS if text.startswith(w)), None):
        detail = kept[len(word):].strip(" :：,，")
        if not detail:
            return Reply(ASK_WHAT, next=Step.ITEM, data={"position": position})
        result = ABNORMAL
    elif text and re.search(r"\d", text):
        result, detail = READING, kept
    else:
        return Reply(ITEM_USAGE.format(item=item, code=occurrence.code), next=Step.ITEM, data={"position": position})
    check = _check(ctx, occurrence, position)
    check.result, check.detail, check.person, check.created_at = result, detail[:500], ctx.person, ctx.now
    ctx.data["abnormal"] = position if result == ABNORMAL else None
    prefix = ""
    if result == ABNORMAL:
        remaining = any(i not in _answered(occurrence) or not _answered(occurrence)[i].result
                        for i in range(len(items)))
        template = OFFER_REPAIR if remaining else OFFER_REPAIR_LAST
        prefix = template.format(item=item, detail=detail, code=occurrence.code)
    return _ask_next(ctx, occurrence, prefix)


@task_finish.on(Step.AFTER)
def repair_after(msg: Incoming, ctx: Context) -> Reply | None:
    occurrence = _walking(ctx)
    last = ctx.data.get("abnormal")
    if (occurrence is None or last is None or normalize(msg.text).strip() not in REPAIR_WORDS
            or occurrence.done_at is None or ctx.now - occurrence.done_at > REPAIR_OFFER):
        return None  # anything else (or a 报修 long after) is a new message
    return Reply.end(_file_repair(ctx, occurrence, int(last)))


def _file_repair(ctx: Context, occurrence: TaskOccurrence, position: int) -> str:
    """File the 异常 item as a repair ticket through the repair capability, and link it."""
    check = _answered(occurrence)[position]
    words = check.detail.split(" ", 1)
    if len(words) == 2:  # 异常 三楼东 消防栓箱门损坏: a place, then what (as 报修 <地点> <描述>)
        place, what = repair.resolve_place(ctx.db, words[0]), words[1]
    else:
        place, what = repair.Place(occurrence.task.title), check.detail
    reply = repair.file_ticket(ctx, place, f"{check.item}异常：{what}（{occurrence.code}）", ask_photo=True)
    number = (reply.data or {}).get("ticket")
    ticket = repair.ticket_by_code(ctx.db, f"R{number}") if number else None
    if ticket is not None:
        check.ticket = ticket
        if check.photo is not None:  # the repair keeps its own copy, in its own folder
            repair.attach_photo(ctx, ticket, check.photo.media_id, REPORT)
    text = reply.text.rsplit("\n", 1)[0] if "\n" in reply.text else reply.text
    return REPAIR_FILED.format(text=text, code=occurrence.code, item=check.item)


@task_finish.on_cancel(Step.ITEM)
def paused(msg: Incoming, ctx: Context) -> Reply:
    occurrence = _walking(ctx)
    if occurrence is None:
        return Reply.end("")
    done = sum(1 for c in occurrence.checks if c.result)
    return Reply.end(PAUSED.format(code=occurrence.code, done=done, n=len(occurrence.task.items)))
