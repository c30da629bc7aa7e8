"""The 行事历's rules, written in Chinese the way the office says them, and the calendar they count on.

A rule is one of (full-width or half-width brackets and separators alike):

    每月15日            the 15th of every month, as it falls
    每月15日(顺延)       moved to the next working day when the 15th is a weekend or holiday;
    每月15日(提前)       … to the working day before it
    每月第一个上课日      the month's first school day (none in a vacation month)
    每月最后一个上课日    the month's last school day
    每月第2个周三        the month's second Wednesday (第1…第5个, or 最后一个周五)
    每周五              every Friday that is a school day (a holiday Friday and vacations are skipped)
    每个上课日           every school day (日巡视)
    8;12月 …            any monthly form in the given months only: 8;12月 15日(顺延), 9-1月 第一个上课日,
                        8月25日(顺延) (once a year); also 9-1月 每周五
    每3个月(从上次完成)   three months after the last completion (滤芯); never done: due on the day it is imported
    2026-12-20          once, on that date (also 2026年12月20日; (顺延) / (提前) as above)

A working day (工作日) is what the school calendar says (放假 / 调休), and where it says nothing,
China's official holidays and make-up workdays (chinesecalendar), else Monday–Friday; a school day
(上课日) is a working day inside a term. A day of a year chinesecalendar does not cover that the school calendar
has no mark for is counted Monday–Friday and named in a warning (`TaskCalendar.warnings`), never silently.
"""

from __future__ import annotations

import re
from calendar import monthrange
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from importlib.metadata import PackageNotFoundError, version

import chinese_calendar
from sqlalchemy.orm import Session

from bot.school import Calendar
from bot.text import WEEKDAYS, chinese_to_int, normalize
from models.school import HOLIDAY, WORKDAY

RULE_HELP = ("规则写法：每月15日 / 每月15日(顺延) / 每月15日(提前) / 每月第一个上课日 / 每月最后一个上课日 / "
             "每月第2个周三 / 每周五 / 每个上课日 / 8;12月 15日(顺延) / 9-1月 第一个上课日 / "
             "每3个月(从上次完成) / 2026-12-20")
BAD_RULE = "规则「{rule}」看不懂。" + RULE_HELP
BAD_DAY = "规则「{rule}」的日期不对：每月的日子须为 1 到 31"
BAD_MONTH = "规则「{rule}」的月份不对：须为 1 到 12，如 8;12月 或 9-1月"
BAD_NTH = "规则「{rule}」的第几个不对：须为第1到第5个，或最后一个"
BAD_DATE = "规则「{rule}」的日期不存在"
UNCOVERED_YEAR = ("{year}年的法定节假日和调休尚未收录（chinesecalendar {version}）：该年学校校历没有标注的日子按周一至周五计算。"
                  "请用 houqin calendar import 导入该年的全部放假和调休，或升级 chinesecalendar。")
NEXT, BEFORE = "顺延", "提前"
SHIFT = re.compile(r"\((顺延|提前)\)$")
ONCE = re.compile(r"(\d{4})[-/年.](\d{1,2})[-/月.](\d{1,2})[日号]?")
EVERY_MONTHS = re.compile(r"每(\d+|[一二两三四五六七八九十]+)个?月(?:\(从上次完成\))?")
MONTHS = re.compile(r"((?:\d{1,2}[;,、])*\d{1,2}|\d{1,2}-\d{1,2})月(.*)")
DAY = re.compile(r"(\d{1,2}|[一二三四五六七八九十]+)[日号]")
NTH = re.compile(r"第(\d|[一二三四五])个(?:周|星期|礼拜)([一二三四五六日天])|最后一个(?:周|星期|礼拜)([一二三四五六日天])")
WEEKLY = re.compile(r"每(?:周|星期|礼拜)([一二三四五六日天])")
FIRST_SCHOOL_DAY = {"第一个上课日", "第1个上课日"}
LAST_SCHOOL_DAY = {"最后一个上课日"}
DAILY = {"每个上课日", "每天", "每日"}
SEARCH_DAYS = 400  # how far ahead the next due date is looked for


class RuleError(ValueError):
    """A rule that cannot be read; the message (Chinese) says why and how to write it."""


@cache
def chinese_calendar_version() -> str:
    try:
        return version("chinesecalendar")
    except PackageNotFoundError:  # pragma: no cover - installed with the project
        return "?"


class TaskCalendar(Calendar):
    """The school calendar, with China's official holidays and make-up workdays for days it does not mark."""

    def __init__(self, db: Session) -> None:
        super().__init__(db)
        self.uncovered: set[int] = set()
        self._workdays: dict[date, bool] = {}  # asked again and again by every rule: chinesecalendar is slow

    def is_workday(self, day: date) -> bool:
        known = self._workdays.get(day)
        if known is None:
            known = self._workdays[day] = self._is_workday(day)
        return known

    def _is_workday(self, day: date) -> bool:
        kinds = self.marks.get(day, set())
        if HOLIDAY in kinds:
            return False
        if WORKDAY in kinds:
            return True
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            self.uncovered.add(day.year)
            return day.weekday() < 5

    def is_school_day(self, day: date) -> bool:
        return self.in_term(day) and self.is_workday(day)

    @property
    def warnings(self) -> list[str]:
        return [UNCOVERED_YEAR.format(year=y, version=chinese_calendar_version()) for y in sorted(self.uncovered)]

    def shift(self, day: date, how: str) -> date:
        step = timedelta(days=1 if how == NEXT else -1)
        for _ in range(60):
            if self.is_workday(day):
                return day
            day += step
        return day


def _weekday(ch: str) -> int:
    return 6 if ch == "天" else WEEKDAYS.index(ch)


def _number(word: str) -> int | None:
    return int(word) if word.isdigit() else chinese_to_int(word)


def add_months(day: date, n: int) -> date:
    month0 = day.month - 1 + n
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, monthrange(year, month)[1]))


@dataclass(frozen=True)
class Rule:
    """A parsed rule. `kind`: day, first, last, nth, weekly, daily, every, once."""

    text: str
    kind: str
    months: frozenset[int] = frozenset(range(1, 13))
    day: int = 0  # day of month (day), n-th (nth: 1-5, -1 = last), months (every)
    weekday: int = 0  # nth, weekly
    shift: str = ""  # 顺延 / 提前
    on: date | None = None  # once

    @property
    def monthly(self) -> bool:
        return self.kind in ("day", "first", "last", "nth")

    @property
    def from_completion(self) -> bool:
        return self.kind == "every"

    def due_dates(self, cal: TaskCalendar, first: date, last: date, *, last_done: date | None = None,
                  created: date | None = None) -> list[tuple[date, str]]:
        """The due dates within [first, last], each with its period label (8月 for a monthly rule)."""
        found: list[tuple[date, str]] = []
        if self.kind == "once":
            assert self.on is not None
            due = cal.shift(self.on, self.shift) if self.shift else self.on
            return [(due, "")] if first <= due <= last else []
        if self.kind == "every":
            base = last_done or created
            if base is None:
                return []
            due = add_months(base, self.day) if last_done else base
            return [(due, "")] if first <= due <= last else []
        if self.kind in ("weekly", "daily"):
            day = first
            while day <= last:
                if day.month in self.months and (
                        cal.is_school_day(day) if self.kind == "daily"
                        else day.weekday() == self.weekday and cal.is_school_day(day)):
                    found.append((day, ""))
                day += timedelta(days=1)
            return found
        month = date(first.year, first.month, 1)
        month = add_months(month, -1)  # a 顺延 from the month before (a 提前 from the month after) may land inside
        while month <= min(last, date.max - timedelta(days=62)) + timedelta(days=31):
            if month.month in self.months:
                when = self._in_month(cal, month)
                if when is not None and first <= when <= last:
                    found.append((when, f"{month.month}月"))
            month = add_months(month, 1)
        return found

    def _in_month(self, cal: TaskCalendar, month: date) -> date | None:
        days_in = monthrange(month.year, month.month)[1]
        if self.kind == "day":
            nominal = month.replace(day=min(self.day, days_in))
            return cal.shift(nominal, self.shift) if self.shift else nominal
        if self.kind in ("first", "last"):
            school = cal.month_school_days(month)
            return (school[0] if self.kind == "first" else school[-1]) if school else None
        days = [month.replace(day=d) for d in range(1, days_in + 1)
                if month.replace(day=d).weekday() == self.weekday]
        pick = days[-1] if self.day == -1 else (days[self.day - 1] if self.day <= len(days) else None)
        return cal.shift(pick, self.shift) if pick and self.shift else pick

    def next_due(self, cal: TaskCalendar, today: date, *, last_done: date | None = None,
                 created: date | None = None) -> tuple[date, str] | None:
        if self.kind == "every":
            found = self.due_dates(cal, date.min, date.max, last_done=last_done, created=created)
            return found[0] if found else None
        start = today
        while start <= today + timedelta(days=SEARCH_DAYS):  # a month at a time: no year looked at needlessly
            found = self.due_dates(cal, start, start + timedelta(days=30))
            if found:
                return found[0]
            start += timedelta(days=31)
        return None


def _months(text: str, rule: str) -> frozenset[int]:
    if "-" in text:
        a, b = (int(x) for x in text.split("-"))
        if not (1 <= a <= 12 and 1 <= b <= 12):
            raise RuleError(BAD_MONTH.format(rule=rule))
        months = list(range(a, b + 1)) if a <= b else [*range(a, 13), *range(1, b + 1)]
        return frozenset(months)
    values = [int(x) for x in re.split(r"[;,、]", text)]
    if not all(1 <= m <= 12 for m in values):
        raise RuleError(BAD_MONTH.format(rule=rule))
    return frozenset(values)


def parse_rule(written: str) -> Rule:
    """The rule `written` says, or RuleError with the reason and the forms in Chinese."""
    rule = written.strip()
    text = normalize(rule).replace(" ", "").replace("；", ";").replace("，", ",").replace("～", "-")
    text = text.replace("~", "-").replace("至", "-")
    if not text:
        raise RuleError(BAD_RULE.format(rule=rule))
    shift_match = SHIFT.search(text)
    shift = shift_match.group(1) if shift_match else ""
    body = text[:shift_match.start()] if shift_match else text
    if m := ONCE.fullmatch(body):
        try:
            on = date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            raise RuleError(BAD_DATE.format(rule=rule)) from None
        return Rule(rule, "once", shift=shift, on=on)
    if (m := EVERY_MONTHS.fullmatch(text)) and not shift:
        n = _number(m[1])
        if not n or n > 24:
            raise RuleError(BAD_RULE.format(rule=rule))
        return Rule(rule, "every", day=n)
    months: frozenset[int] = frozenset(range(1, 13))
    if (m := MONTHS.fullmatch(body)) and m[2]:
        months, body = _months(m[1], rule), m[2]
    elif body.startswith("每月"):
        body = body.removeprefix("每月")
    elif not (WEEKLY.fullmatch(body) or body in DAILY):
        raise RuleError(BAD_RULE.format(rule=rule))
    body = body.removeprefix("每月")
    if m := DAY.fullmatch(body):
        day = _number(m[1])
        if day is None or not 1 <= day <= 31:
            raise RuleError(BAD_DAY.format(rule=rule))
        return Rule(rule, "day", months, day=day, shift=shift)
    if shift and not NTH.fullmatch(body):
        raise RuleError(BAD_RULE.format(rule=rule))
    if body in FIRST_SCHOOL_DAY:
        return Rule(rule, "first", months)
    if body in LAST_SCHOOL_DAY:
        return Rule(rule, "last", months)
    if m := NTH.fullmatch(body):
        if m[3]:
            return Rule(rule, "nth", months, day=-1, weekday=_weekday(m[3]), shift=shift)
        n = _number(m[1])
        if n is None or not 1 <= n <= 5:
            raise RuleError(BAD_NTH.format(rule=rule))
        return Rule(rule, "nth", months, day=n, weekday=_weekday(m[2]), shift=shift)
    if m := WEEKLY.fullmatch(body):
        return Rule(rule, "weekly", months, weekday=_weekday(m[1]))
    if body in DAILY:
        return Rule(rule, "daily", months)
    raise RuleError(BAD_RULE.format(rule=rule))
