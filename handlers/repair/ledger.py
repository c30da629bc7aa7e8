"""The repair ledgers: the rooms and category imports (the assets' is handlers/assets/register.py's), and
the monthly 报修台账 with the 巡查隐患台账 and the per-staff summary."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import date, tzinfo
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, joinedload, selectinload

from bot.db import memo
from bot.places import place_key
from bot.tables import TableError, read_table
from bot.text import (
    day_bounds,
    local_naive,
    month_bounds,
)
from handlers.repair.rules import (
    CATEGORY_MAP,
    done_limit,
    follow_up_lines,
    split_words,
    withdrawal_line,
)
from models import Person, RepairCategory, RepairTicket, Room
from models.repair import (
    STATUS_NAMES,
    WITHDRAWN,
)

# -- imports ------------------------------------------------------------------------------------
ROOM_COLUMNS = {"building": ("楼栋", "楼宇", "建筑"), "floor": ("楼层",), "name": ("房间", "名称", "房间名", "教室"),
                "aliases": ("别名", "又名"), "responsible": ("负责人",)}
CATEGORY_COLUMNS = {"name": ("类别", "名称"), "keywords": ("关键词", "关键字")}


def import_rooms(db: Session, path: str | Path) -> int:
    """Rooms by building + name; a name or alias that would name two rooms is refused."""
    rows = read_table(path, ROOM_COLUMNS, required=("name",))
    problems: list[str] = []
    parsed: list[tuple[str, str, str, str, Person | None]] = []
    claimed: dict[str, int] = {}
    people = {p.name: p for p in db.scalars(select(Person).order_by(Person.id.desc()))}
    for row in rows:
        name, building = row.get("name"), row.get("building")
        aliases = ";".join(split_words(row.get("aliases")))
        if not name:
            problems.append(f"第{row.number}行：房间名称为空")
            continue
        who = row.get("responsible")
        person = people.get(who) if who else None
        if who and person is None:
            problems.append(f"第{row.number}行：负责人「{who}」不在人员名单中（先导入人员）")
        for key in {place_key(n) for n in [name, *split_words(aliases)]}:
            if key in claimed:
                problems.append(f"第{row.number}行：「{name}」的名称或别名与第{claimed[key]}行重复")
                break
            claimed[key] = row.number
        parsed.append((building, row.get("floor"), name, aliases, person))
    if problems:
        raise TableError(problems)
    for building, floor, name, aliases, person in parsed:
        room = db.scalar(select(Room).where(Room.building == building, Room.name == name))
        if room is None:
            room = Room(building=building, name=name)
            db.add(room)
        room.floor, room.aliases, room.responsible = floor, aliases, person
    db.flush()
    return len(parsed)


def import_categories(db: Session, path: str | Path) -> int:
    """Replace the keyword map: one row per category, in matching order."""
    rows = read_table(path, CATEGORY_COLUMNS, required=("name", "keywords"))
    problems: list[str] = []
    seen: set[str] = set()
    for row in rows:
        if not row.get("name"):
            problems.append(f"第{row.number}行：类别为空")
        elif row.get("name") in seen:
            problems.append(f"第{row.number}行：类别「{row.get('name')}」重复")
        seen.add(row.get("name"))
    if not rows:
        problems.append("文件中没有类别")
    if problems:
        raise TableError(problems)
    db.execute(delete(RepairCategory))
    memo(db).pop(CATEGORY_MAP, None)  # the map read before the import is gone
    for position, row in enumerate(rows):
        db.add(RepairCategory(name=row.get("name"), keywords=";".join(split_words(row.get("keywords"))),
                              position=position))
    db.flush()
    return len(rows)


# -- the monthly ledger ----------------------------------------------------------------------------
LEDGER_HEADER = ["编号", "报修时间", "报修人", "地点", "设备", "类别", "问题描述", "维修人", "接单时间", "完成时间",
                 "维修用时(小时)", "评分", "备注", "类型", "状态", "返修次数", "补充报告", "撤销"]
LEDGER_WIDE = ["问题描述", "备注", "补充报告", "撤销"]
# the 巡查隐患台账 in the words of a hazard register (seeds/001: 发现、整改、复查)
HAZARD_HEADER = ["编号", "发现时间", "发现人", "地点", "隐患描述", "整改责任人", "整改措施", "整改期限", "整改完成时间",
                 "复查", "状态"]
HAZARD_WIDE = ["隐患描述", "整改措施", "复查"]
STAFF_HEADER = ["维修人", "报修单数", "已完成", "维修用时中位数(小时)", "平均评分"]
REVIEWED = "已复查，评分 {rating}"
REVIEW_WAITING = "待复查"
REVIEW_REOPENED = "复查未通过，返修 {n} 次"


@dataclass
class Ledger:
    tickets: list[list[Any]]
    hazards: list[list[Any]]
    staff: list[list[Any]]


def hours_to_fix(ticket: RepairTicket) -> float | None:
    if ticket.done_at is None:
        return None
    return round((ticket.done_at - ticket.filed_at).total_seconds() / 3600, 1)


def hazard_review(ticket: RepairTicket) -> str:
    """The 复查 column: the finder's rating closes the check; 未修好 is a failed one; done and unrated waits."""
    lines = [REVIEW_REOPENED.format(n=ticket.reopen_count)] if ticket.reopen_count else []
    if ticket.rating is not None:
        lines.append(REVIEWED.format(rating=ticket.rating))
    elif ticket.done_at is not None and ticket.status != WITHDRAWN:
        lines.append(REVIEW_WAITING)
    return "；".join(lines)


def hazard_row(db: Session, t: RepairTicket, tz: tzinfo) -> list[Any]:
    deadline = local_naive(t.filed_at + done_limit(db, t)[0], tz)
    return [t.code, local_naive(t.filed_at, tz), t.reporter.name if t.reporter else "", t.place, t.description,
            t.assignee.name if t.assignee else "", t.note, deadline, local_naive(t.done_at, tz), hazard_review(t),
            STATUS_NAMES.get(t.status, t.status)]


def repair_ledger(db: Session, month: date, tz: tzinfo, after: date | None = None) -> Ledger:
    """The 报修台账 of tickets filed in `month` (or from `month` to `after`, a term), the 巡查隐患 among
    them in a hazard register's columns, and the per-staff summary."""
    start, end = month_bounds(month, tz)
    if after is not None:
        start, end = day_bounds(month, tz)[0], day_bounds(after, tz)[0]
    tickets = list(db.scalars(select(RepairTicket).where(RepairTicket.filed_at >= start, RepairTicket.filed_at < end)
                              .options(joinedload(RepairTicket.reporter), joinedload(RepairTicket.assignee),
                                       joinedload(RepairTicket.asset), selectinload(RepairTicket.events),
                                       selectinload(RepairTicket.photos))
                              .order_by(RepairTicket.number)))
    rows = [[t.code, local_naive(t.filed_at, tz), t.reporter.name if t.reporter else "", t.place,
             f"{t.asset.name}（{t.asset.code}）" if t.asset else "", t.category, t.description,
             t.assignee.name if t.assignee else "", local_naive(t.accepted_at, tz), local_naive(t.done_at, tz),
             hours_to_fix(t), t.rating, t.note, "巡查隐患" if t.hazard else "报修", STATUS_NAMES.get(t.status, t.status),
             t.reopen_count, "\n".join(follow_up_lines(t, tz)), withdrawal_line(t.withdrawal, tz) if t.withdrawal else ""]
            for t in tickets]
    by_staff: dict[str, list[RepairTicket]] = {}
    for t in tickets:
        if t.assignee is not None:
            by_staff.setdefault(t.assignee.name, []).append(t)
    staff = []
    for name, mine in sorted(by_staff.items()):
        hours = [h for t in mine if (h := hours_to_fix(t)) is not None]
        ratings = [t.rating for t in mine if t.rating is not None]
        staff.append([name, len(mine), len(hours), round(statistics.median(hours), 1) if hours else None,
                      round(sum(ratings) / len(ratings), 2) if ratings else None])
    return Ledger(rows, [hazard_row(db, t, tz) for t in tickets if t.hazard], staff)
