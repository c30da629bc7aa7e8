"""The school's calendar and run-time settings: what day is a school day, who is the bus manager, ...

School days: Monday to Friday unless the calendar marks a holiday, plus make-up working days
(调休). When terms are imported (term_start/term_end), days outside every term are off too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from bot.tables import TableError, read_table
from bot.text import month_span, parse_date
from models import CalendarDay, Person, PersonRole, SchoolSetting
from models.school import DAY_KINDS, HOLIDAY, TERM_END, TERM_START, WORKDAY

DEFAULT_SETTINGS = {
    "fire_check_day": "5",  # day of the month the fire self-check reminder goes out
    "fire_check_category": "消防",  # staff responsible for this category get the reminder
    "bus_manager": "",  # 校车管理 (宦欢 in seeds/001): name of the person
    "duty_slots": "课间 09:40-10:00;午间 12:00-12:40;放学 16:00-16:30",  # name HH:MM-HH:MM, ";"-separated
    "school_latitude": "",  # the school's geofence, for posts without their own
    "school_longitude": "",
    "school_radius": "200",  # metres
    "bus_am_deadline": "08:00",  # the morning trip's counts are due by its arrival at school
    "bus_pm_deadline": "17:15",  # the afternoon trip's counts are due by its last stop
    "work_start": "07:30",  # working hours on school days, for the repair deadlines
    "work_end": "17:00",
    "repair_accept_hours": "2",  # working hours a new repair may wait for 接单 before admin is told
    "repair_done_days": "3",  # days a repair may take before admin is told
    "repair_urgent_done_hours": "4",  # hours an urgent repair may take
    "repair_urgent_words": "漏电;冒烟;漏水;玻璃碎;着火;起火;火灾;触电;烧焦;焦味;煤气;燃气;坍塌;掉落;砸伤;跑水;"
                           "火花;打火;冒火;烧焦味;焦糊;糊味",
    "canteen_survey_day": "20",  # day of the month the canteen survey goes to parents and teachers (每月一次小调查)
    "canteen_term_survey_months": "1;6",  # months whose survey is the term questionnaire (学期大调查)
    "canteen_alert_words": "异物;头发;虫;变质;发霉;霉变;拉肚子;腹泻;呕吐;吐了;过敏;肚子疼;肚子痛;食物中毒;馊;"
                           "异味;没熟;不熟;夹生;苍蝇;蟑螂;老鼠;玻璃;钢丝;铁丝;塑料;过期",
    "push_page_days": "30",  # days a push's detail page (/p/<token>) stays open after the push
}
SETTING_HELP = {
    "fire_check_day": "每月消防设备自检提醒日（1-28）",
    "fire_check_category": "负责消防自检的后勤类别",
    "bus_manager": "校车管理负责人姓名",
    "duty_slots": "值日时段（名称 HH:MM-HH:MM，分号分隔）",
    "school_latitude": "学校纬度（位置签到）",
    "school_longitude": "学校经度（位置签到）",
    "school_radius": "学校签到范围（米）",
    "bus_am_deadline": "上学趟人数报告截止时间（HH:MM）",
    "bus_pm_deadline": "放学趟人数报告截止时间（HH:MM）",
    "work_start": "上课日工作时间开始（HH:MM）",
    "work_end": "上课日工作时间结束（HH:MM）",
    "repair_accept_hours": "报修多少个工作小时未接单报管理员",
    "repair_done_days": "报修多少天未完成报管理员",
    "repair_urgent_done_hours": "紧急报修多少小时未完成报管理员",
    "repair_urgent_words": "紧急报修关键词（分号分隔）",
    "canteen_survey_day": "每月食堂满意度调查推送日（1-28，遇非上课日顺延）",
    "canteen_term_survey_months": "推送学期满意度问卷的月份（分号分隔，如 1;6）",
    "canteen_alert_words": "食堂反馈中的食品安全关键词（分号分隔），出现即通知食堂和管理员",
    "push_page_days": "推送详情页（推送中的全文链接）保留天数（1-3650）",
}
TIME_SETTINGS = ("work_start", "work_end", "bus_am_deadline", "bus_pm_deadline")
NUMBER_SETTINGS = ("repair_accept_hours", "repair_done_days", "repair_urgent_done_hours")
DAY_OF_MONTH_SETTINGS = ("fire_check_day", "canteen_survey_day")

KIND_WORDS = {
    HOLIDAY: (HOLIDAY, "假期", "节假日", "放假", "休息"),
    WORKDAY: (WORKDAY, "调休", "补课", "上班", "补班", "工作日"),
    TERM_START: (TERM_START, "开学", "学期开始"),
    TERM_END: (TERM_END, "学期结束", "期末", "散学"),
}
CALENDAR_COLUMNS = {"date": ("日期",), "kind": ("类型", "类别"), "note": ("备注", "说明")}


# -- settings ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Slot:
    """A duty slot such as 课间 09:40-10:00."""

    name: str
    start: time
    end: time

    @property
    def label(self) -> str:
        return f"{self.name}（{self.start:%H:%M}–{self.end:%H:%M}）"


def parse_slots(text: str) -> list[Slot]:
    slots = []
    for part in filter(None, (p.strip() for p in re.split(r"[;；]", text))):
        m = re.fullmatch(r"(\S+)\s+([01]?\d|2[0-3]):([0-5]\d)\s*[-–~]\s*([01]?\d|2[0-3]):([0-5]\d)", part)
        if m is None:
            raise ValueError(f"duty slot {part!r} must look like 课间 09:40-10:00")
        slot = Slot(m[1], time(int(m[2]), int(m[3])), time(int(m[4]), int(m[5])))
        if slot.end <= slot.start:
            raise ValueError(f"duty slot {part!r} ends before it starts")
        slots.append(slot)
    return slots


def duty_slots(db: Session) -> list[Slot]:
    return parse_slots(get_setting(db, "duty_slots"))


def get_setting(db: Session, key: str) -> str:
    row = db.get(SchoolSetting, key)
    return row.value if row is not None else DEFAULT_SETTINGS[key]


def set_setting(db: Session, key: str, value: str) -> None:
    if key not in DEFAULT_SETTINGS:
        raise KeyError(key)
    if key in DAY_OF_MONTH_SETTINGS and not (value.isdigit() and 1 <= int(value) <= 28):
        raise ValueError(f"{key} must be a day of the month from 1 to 28")
    if key == "canteen_term_survey_months" and not all(
            m.strip().isdigit() and 1 <= int(m) <= 12 for m in re.split(r"[;；,，、]", value) if m.strip()):
        raise ValueError(f"{key} must be months 1-12 separated by ;, e.g. 1;6")
    if key in TIME_SETTINGS and not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
        raise ValueError(f"{key} must be a time of day HH:MM, e.g. 07:30")
    if key in NUMBER_SETTINGS and not re.fullmatch(r"\d+(\.\d+)?", value):
        raise ValueError(f"{key} must be a positive number")
    if key == "push_page_days" and not (value.isdigit() and 1 <= int(value) <= 3650):
        raise ValueError(f"{key} must be a whole number of days from 1 to 3650")
    if key == "duty_slots":
        parse_slots(value)
    if key in ("school_latitude", "school_longitude", "school_radius") and value:
        try:
            float(value)
        except ValueError as exc:
            raise ValueError(f"{key} must be a number") from exc
    row = db.get(SchoolSetting, key)
    if row is None:
        db.add(SchoolSetting(key=key, value=value))
    else:
        row.value = value


# -- people by role -----------------------------------------------------------------------------
def people_with_role(db: Session, *roles: str) -> list[Person]:
    return list(db.scalars(select(Person).join(PersonRole).where(PersonRole.role.in_(roles))
                           .order_by(Person.id)).unique())


def admins(db: Session) -> list[Person]:
    return people_with_role(db, "admin")


# -- calendar -------------------------------------------------------------------------------
class Calendar:
    """School-day questions for one session; loads the marked days once."""

    def __init__(self, db: Session) -> None:
        self.marks: dict[date, set[str]] = {}
        for row in db.scalars(select(CalendarDay)):
            self.marks.setdefault(row.day, set()).add(row.kind)
        starts = sorted(d for d, k in self.marks.items() if TERM_START in k)
        ends = sorted(d for d, k in self.marks.items() if TERM_END in k)
        self.terms = [(s, next((e for e in ends if e >= s), date.max)) for s in starts]

    def in_term(self, day: date) -> bool:
        return not self.terms or any(s <= day <= e for s, e in self.terms)

    def is_school_day(self, day: date) -> bool:
        kinds = self.marks.get(day, set())
        if HOLIDAY in kinds or not self.in_term(day):
            return False
        return WORKDAY in kinds or day.weekday() < 5

    def school_days(self, first: date, last: date) -> list[date]:
        days, day = [], first
        while day <= last:
            if self.is_school_day(day):
                days.append(day)
            day += timedelta(days=1)
        return days

    def working_hours(self, start: datetime, end: datetime, tz: tzinfo, opens: time, closes: time) -> float:
        """Hours between two moments that fall inside working hours (`opens`-`closes`) on school days."""
        if end <= start:
            return 0.0
        total, day, last = 0.0, start.astimezone(tz).date(), end.astimezone(tz).date()
        while day <= last:  # bounded by the span; callers ask about days, not years
            if self.is_school_day(day):
                lo = max(start, datetime.combine(day, opens, tzinfo=tz))
                hi = min(end, datetime.combine(day, closes, tzinfo=tz))
                total += max(0.0, (hi - lo).total_seconds()) / 3600
            day += timedelta(days=1)
        return total

    def month_school_days(self, day: date) -> list[date]:
        first, after = month_span(day)
        return self.school_days(first, after - timedelta(days=1))


def import_calendar(db: Session, path: str | Path, today: date | None = None) -> int:
    """Rows of date, kind, note; a date may be a range "2026-10-01~2026-10-07". Returns days written.
    A date without a year (10月1日) is the coming one from `today`."""
    rows = read_table(path, CALENDAR_COLUMNS, required=("date", "kind"))
    lookup = {w: kind for kind, words in KIND_WORDS.items() for w in words}
    problems: list[str] = []
    parsed: list[tuple[date, str, str]] = []
    for row in rows:
        kind = lookup.get(row.get("kind").lower())
        if kind is None:
            problems.append(f"第{row.number}行：不认识的类型「{row.get('kind')}」（可用：放假、调休、开学、学期结束）")
        ends = re.split(r"\s*[~～至]\s*", row.get("date"))
        first = row.date("date", today) if len(ends) == 1 else parse_date(ends[0], today)
        last = first if len(ends) == 1 else parse_date(ends[-1], today)
        if first is None or last is None or len(ends) > 2 or last < first or (last - first).days > 366:
            problems.append(f"第{row.number}行：日期「{row.get('date')}」格式不对（例：2026-10-01 或 2026-10-01~2026-10-07）")
            continue
        if kind is not None:
            parsed.extend((first + timedelta(days=i), kind, row.get("note"))
                          for i in range((last - first).days + 1))
    if problems:
        raise TableError(problems)
    for day, kind, note in parsed:
        db.execute(delete(CalendarDay).where(CalendarDay.day == day, CalendarDay.kind == kind))
        db.add(CalendarDay(day=day, kind=kind, note=note))
    db.flush()
    return len(parsed)


__all__ = ["DAY_KINDS", "Calendar", "admins", "get_setting", "import_calendar",
           "people_with_role", "set_setting"]
