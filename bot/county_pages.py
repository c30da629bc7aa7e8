"""The read-only pages behind the bureau's county overview: each figure of a school's row links to the
records it counts, read in that school's own namespace (bot.console.county serves them to the bureau).

Each page is a title and a table of text cells: nothing to submit, nothing to change."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from bot.county_report import Period, _bounds
from bot.services import Services
from bot.text import local_naive
from handlers.repair import is_overdue
from models import BusAlarm, BusTrip, CanteenFeedback, Delivery, Drill, FireCheck, Push, RepairTicket
from models.outbox import FAILED, UNDELIVERABLE
from models.repair import ACTIVE, STATUS_NAMES

OPEN, OVERDUE = "open", "overdue"


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)


@dataclass
class CountyPage:
    title: str
    tables: list[Table]


def _local(services: Services, moment: datetime | None) -> str:
    local = local_naive(moment, services.settings.tz)
    return f"{local:%Y-%m-%d %H:%M}" if local else "—"


def repairs_page(services: Services, period: Period, state: str) -> CountyPage:
    """The school's open repairs now (or only the overdue ones)."""
    now = services.now()
    with services.read_factory() as db:
        tickets = list(db.scalars(select(RepairTicket).where(RepairTicket.status.in_(ACTIVE))
                                  .order_by(RepairTicket.number)))
        if state == OVERDUE:
            tickets = [t for t in tickets if is_overdue(db, t, now)]
        rows = [[t.code, t.place, t.description, STATUS_NAMES.get(t.status, t.status), "紧急" if t.urgent else "",
                 _local(services, t.filed_at)] for t in tickets]
    title = "逾期报修" if state == OVERDUE else "未完成报修"
    return CountyPage(title, [Table(title, ["编号", "地点", "描述", "状态", "紧急", "报修时间"], rows)])


def safety_page(services: Services, period: Period) -> CountyPage:
    """Drills logged in the period and the months' fire self-checks."""
    months = period.months
    with services.read_factory() as db:
        drills = [[f"{d.day:%Y-%m-%d}", d.kind, d.scope, _local(services, d.logged_at),
                   "" if d.evacuation_minutes is None else f"{d.evacuation_minutes:g}", d.problems]
                  for d in db.scalars(select(Drill).where(Drill.day >= period.first, Drill.day <= period.last)
                                      .order_by(Drill.day))]
        checks = {c.month: c for c in db.scalars(select(FireCheck).where(FireCheck.month.in_(months)))}
        fire = [[m, _local(services, checks[m].done_at) if m in checks and checks[m].done_at else "未完成",
                 checks[m].note if m in checks else ""] for m in months]
    return CountyPage("演练与消防自检", [
        Table("演练记录", ["日期", "类型", "范围", "记录时间", "疏散用时（分钟）", "问题"], drills),
        Table("消防设备自检", ["月份", "完成时间", "备注"], fire)])


def bus_page(services: Services, period: Period) -> CountyPage:
    start, end = _bounds(period, services)
    with services.read_factory() as db:
        alarms = db.scalars(select(BusAlarm).options(joinedload(BusAlarm.trip).joinedload(BusTrip.route))
                            .where(BusAlarm.raised_at >= start, BusAlarm.raised_at < end).order_by(BusAlarm.id))
        rows = [[_local(services, a.raised_at), f"{a.trip.route.number}（{a.trip.route.plate}）", str(a.missing),
                 _local(services, a.acknowledged_at) if a.acknowledged_at else "未确认",
                 f"{(a.acknowledged_at - a.raised_at).total_seconds() / 60:.1f}" if a.acknowledged_at else "—",
                 a.note] for a in alarms]
    return CountyPage("校车警报", [Table("校车警报", ["时间", "线路", "少人数", "确认时间", "用时（分钟）", "备注"], rows)])


def canteen_page(services: Services, period: Period) -> CountyPage:
    """The period's food-safety feedback (the words that raised it), and the average rating."""
    with services.read_factory() as db:
        found = list(db.scalars(select(CanteenFeedback).where(
            CanteenFeedback.day >= period.first, CanteenFeedback.day <= period.last,
            CanteenFeedback.superseded_by_id.is_(None)).order_by(CanteenFeedback.number)))
    alerts = [[f.code, f"{f.day:%Y-%m-%d}", str(f.rating), f.comment, f.alert_words] for f in found if f.alert_words]
    average = f"{sum(f.rating for f in found) / len(found):.2f}（{len(found)}条评价）" if found else "—"
    return CountyPage("食品安全反馈", [Table("食品安全反馈", ["编号", "日期", "评分", "内容", "关键词"], alerts),
                                 Table("食堂评价", ["平均评分"], [[average]])])


def outbox_page(services: Services, period: Period) -> CountyPage:
    start, end = _bounds(period, services)
    with services.read_factory() as db:
        rows = [[_local(services, d.push.created_at), d.push.kind, _recipient(db, d), d.status, d.last_error or ""]
                for d in db.scalars(select(Delivery).join(Push, Push.id == Delivery.push_id).where(
                    Push.created_at >= start, Push.created_at < end, Delivery.status.in_((FAILED, UNDELIVERABLE)))
                    .order_by(Delivery.id))]
    return CountyPage("未送达推送", [Table("未送达推送", ["时间", "类型", "收件人", "状态", "原因"], rows)])


def _recipient(db: Session, delivery: Delivery) -> str:
    from models import Person

    person = db.get(Person, delivery.person_id) if delivery.person_id else None
    return person.name if person is not None else "—"


PAGES: dict[str, Callable[..., CountyPage]] = {"safety": safety_page, "bus": bus_page, "canteen": canteen_page,
                                              "outbox": outbox_page}
