"""The school's calendar and run-time settings: what day is a school day, who is the bus manager, ...

School days: Monday to Friday unless the calendar marks a holiday, plus make-up working days
(调休). When terms are imported (term_start/term_end), days outside every term are off too.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from bot.tables import TableError, read_table
from models import CalendarDay, Person, PersonRole, SchoolSetting
from models.school import DAY_KINDS, HOLIDAY, TERM_END, TERM_START, WORKDAY

DEFAULT_SETTINGS = {
    "fire_check_day": "5",  # day of the month the fire self-check reminder goes out
    "fire_check_category": "消防",  # staff responsible for this category get the reminder
    "bus_manager": "",  # 校车管理 (宦欢 in seeds/001): name of the person
}
SETTING_HELP = {
    "fire_check_day": "每月消防设备自检提醒日（1-28）",
    "fire_check_category": "负责消防自检的后勤类别",
    "bus_manager": "校车管理负责人姓名",
}

KIND_WORDS = {
    HOLIDAY: (HOLIDAY, "假期", "节假日", "放假", "休息"),
    WORKDAY: (WORKDAY, "调休", "补课", "上班", "补班", "工作日"),
    TERM_START: (TERM_START, "开学", "学期开始"),
    TERM_END: (TERM_END, "学期结束", "期末", "散学"),
}
CALENDAR_COLUMNS = {"date": ("日期",), "kind": ("类型", "类别"), "note": ("备注", "说明")}


# -- settings ---------------------------------------------------------------------------------
def get_setting(db: Session, key: str) -> str:
    row = db.get(SchoolSetting, key)
    return row.value if row is not None else DEFAULT_SETTINGS[key]


def set_setting(db: Session, key: str, value: str) -> None:
    if key not in DEFAULT_SETTINGS:
        raise KeyError(key)
    if key == "fire_check_day" and not (value.isdigit() and 1 <= int(value) <= 28):
        raise ValueError("fire_check_day must be a day of the month from 1 to 28")
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

    def month_school_days(self, day: date) -> list[date]:
        first = day.replace(day=1)
        last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        return self.school_days(first, last)


def is_school_day(db: Session, day: date) -> bool:
    return Calendar(db).is_school_day(day)


def _parse_day(text: str) -> date:
    return datetime.strptime(text.replace("/", "-").replace(".", "-")[:10], "%Y-%m-%d").date()


def import_calendar(db: Session, path: str | Path) -> int:
    """Rows of date, kind, note; a date may be a range "2026-10-01~2026-10-07". Returns days written."""
    rows = read_table(path, CALENDAR_COLUMNS, required=("date", "kind"))
    lookup = {w: kind for kind, words in KIND_WORDS.items() for w in words}
    problems: list[str] = []
    parsed: list[tuple[date, str, str]] = []
    for row in rows:
        kind = lookup.get(row.get("kind").lower())
        if kind is None:
            problems.append(f"第{row.number}行：不认识的类型「{row.get('kind')}」（可用：放假、调休、开学、学期结束）")
        raw = row.get("date").replace("至", "~").replace(" ", "")
        try:
            first_s, _, last_s = raw.partition("~")
            first = _parse_day(first_s)
            last = _parse_day(last_s) if last_s else first
            if last < first or (last - first).days > 366:
                raise ValueError
        except ValueError:
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


__all__ = ["DAY_KINDS", "Calendar", "admins", "get_setting", "import_calendar", "is_school_day",
           "people_with_role", "set_setting"]
