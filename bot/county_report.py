"""The bureau's county overview: one row per school, computed in each school's own namespace.

A month view (drills and fire self-checks are monthly: primary schools drill every month) and a term
view (the school's term from its calendar, up to today). The same rows feed the console page, `houqin
county report` (and its XLSX) and the 17:30 county digest, which picks out what needs attention today.
Each figure is read through the school's read-only sessions, so the bureau sees and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.export import Sheet, write_workbook
from bot.school import Calendar
from handlers.repair.rules import is_overdue
from models import BusAlarm, CanteenFeedback, Delivery, Drill, FireCheck, Push, RepairTicket
from models.outbox import FAILED, PENDING, SENDING, UNDELIVERABLE
from models.repair import ACTIVE

if TYPE_CHECKING:
    from bot.county import County
    from bot.services import Services

MONTH, TERM = "month", "term"
VIEW_NAMES = {MONTH: "本月", TERM: "本学期"}
HEADER = ["学校", "代号", "演练（已记录/应有）", "消防自检（已完成/应有）", "未完成报修", "逾期报修",
          "校车警报", "未确认警报", "警报确认平均用时（分钟）", "食品安全反馈", "食堂平均评分", "未送达推送"]
TITLE = "区县学校概览（{view}：{first}至{last}）"
SHEET_TITLE = "区县概览"
NONE = "—"
# the digest: what needs attention today
DIGEST_TITLE = "【教育局日报】{day}，{count}所学校"
DIGEST_LINE = "{name}：{items}"
DIGEST_QUIET = "各校今日无需关注的事项。"
ITEM_OVERDUE = "逾期报修{n}件"
ITEM_UNACKED = "校车警报{n}起未确认"
ITEM_FOOD = "今日食品安全反馈{n}条"
ITEM_NO_DRILL = "本月尚未记录演练"
ITEM_FIRE = "本月消防自检未完成"
ITEM_UNDELIVERED = "今日推送未送达{n}条"
DRILL_WARN_FROM = 20  # day of the month from which a month without a logged drill is named in the digest


@dataclass
class Period:
    view: str
    first: date
    last: date  # inclusive

    @property
    def months(self) -> list[str]:
        """YYYY-MM of each month the period touches."""
        months, day = [], self.first.replace(day=1)
        while day <= self.last:
            months.append(f"{day:%Y-%m}")
            day = (day + timedelta(days=32)).replace(day=1)
        return months

    def title(self) -> str:
        return TITLE.format(view=VIEW_NAMES[self.view], first=self.first.isoformat(), last=self.last.isoformat())


@dataclass
class SchoolRow:
    slug: str
    name: str
    drills: int = 0
    drills_due: int = 0
    fire_closed: int = 0
    fire_due: int = 0
    repairs_open: int = 0
    repairs_overdue: int = 0
    bus_alarms: int = 0
    bus_unacknowledged: int = 0
    bus_ack_minutes: float | None = None
    food_alerts: int = 0
    canteen_average: float | None = None
    undelivered: int = 0

    def cells(self) -> list[object]:
        return [self.name, self.slug, f"{self.drills}/{self.drills_due}", f"{self.fire_closed}/{self.fire_due}",
                self.repairs_open, self.repairs_overdue, self.bus_alarms, self.bus_unacknowledged,
                NONE if self.bus_ack_minutes is None else round(self.bus_ack_minutes, 1), self.food_alerts,
                NONE if self.canteen_average is None else round(self.canteen_average, 2), self.undelivered]


def month_period(day: date) -> Period:
    first = day.replace(day=1)
    return Period(MONTH, first, (first + timedelta(days=32)).replace(day=1) - timedelta(days=1))


def term_period(calendar: Calendar, today: date) -> Period:
    """The term `today` is in (or the last one begun), from the school's calendar; without term marks,
    September to January or February to July."""
    begun = [(s, e) for s, e in calendar.terms if s <= today]
    if begun:
        start, end = begun[-1]
        return Period(TERM, start, min(end, today))
    if today.month >= 9:
        return Period(TERM, date(today.year, 9, 1), today)
    if today.month == 1:
        return Period(TERM, date(today.year - 1, 9, 1), today)
    return Period(TERM, date(today.year, 2, 1), today)


def period_for(db: Session, view: str, today: date, month: date | None = None) -> Period:
    if view == TERM:
        return term_period(Calendar(db), today)
    return month_period(month or today)


def _bounds(period: Period, services: Services) -> tuple[datetime, datetime]:
    tz = services.settings.tz
    start = datetime.combine(period.first, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(period.last + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return start, end


def school_row(services: Services, slug: str, name: str, period: Period) -> SchoolRow:
    """One school's figures for `period`, read in its own namespace; open repairs are as of now."""
    row = SchoolRow(slug, name)
    start, end = _bounds(period, services)
    now = services.now()
    today = now.astimezone(services.settings.tz).date()
    with services.read_factory() as db:
        months = [m for m in period.months if m <= f"{today:%Y-%m}"]
        row.drills = db.scalar(select(func.count(Drill.id)).where(
            Drill.day >= period.first, Drill.day <= period.last, Drill.logged_at.is_not(None))) or 0
        row.drills_due = len(months)
        row.fire_closed = db.scalar(select(func.count()).select_from(FireCheck).where(
            FireCheck.month.in_(months), FireCheck.done_at.is_not(None))) or 0
        row.fire_due = len(months)
        active = list(db.scalars(select(RepairTicket).where(RepairTicket.status.in_(ACTIVE))))
        row.repairs_open = len(active)
        row.repairs_overdue = sum(1 for t in active if is_overdue(db, t, now))
        alarms = list(db.execute(select(BusAlarm.raised_at, BusAlarm.acknowledged_at).where(
            BusAlarm.raised_at >= start, BusAlarm.raised_at < end)))
        row.bus_alarms = len(alarms)
        row.bus_unacknowledged = sum(1 for _, acked in alarms if acked is None)
        waits = [(acked - raised).total_seconds() / 60 for raised, acked in alarms if acked is not None]
        row.bus_ack_minutes = sum(waits) / len(waits) if waits else None
        current = (CanteenFeedback.day >= period.first, CanteenFeedback.day <= period.last,
                   CanteenFeedback.superseded_by_id.is_(None))
        row.food_alerts = db.scalar(select(func.count(CanteenFeedback.id)).where(
            *current, CanteenFeedback.alert_words != "")) or 0
        average = db.scalar(select(func.avg(CanteenFeedback.rating)).where(*current))
        row.canteen_average = float(average) if average is not None else None
        row.undelivered = db.scalar(select(func.count(Delivery.id)).join(Push, Push.id == Delivery.push_id).where(
            Push.created_at >= start, Push.created_at < end,
            Delivery.status.in_((FAILED, UNDELIVERABLE)))) or 0
    return row


def county_rows(county: County, view: str = MONTH, month: date | None = None) -> tuple[Period, list[SchoolRow]]:
    """Every school's row, the default school first; the period from the default school's calendar."""
    default = county.default
    today = default.now().astimezone(default.settings.tz).date()
    with default.read_factory() as db:
        period = period_for(db, view, today, month)
    return period, [school_row(services, entry.slug, entry.name, period) for entry, services in county.each()]


def write_xlsx(path: str | Path, period: Period, rows: list[SchoolRow]) -> Path:
    """The overview as one sheet, the same columns as the console page; its title row says the period."""
    return write_workbook(path, [Sheet(SHEET_TITLE, HEADER, [*(r.cells() for r in rows), [period.title()]])])


def attention_today(services: Services, row: SchoolRow) -> list[str]:
    """What of one school's row (its month view) the bureau should look at today."""
    items = []
    now = services.now()
    today = now.astimezone(services.settings.tz).date()
    start = datetime.combine(today, time(0), tzinfo=services.settings.tz).astimezone(UTC)
    if row.repairs_overdue:
        items.append(ITEM_OVERDUE.format(n=row.repairs_overdue))
    if row.bus_unacknowledged:
        items.append(ITEM_UNACKED.format(n=row.bus_unacknowledged))
    with services.read_factory() as db:
        food = db.scalar(select(func.count(CanteenFeedback.id)).where(
            CanteenFeedback.day == today, CanteenFeedback.alert_words != "",
            CanteenFeedback.superseded_by_id.is_(None))) or 0
        undelivered = db.scalar(select(func.count(Delivery.id)).join(Push, Push.id == Delivery.push_id).where(
            Push.created_at >= start, Delivery.status.in_((FAILED, UNDELIVERABLE)))) or 0
        stuck = db.scalar(select(func.count(Delivery.id)).where(Delivery.status.in_((PENDING, SENDING)),
                                                                 Delivery.next_attempt_at < start)) or 0
    if food:
        items.append(ITEM_FOOD.format(n=food))
    if today.day >= DRILL_WARN_FROM and not row.drills:
        items.append(ITEM_NO_DRILL)
    if today.day >= DRILL_WARN_FROM and row.fire_closed < row.fire_due:
        items.append(ITEM_FIRE)
    if undelivered or stuck:
        items.append(ITEM_UNDELIVERED.format(n=undelivered + stuck))
    return items


def county_digest(county: County) -> str:
    """The bureau's 17:30 text: each school with something to look at, one line each."""
    default = county.default
    today = default.now().astimezone(default.settings.tz).date()
    period, rows = county_rows(county, MONTH)
    lines = [DIGEST_TITLE.format(day=f"{today.month}月{today.day}日", count=len(rows))]
    for entry_row in rows:
        items = attention_today(county.services(entry_row.slug), entry_row)
        if items:
            lines.append(DIGEST_LINE.format(name=entry_row.name, items="，".join(items)))
    if len(lines) == 1:
        lines.append(DIGEST_QUIET)
    return "\n".join(lines)


# -- the hook for the bureau's 通知 (issue 19's notices engine builds on it) ---------------------------
def bureau_notice_recipients(county: County, slugs: list[str] | None = None) -> dict[str, list[int]]:
    """Whom a bureau 通知 goes to: per school (all, or the chosen `slugs`), the ids of its admins in that
    school's own namespace. The notices engine queues the notice in each school's outbox and keeps the
    read receipts there, so each school's console shows its own; the bureau's view gathers them per
    school like the overview does. Unknown slugs raise CountyError (a Chinese message)."""
    from bot.school import admins

    chosen = [county.school(slug).slug for slug in slugs] if slugs else [e.slug for e in county.schools()]
    found: dict[str, list[int]] = {}
    for slug in chosen:
        with county.services(slug).read_factory() as db:
            found[slug] = [p.id for p in admins(db)]
    return found
