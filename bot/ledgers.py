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

from bot.export import Ledger, LineChart, Period, Sheet
from bot.school import Calendar, get_setting

Builder = Callable[[Session, Period, tzinfo], Ledger]
DatedBuilder = Callable[[Session, Period, tzinfo, date], Ledger]  # also given the day it is written (逾期天数)
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
    build: Builder | None = None
    build_as_of: DatedBuilder | None = None  # a ledger that counts days up to today (or the period's end)


def _until(period: Period) -> date | None:
    """None for a calendar month (each ledger's own month query), else the day after the period."""
    return None if period.is_month else period.after


def new_ledger(db: Session, name: str, period: Period) -> Ledger:
    return Ledger(name, period, school=get_setting(db, "school_name"))


def repairs(db: Session, period: Period, tz: tzinfo) -> Ledger:
    from handlers.repair.ledger import (
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


def _sheets(ledger: Ledger, sheets: list[Sheet], wide: dict[str, list[str]]) -> Ledger:
    for sheet in sheets:
        ledger.sheet(sheet.title, sheet.header, sheet.rows, wide=wide.get(sheet.title, ()))
    return ledger


def assets(db: Session, period: Period, tz: tzinfo) -> Ledger:
    from handlers.assets.ledger import register_sheets

    return _sheets(new_ledger(db, "资产台账", period), register_sheets(db, period, tz),
                   {"资产变动": ["说明"], "报废记录": ["原因"], "资产台账": ["照片"]})


def loans(db: Session, period: Period, tz: tzinfo, today: date) -> Ledger:
    from handlers.assets.ledger import loan_sheets

    return _sheets(new_ledger(db, "借用登记", period), loan_sheets(db, period, tz, today), {})


def keys(db: Session, period: Period, tz: tzinfo, today: date) -> Ledger:
    from handlers.assets.ledger import key_sheets

    return _sheets(new_ledger(db, "钥匙登记", period), key_sheets(db, period, tz, today), {"钥匙清单": ["持有人"]})


def stocktake(db: Session, period: Period, tz: tzinfo) -> Ledger:
    from handlers.assets.ledger import stocktake_sheets

    return _sheets(new_ledger(db, "盘点报告", period), stocktake_sheets(db, period, tz), {"差异明细": ["照片"]})


def supplies(db: Session, period: Period, tz: tzinfo) -> Ledger:
    from handlers.assets.ledger import supply_sheets

    return _sheets(new_ledger(db, "物品领用台账", period), supply_sheets(db, period, tz), {"物品领用台账": ["用途"]})


def notices(db: Session, period: Period, tz: tzinfo) -> Ledger:
    from handlers.notices import LEDGER_HEADER, notice_ledger, notices_between

    rows = notice_ledger(notices_between(db, period.first, period.after, tz), tz)
    ledger = new_ledger(db, "通知回执台账", period)
    ledger.sheet("通知回执台账", LEDGER_HEADER, rows, wide=["标题"])
    return ledger


def suggestions(db: Session, period: Period, tz: tzinfo) -> Ledger:
    from handlers.suggestions import LEDGER_HEADER, suggestion_ledger, suggestions_between

    rows = suggestion_ledger(suggestions_between(db, period.first, period.after), tz)
    ledger = new_ledger(db, "意见箱台账", period)
    ledger.sheet("意见箱台账", LEDGER_HEADER, rows, wide=["内容", "答复"])
    return ledger


LEDGERS: dict[str, LedgerKind] = {kind.key: kind for kind in (
    LedgerKind("repairs", "报修台账", "报修单、巡查隐患（发现、整改、复查）、维修人员统计", repairs),
    LedgerKind("bus", "校车台账", "每趟应到、上车、下车、警报与确认；请假记录", bus),
    LedgerKind("duty", "值日台账", "每个岗位每个时段的签到；教师汇总", duty),
    LedgerKind("canteen", "食堂台账", "评价明细、每日平均（图表）、分组、高频词、满意度调查、陪餐", canteen),
    LedgerKind("tasks", "行事历台账", "每项任务每次截止：负责、完成人与时间、检查结果、照片、关联报修；任务汇总", tasks),
    LedgerKind("assets", "资产台账", "每件资产（一物一档）及状态、本期变动、报废记录", assets),
    LedgerKind("loans", "借用登记", "本期借用及仍未归还的借用、逾期天数", build_as_of=loans),
    LedgerKind("keys", "钥匙登记", "钥匙领还记录；每把钥匙现在谁拿着", build_as_of=keys),
    LedgerKind("stocktake", "盘点报告", "本期盘点：应盘、盘到、缺失、位置变动、未登记；差异明细与盘点记录", stocktake),
    LedgerKind("supplies", "物品领用台账", "每笔入库与领用；按物品、按部门汇总", supplies),
    LedgerKind("notices", "通知回执台账", "本期每条通知的每位接收人：送达、确认时间与方式、提醒时间", notices),
    LedgerKind("suggestions", "意见箱台账", "本期每条意见（匿名的不记姓名）：主题、转给谁、状态与答复", suggestions),
)}


def build(key: str, db: Session, period: Period, tz: tzinfo, today: date | None = None) -> Ledger:
    """The ledger `key` for `period` (KeyError for an unknown key); a ledger counting days (逾期天数)
    counts them up to `today`, or to the period's last day when that is earlier (or today is not given)."""
    kind = LEDGERS[key]
    if kind.build_as_of is not None:
        last = period.after - timedelta(days=1)
        return kind.build_as_of(db, period, tz, min(today, last) if today else last)
    assert kind.build is not None
    return kind.build(db, period, tz)


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
