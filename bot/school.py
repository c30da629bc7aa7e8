"""The school's calendar and run-time settings: what day is a school day, who is the bus manager, ...

School days: Monday to Friday unless the calendar marks a holiday, plus make-up working days
(调休). When terms are imported (term_start/term_end), days outside every term are off too.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bot.db import memo
from bot.people import PersonNotFound, resolve_person
from bot.tables import TableError, read_table
from bot.text import clock_time, month_span, parse_clock, parse_date, split_list, tidy
from bot.wechat.templates import Template, parse_templates
from models import CalendarDay, Person, PersonRole, SchoolSetting
from models.school import DAY_KINDS, HOLIDAY, TERM_END, TERM_START, WORKDAY

Check = Callable[[Session, str], str]
log = logging.getLogger(__name__)

# -- settings: each declared once, with its default, its help and its check -------------------------
def _whole(low: int, high: int) -> Check:
    def check(db: Session, value: str) -> str:
        if not (value.isdigit() and low <= int(value) <= high):
            raise ValueError(f"须为 {low} 到 {high} 的整数")
        return str(int(value))
    return check


def _number(low: float, high: float, unit: str = "", optional: bool = False) -> Check:
    """A number in (low, high] — above `low`, so neither 0 nor a negative radius or deadline."""
    def check(db: Session, value: str) -> str:
        if optional and not value:
            return ""
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not low < number <= high:
            raise ValueError(f"须为大于 {low:g}、不超过 {high:g} 的数字{unit}")
        return value
    return check


def _coordinate(limit: int) -> Check:
    """A latitude (±90) or longitude (±180) in degrees; empty when the school has no geofence."""
    def check(db: Session, value: str) -> str:
        try:
            ok = not value or -limit <= float(value) <= limit
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"须为 -{limit} 到 {limit} 之间的度数（如 31.81），或留空")
        return value
    return check


def _clock(before: str = "", after: str = "") -> Check:
    """A time of day, stored as HH:MM (7:30 → 07:30); `before`/`after` name the setting it must precede/follow."""
    def check(db: Session, value: str) -> str:
        at = parse_clock(value)
        if at is None:
            raise ValueError("须为时间 HH:MM，例如 07:30")
        if before and at >= clock_time(get_setting(db, before)):
            raise ValueError(f"须早于 {before}（{get_setting(db, before)}）")
        if after and at <= clock_time(get_setting(db, after)):
            raise ValueError(f"须晚于 {after}（{get_setting(db, after)}）")
        return f"{at:%H:%M}"
    return check


def _months(db: Session, value: str) -> str:
    months = [m.strip() for m in re.split(r"[;；,，、]", value) if m.strip()]
    if not months or not all(m.isdigit() and 1 <= int(m) <= 12 for m in months):
        raise ValueError("须为 1-12 的月份，用分号分隔，例如 1;6")
    return value


def _words(db: Session, value: str) -> str:
    if not split_list(value):
        raise ValueError("至少要有一个词（分号分隔）")
    return value


def _slots(db: Session, value: str) -> str:
    if not parse_slots(value):
        raise ValueError("至少要有一个时段，例如 课间 09:40-10:00")
    return value


def _person(db: Session, value: str) -> str:
    """The name of one registered person (张丽, or 张丽 三(2)班 among namesakes); empty for nobody."""
    if value:
        try:
            resolve_person(db, value)
        except PersonNotFound as exc:
            raise ValueError(exc.message) from exc
    return tidy(value)


def _category(db: Session, value: str) -> str:
    """A category someone is responsible for (负责类别 in the people import)."""
    known = sorted({c for p in db.scalars(select(Person)) for c in p.category_list})
    if value not in known:
        raise ValueError(f"没有人负责这个类别（已有：{'、'.join(known) or '无，先在人员表中填写负责类别'}）")
    return value


def _name(db: Session, value: str) -> str:
    if len(value) > 40:
        raise ValueError("不能超过 40 个字")
    return value


@dataclass(frozen=True)
class Setting:
    default: str
    help: str
    check: Check  # the stored form of a value, or ValueError with the reason in Chinese


SETTINGS: dict[str, Setting] = {
    "fire_check_day": Setting("5", "每月消防设备自检提醒日（1-28）", _whole(1, 28)),
    "fire_check_category": Setting("消防", "负责消防自检的后勤类别", _category),
    "bus_manager": Setting("", "校车管理负责人姓名（重名时写 姓名 班级，或 姓名 手机号后四位）", _person),
    "duty_slots": Setting("课间 09:40-10:00;午间 12:00-12:40;放学 16:00-16:30", "值日时段（名称 HH:MM-HH:MM，分号分隔）",
                          _slots),
    "school_latitude": Setting("", "学校纬度（位置签到；各岗位没有自己的坐标时使用）", _coordinate(90)),
    "school_longitude": Setting("", "学校经度（位置签到）", _coordinate(180)),
    "school_radius": Setting("200", "学校签到范围（米）", _number(0, 10000, "（米）")),
    "bus_am_deadline": Setting("08:00", "上学趟人数报告截止时间（HH:MM，到校时）", _clock()),
    "bus_pm_deadline": Setting("17:15", "放学趟人数报告截止时间（HH:MM，末站时）", _clock()),
    "work_start": Setting("07:30", "上课日工作时间开始（HH:MM，报修时限按工作时间计）", _clock(before="work_end")),
    "work_end": Setting("17:00", "上课日工作时间结束（HH:MM）", _clock(after="work_start")),
    "repair_accept_hours": Setting("2", "报修多少个工作小时未接单报管理员", _number(0, 1000)),
    "repair_done_days": Setting("3", "报修多少天未完成报管理员", _number(0, 365)),
    "repair_urgent_done_hours": Setting("4", "紧急报修多少小时未完成报管理员", _number(0, 1000)),
    "repair_urgent_words": Setting("漏电;冒烟;漏水;玻璃碎;着火;起火;火灾;触电;烧焦;焦味;煤气;燃气;坍塌;掉落;砸伤;跑水;"
                                   "火花;打火;冒火;烧焦味;焦糊;糊味", "紧急报修关键词（分号分隔）", _words),
    "canteen_survey_day": Setting("20", "每月食堂满意度调查推送日（1-28，遇非上课日顺延）", _whole(1, 28)),
    "canteen_term_survey_months": Setting("1;6", "推送学期满意度问卷的月份（分号分隔，如 1;6）", _months),
    "canteen_alert_words": Setting("异物;头发;虫;变质;发霉;霉变;拉肚子;腹泻;呕吐;吐了;过敏;肚子疼;肚子痛;食物中毒;馊;"
                                   "异味;没熟;不熟;夹生;苍蝇;蟑螂;老鼠;玻璃;钢丝;铁丝;塑料;过期",
                                   "食堂反馈中的食品安全关键词（分号分隔），出现即通知食堂和管理员", _words),
    "office_survey_items": Setting("食堂;保洁;维修;校车;安保;宿舍;物品领用", "后勤满意度测评的项目（分号分隔，按提问顺序）",
                                   _words),
    "office_survey_parent_items": Setting("食堂;校车;安保;宿舍", "后勤满意度测评中请家长评价的项目（分号分隔）", _words),
    "push_page_days": Setting("30", "推送详情页（推送中的全文链接）保留天数（1-3650）", _whole(1, 3650)),
    "loan_days": Setting("7", "借用物品未写归还日期时的借期（天，1-365）", _whole(1, 365)),
    "key_loan_days": Setting("0", "领钥匙未写归还日期时的借期（天，0 为当天归还）", _whole(0, 365)),
    "loan_overdue_days": Setting("3", "借用逾期多少天报保管人和管理员（1-365）", _whole(1, 365)),
    "console_idle_hours": Setting("8", "控制台闲置多少小时后需要重新登录（1-720）", _whole(1, 720)),
    "school_name": Setting("", "学校名称（印在每份台账的标题行）", _name),
}
DEFAULT_SETTINGS = {key: setting.default for key, setting in SETTINGS.items()}
# a school's own HOUQIN_TEMPLATES (`houqin templates set`), JSON in its school_settings beside the settings
# above but not one of them: every process sees it through StoredTemplates (below), owned by its Services
TEMPLATES_SETTING = "templates"
TEMPLATES_TTL = 5.0  # seconds: a process looks at most this often whether they changed (one primary-key read)
SETTING_HELP = {key: setting.help for key, setting in SETTINGS.items()}
BAD_SETTING = "{key} 不能设为「{value}」：{reason}"
UNKNOWN_SETTING = "没有设置项「{key}」；可用：{known}"

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
            raise ValueError(f"时段「{part}」须写成 名称 HH:MM-HH:MM，例如 课间 09:40-10:00")
        slot = Slot(m[1], time(int(m[2]), int(m[3])), time(int(m[4]), int(m[5])))
        if slot.end <= slot.start:
            raise ValueError(f"时段「{part}」的结束时间早于开始时间")
        slots.append(slot)
    return slots


def duty_slots(db: Session) -> list[Slot]:
    return parse_slots(get_setting(db, "duty_slots"))


ABSENT_SETTINGS = "absent_settings"  # bot.db.memo: keys this transaction found unset (their default applies)


def get_setting(db: Session, key: str) -> str:
    """The school's setting, else its default. A stored row stays in the session's identity map; a key
    found unset is remembered for the transaction (`bot.db.memo`), so a handler asking for it again — a repair
    report asks for 报修紧急词 three times — does not query again. set_setting forgets it."""
    absent: set[str] = memo(db).setdefault(ABSENT_SETTINGS, set())
    if key in absent and not any(isinstance(o, SchoolSetting) and o.key == key for o in db.new):
        return DEFAULT_SETTINGS[key]
    row = db.get(SchoolSetting, key)
    if row is None:
        absent.add(key)
        return DEFAULT_SETTINGS[key]
    absent.discard(key)
    return row.value


def set_setting(db: Session, key: str, value: str) -> str:
    """Check `value` against the setting's declaration and the school (a bus manager must be one
    registered person), store it in its normal form (7:30 → 07:30) and return that; a refusal is a
    ValueError whose message (Chinese) says why, and nothing is stored."""
    setting = SETTINGS.get(key)
    if setting is None:
        raise KeyError(UNKNOWN_SETTING.format(key=key, known="、".join(SETTINGS)))
    try:
        value = setting.check(db, tidy(value))
    except ValueError as exc:
        raise ValueError(BAD_SETTING.format(key=key, value=value, reason=exc)) from exc
    row = db.get(SchoolSetting, key)
    if row is None:
        db.add(SchoolSetting(key=key, value=value))
    else:
        row.value = value
    memo(db).get(ABSENT_SETTINGS, set()).discard(key)
    return value


def setting_person(db: Session, key: str) -> Person | None:
    """The person a name setting (bus_manager) names; None when it is empty or no longer names one."""
    value = get_setting(db, key)
    try:
        return resolve_person(db, value) if value else None
    except PersonNotFound:
        return None


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


__all__ = ["DAY_KINDS", "SETTINGS", "Calendar", "admins", "get_setting", "import_calendar",
           "people_with_role", "set_setting", "setting_person"]


# -- a school's template ids as stored now ----------------------------------------------------------------
def school_templates(db: Session) -> str:
    """The school's own HOUQIN_TEMPLATES (JSON) set with `houqin templates set`, or ""."""
    row = db.get(SchoolSetting, TEMPLATES_SETTING)
    return row.value if row is not None else ""


class StoredTemplates(Mapping[str, Template]):
    """Push kind -> template: the school's own ids (`houqin templates set`) as stored now, else the
    environment's (HOUQIN_TEMPLATES; none for a school with an account of its own).

    Each process has one per school, made by its Services and carried as `settings.templates`, so the
    webhook's and the console's outbox, the scheduler's jobs and the push worker all see the same ids:
    a lookup re-reads the stored ids when it finds them older than `ttl` seconds (`clock`, monotonic),
    one reader at a time while the others use what was read; `now()` does that look on purpose (the
    worker and the scheduler call it before their transaction). Stored ids that do not parse (a hand
    edit: `templates set` checks before storing) are logged and the current ones kept."""

    def __init__(self, read: Callable[[], str], environment: Mapping[str, Template], *, school: str = "",
                 clock: Callable[[], float], ttl: float = TEMPLATES_TTL) -> None:
        self.read = read
        self.environment = environment
        self.school = school or "default"
        self.clock = clock
        self.ttl = ttl
        self._current: Mapping[str, Template] = environment
        self._raw: str | None = None  # the stored value last applied (None: never read)
        self._at = float("-inf")
        self._ready = False  # the first read done (or tried)
        self._lock = threading.Lock()

    def now(self, fresh: bool = False) -> Mapping[str, Template]:
        """The mapping, read again first if the last read is older than `ttl` (or `fresh`: whatever its age).
        Until the first read is done every lookup waits for it; after that, lookups while one thread reads
        use the ids read before."""
        if not (fresh or not self._ready or self.clock() - self._at >= self.ttl):
            return self._current
        if self._lock.acquire(blocking=fresh or not self._ready):
            try:
                if fresh or not self._ready or self.clock() - self._at >= self.ttl:
                    self._at = self.clock()
                    self._apply()
                    self._ready = True
            finally:
                self._lock.release()
        return self._current

    def _apply(self) -> None:
        try:
            raw = self.read()
        except SQLAlchemyError:  # not migrated yet, or the database away: what the process has
            return
        if raw == self._raw:
            return
        try:
            templates = parse_templates(raw) if raw else self.environment
        except ValueError as exc:
            log.warning("school %s: its stored template ids do not parse (%s); keeping the current ones",
                        self.school, exc)
        else:
            if self._raw is not None:
                log.info("school %s: template ids changed; pushes go with the new ones", self.school)
            self._current = templates
        self._raw = raw

    def __getitem__(self, kind: str) -> Template:
        return self.now()[kind]

    def __iter__(self) -> Iterator[str]:
        return iter(self.now())

    def __len__(self) -> int:
        return len(self.now())

    def __repr__(self) -> str:
        return f"StoredTemplates({dict(self._current)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled (settings handed to another process) as the environment's mapping: the process that
        loads them makes its own Services, which reads the stored ids itself."""
        return dict, (dict(self.environment),)


def templates_now(templates: Mapping[str, Template], fresh: bool = False) -> Mapping[str, Template]:
    """`templates` as stored now (StoredTemplates.now); a plain mapping (fixed ids) as it is."""
    return templates.now(fresh) if isinstance(templates, StoredTemplates) else templates


def environment_templates(templates: Mapping[str, Template]) -> Mapping[str, Template]:
    """The environment's mapping under a school's stored one (HOUQIN_TEMPLATES, before `templates set`)."""
    return templates.environment if isinstance(templates, StoredTemplates) else templates
