"""Every ledger (台账) the office prints, once: what `houqin export <key>` writes and what the console's
台账 page offers for download are the same `LEDGERS[key].build(db, period, tz)` → `bot.export.Ledger`.

A capability adds its ledger by writing a builder `(db, period, tz) -> Ledger` (its rows from its own
handlers module, laid out by `bot.export.Ledger`) and listing it in `LEDGERS` with a key (the CLI's
`export <key>`), its name and a one-line summary. The school's name heads every sheet (setting `school_name`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta, tzinfo

from sqlalchemy.orm import Session

from bot.export import Ledger, LineChart, Period
from bot.school import Calendar, get_setting

Builder = Callable[[Session, Period, tzinfo], Ledger]
TERM_LABEL = "{start}-{end}学年第{which}学期"


def term_label(first: date) -> str:
    """A term starting in autumn is the school year's first (2026-2027学年第一学期), else its second."""
    autumn = first.month >= 8
    start = first.year if autumn else first.year - 1
    return TERM_LABEL.format(start=start, end=start + 1, which="一" if autumn else "二")


@dataclass(frozen=True)
class LedgerKind:
    key: str  # `houqin export <key>`, the console's download name
    name: str  # 报修台账
    summary: str  # what is in it, one line
    build: Builder


def _until(period: Period) -> date | None:
    """None for a calendar month (each ledger's own month query), else the day after the period."""
    return None if period.is_month else period.after


def new_ledger(db: Session, name: str, period: Period) -> Ledger:
    return Ledger(name, period, school=get_setting(db, "school_name"))


def repairs(db: Session, period: Period, tz: tzinfo) -> Ledger:
    from handlers.repair import (
        HAZARD_HEADER,
        HAZARD_WIDE,
        LEDGER_HEADER,
        LEDGER_WIDE,
        STAFF_HEADER,
        repair_ledger,
    )

    rows = repair_ledger(db, period.first, tz, _until(period))
    ledger = new_ledger(db, "报修台账", period)
    ledger.sheet("报修台账", LEDGER_HEADER, rows.tickets, wide=LEDGER_WIDE)
    ledger.sheet("巡查隐患台账", HAZARD_HEADER, rows.hazards, wide=HAZARD_WIDE)
    ledger.sheet("维修人员统计", STAFF_HEADER, rows.staff)
    return ledger


def bus(db: Session, period: Period, tz: tzinfo) -> Ledger:
    from handlers.bus import LEAVE_HEADER, TRIP_HEADER, bus_ledger

    trips, leaves = bus_ledger(db, period.first, tz, _until(period))
    ledger = new_ledger(db, "校车台账", period)
    ledger.sheet("校车台账", TRIP_HEADER, trips, wide=["警报", "确认"])
    ledger.sheet("请假记录", LEAVE_HEADER, leaves)
    return ledger


def duty(db: Session, period: Period, tz: tzinfo) -> Ledger:
    from handlers.duty import SHIFT_HEADER, TEACHER_HEADER, duty_ledger

    rows, teachers = duty_ledger(db, period.first, tz, _until(period))
    ledger = new_ledger(db, "值日台账", period)
    ledger.sheet("值日台账", SHIFT_HEADER, rows, wide=["备注"])
    ledger.sheet("教师汇总", TEACHER_HEADER, teachers)
    return ledger


def canteen(db: Session, period: Period, tz: tzinfo) -> Ledger:
    from handlers.canteen import (
        DAILY_HEADER,
        FEEDBACK_HEADER,
        GROUP_HEADER,
        MEALS_HEADER,
        SURVEY_HEADER,
        WORDS_HEADER,
        canteen_report,
    )

    report = canteen_report(db, period.first, tz, _until(period))
    ledger = new_ledger(db, "食堂台账", period)
    ledger.sheet("评价明细", FEEDBACK_HEADER, report.feedback, wide=["意见", "食堂回复", "照片"])
    ledger.sheet("每日平均", DAILY_HEADER, report.daily,
                 chart=LineChart("每日平均评分", value="平均分", category="日期", y_max=5))
    ledger.sheet("分组平均", GROUP_HEADER, report.groups)
    ledger.sheet("意见高频词", WORDS_HEADER, report.words)
    ledger.sheet("满意度调查", SURVEY_HEADER, report.surveys, wide=["意见"])
    ledger.sheet("陪餐记录", MEALS_HEADER, report.meals, wide=["意见"])
    return ledger


def tasks(db: Session, period: Period, tz: tzinfo) -> Ledger:
    from handlers.tasks.ledger import LEDGER_HEADER, LEDGER_WIDE, SUMMARY_HEADER, task_ledger

    rows = task_ledger(db, period.first, period.after, tz)
    ledger = new_ledger(db, "行事历台账", period)
    ledger.sheet("行事历台账", LEDGER_HEADER, rows.rows, wide=LEDGER_WIDE)
    ledger.sheet("任务汇总", SUMMARY_HEADER, rows.summary)
    return ledger


LEDGERS: dict[str, LedgerKind] = {kind.key: kind for kind in (
    LedgerKind("repairs", "报修台账", "报修单、巡查隐患（发现、整改、复查）、维修人员统计", repairs),
    LedgerKind("bus", "校车台账", "每趟应到、上车、下车、警报与确认；请假记录", bus),
    LedgerKind("duty", "值日台账", "每个岗位每个时段的签到；教师汇总", duty),
    LedgerKind("canteen", "食堂台账", "评价明细、每日平均（图表）、分组、高频词、满意度调查、陪餐", canteen),
    LedgerKind("tasks", "行事历台账", "每项任务每次截止：负责、完成人与时间、检查结果、照片、关联报修；任务汇总", tasks),
)}


def build(key: str, db: Session, period: Period, tz: tzinfo) -> Ledger:
    """The ledger `key` for `period` (KeyError for an unknown key)."""
    return LEDGERS[key].build(db, period, tz)


def file_name(ledger: Ledger) -> str:
    """报修台账-2026年11月.xlsx"""
    return f"{ledger.name}-{ledger.period.label if ledger.period else ''}.xlsx".replace("-.xlsx", ".xlsx")


def terms(db: Session) -> list[Period]:
    """The school calendar's terms (开学 … 学期结束), latest first, as ledger periods."""
    found = []
    for first, last in Calendar(db).terms:
        if last == date.max:
            continue
        found.append(Period(first, last + timedelta(days=1), term_label(first)))
    return sorted(found, key=lambda p: p.first, reverse=True)
