"""Safety programme: the drill log (演练 完成), fire self-checks (消防自检 完成), the safety-education
calendar (seeds/001 附件3), and their imports. The reminders themselves are jobs in scheduler/safety.py."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.engine import Context, Conversation, Incoming, Reply
from bot.tables import TableError, read_table
from bot.text import chinese_to_int, day_label, month_key, month_span
from handlers.tasks.schedule import complete, open_fire_occurrence
from models import Drill, FireCheck, SafetyTopic

MONTHS_CN = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10,
             "十一": 11, "十二": 12}

# seeds/001 附件3 安全教育行事历 (autumn term); the spring months follow the same pattern
DEFAULT_TOPICS: dict[int, tuple[str, str]] = {
    9: ("平安暑假收心、秋季安全第一课、防诈意识", ""),
    10: ("网络安全、认识火灾、家庭防火常识", "防火演练、消防设施设备检查（后勤）"),
    11: ("119消防安全、校车安全教育", "课间安全班队课、校车安全演练"),
    12: ("122交通安全、食品安全——食物的营养", "防震演练、知“食”就是力量活动"),
    1: ("平安寒假、预防流行性感冒、呼吸道小卫士", ""),
    2: ("开学安全第一课、寒假收心", "防踩踏疏散演练"),
    3: ("校园欺凌防范、课间安全", "防踩踏疏散演练"),
    4: ("交通安全、防溺水", "消防疏散演练"),
    5: ("防灾减灾（5·12）、心理健康", "防震演练"),
    6: ("防溺水、平安暑假", "消防疏散演练"),
    7: ("平安暑假、防溺水", ""),
    8: ("平安暑假、防溺水", ""),
}

HELP_DRILL = "演练 完成 疏散用时分钟 [问题] — 记录本月应急演练"
HELP_FIRE = "消防自检 完成 [备注] — 完成本月消防设备自检"
DRILL_USAGE = "请按格式发送：演练 完成 疏散用时分钟 [发现的问题]，例如：演练 完成 3.5 二楼东楼梯拥挤"
DRILL_BAD_MINUTES = "疏散用时「{value}」不对：请填写 0 到 60 之间的分钟数，例如 3.5。"
DRILL_LOGGED = "已记录{day}{kind}演练：疏散用时 {minutes} 分钟{problems}。"
DRILL_PLAN = "本月演练安排：{plan}。演练结束后发送：演练 完成 疏散用时分钟 [问题]"
DRILL_NONE = "本月尚未安排应急演练。"
FIRE_USAGE = "请按格式发送：消防自检 完成 [备注]，例如：消防自检 完成 三楼灭火器压力偏低已更换"
FIRE_DONE = "已记录{month}消防设备自检完成{note}。谢谢！"
FIRE_TASK_DONE = "（行事历任务 {code} 已一并完成）"
FIRE_ALREADY = "{month}消防设备自检已于{at}由{who}完成，无需重复提交。"

drill = Conversation("drill", title="演练记录", keywords=["演练"], roles={"admin"}, help=HELP_DRILL,
                     topic="安全")
fire_check = Conversation("fire_check", title="消防自检", keywords=["消防自检"], roles={"staff", "admin"},
                          help=HELP_FIRE, topic="安全")


def month_topic(db: Session, month: int) -> tuple[str, str]:
    row = db.get(SafetyTopic, month)
    return (row.topics, row.activities) if row is not None else DEFAULT_TOPICS.get(month, ("", ""))


def drills_in_month(db: Session, day: date) -> list[Drill]:
    first, after = month_span(day)
    return list(db.scalars(select(Drill).where(Drill.day >= first, Drill.day < after).order_by(Drill.day, Drill.at)))


# -- 演练 完成 --------------------------------------------------------------------------------
@drill.entry
def log_drill(msg: Incoming, ctx: Context) -> Reply:
    today = ctx.local_now.date()
    if not msg.args:
        planned = drills_in_month(ctx.db, today)
        if not planned:
            return Reply.end(DRILL_NONE + DRILL_USAGE)
        plan = "；".join(f"{day_label(d.day)} {d.at:%H:%M} {d.kind}{'（已记录）' if d.logged_at else ''}"
                        for d in planned)
        return Reply.end(DRILL_PLAN.format(plan=plan))
    if msg.args[0] != "完成" or len(msg.args) < 2:
        return Reply.end(DRILL_USAGE)
    minutes = parse_minutes(msg.args[1])
    if minutes is None or not 0 < minutes <= 60:
        return Reply.end(DRILL_BAD_MINUTES.format(value=msg.args[1]))
    problems = " ".join(msg.args[2:])
    candidates = [d for d in drills_in_month(ctx.db, today) if d.day <= today and d.logged_at is None]
    target = candidates[-1] if candidates else None
    if target is None:  # an unplanned drill: log it for today; a kind is named without 演练 (消防疏散, 防震)
        target = Drill(day=today, at=ctx.local_now.time().replace(second=0, microsecond=0), kind="应急")
        ctx.db.add(target)
    target.logged_at, target.logged_by = ctx.now, ctx.person
    target.evacuation_minutes, target.problems = minutes, problems
    return Reply.end(DRILL_LOGGED.format(day=day_label(target.day), kind=target.kind, minutes=f"{minutes:g}",
                                         problems=f"，问题：{problems}" if problems else "，未发现问题"))


def parse_minutes(text: str) -> float | None:
    """3.5, 4分钟, 用时4分钟, 疏散用时四分钟 → the minutes; None if it is no number of minutes."""
    text = text.removeprefix("疏散").removeprefix("用时").removesuffix("分钟").removesuffix("分")
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    value = chinese_to_int(text)
    return float(value) if value is not None else None


# -- 消防自检 完成 ------------------------------------------------------------------------------
@fire_check.entry
def close_fire_check(msg: Incoming, ctx: Context) -> Reply:
    if not msg.args or msg.args[0] != "完成":
        return Reply.end(FIRE_USAGE)
    local = ctx.local_now
    key = month_key(local.date())
    check = ctx.db.get(FireCheck, key)
    if check is None:
        check = FireCheck(month=key)
        ctx.db.add(check)
    elif check.done_at is not None:
        who = check.done_by.name if check.done_by else "他人"
        at = check.done_at.astimezone(ctx.settings.tz)
        return Reply.end(FIRE_ALREADY.format(month=f"{local.month}月", at=f"{at.month}月{at.day}日", who=who))
    note = " ".join(msg.args[1:])
    check.done_at, check.done_by, check.note = ctx.now, ctx.person, note
    occurrence = open_fire_occurrence(ctx.db, local.date())  # the 行事历's task of this month, when there is one
    if occurrence is not None:
        complete(ctx.db, occurrence, ctx.person, ctx.now, note, ctx.settings.tz)
    return Reply.end(FIRE_DONE.format(month=f"{local.month}月", note=f"（备注：{note}）" if note else "")
                     + (FIRE_TASK_DONE.format(code=occurrence.code) if occurrence is not None else ""))


# -- imports --------------------------------------------------------------------------------
DRILL_COLUMNS = {"date": ("日期",), "time": ("时间",), "kind": ("类型", "演练类型"), "scope": ("范围",)}
TOPIC_COLUMNS = {"month": ("月份",), "topics": ("教育专题", "专题", "主题"), "activities": ("安全活动", "活动")}


def import_drills(db: Session, path: str | Path, today: date | None = None) -> int:
    """Rows of 日期, 时间, 类型, 范围; a date without a year (12月14日) is the coming one from `today`."""
    rows = read_table(path, DRILL_COLUMNS, required=("date", "time", "kind"))
    problems, parsed = [], []
    for row in rows:
        day, at = row.date("date", today), row.time("time")
        if day is None or at is None:
            problems.append(f"第{row.number}行：日期或时间格式不对（例：2026-11-24, 10:00）")
            continue
        if not row.get("kind"):
            problems.append(f"第{row.number}行：演练类型为空")
        parsed.append((day, at, row.get("kind"), row.get("scope") or "全校"))
    if problems:
        raise TableError(problems)
    count = 0
    for day, at, kind, scope in parsed:
        existing = db.scalar(select(Drill).where(Drill.day == day, Drill.kind == kind))
        if existing is None:
            db.add(Drill(day=day, at=at, kind=kind, scope=scope))
            count += 1
        else:
            existing.at, existing.scope = at, scope
    db.flush()
    return count


def _month_number(text: str) -> int | None:
    text = text.removesuffix("月份").removesuffix("月")
    if text.isdigit():
        return int(text)
    return MONTHS_CN.get(text)


def import_topics(db: Session, path: str | Path) -> int:
    rows = read_table(path, TOPIC_COLUMNS, required=("month", "topics"))
    problems, parsed = [], []
    for row in rows:
        month = _month_number(row.get("month"))
        if month is None or not 1 <= month <= 12:
            problems.append(f"第{row.number}行：月份「{row.get('month')}」不对（例：11 或 十一月）")
            continue
        parsed.append((month, row.get("topics"), row.get("activities")))
    if problems:
        raise TableError(problems)
    for month, topics, activities in parsed:
        row_ = db.get(SafetyTopic, month)
        if row_ is None:
            db.add(SafetyTopic(month=month, topics=topics, activities=activities))
        else:
            row_.topics, row_.activities = topics, activities
    db.flush()
    return len(parsed)
