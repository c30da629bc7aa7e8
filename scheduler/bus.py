"""School-bus jobs: the report watchdog, the repeating left-on-bus alarm; the digest's bus section."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import select

from bot.school import admins, get_setting
from bot.text import clock_time
from handlers.bus import alarm_fields, alarm_text, all_routes, bus_responsible, monitors_of, trip_row
from models.bus import AFTERNOON, MORNING, TRIP_NAMES, BusAlarm, BusTrip
from scheduler import JobContext

REMIND_AFTER = timedelta(minutes=15)
ESCALATE_AFTER = timedelta(minutes=30)
REPEAT_EVERY = timedelta(minutes=5)
MISSING_REMINDER = "【校车人数未报】{route} {trip}趟还没有报告{missing}人数（截止 {deadline}）。请发送：校车 {number}号线 {example} 人数"
MISSING_ESCALATION = "【校车人数未报】{route} {trip}趟截止 {deadline} 后30分钟仍未报告{missing}人数。跟车老师：{who}。"


def _deadline(ctx: JobContext, day: date, trip: str) -> datetime:
    at = clock_time(get_setting(ctx.db, "bus_am_deadline" if trip == MORNING else "bus_pm_deadline"))
    return datetime.combine(day, at, tzinfo=ctx.settings.tz)


def watch_bus_reports(ctx: JobContext, now: datetime) -> str:
    """15 minutes after a trip's deadline without both counts: remind the monitor; 30: tell admin."""
    today = ctx.local_now.date()
    done = []
    for route in all_routes(ctx.db):
        for trip_kind in (MORNING, AFTERNOON):
            deadline = _deadline(ctx, today, trip_kind)
            late = ctx.local_now - deadline
            if late < REMIND_AFTER:
                continue
            trip = trip_row(ctx.db, route, today, trip_kind)
            missing = "、".join(d for d, v in (("上车", trip.boarded), ("下车", trip.alighted)) if v is None)
            if not missing:
                continue
            fields = {"route": route.label, "trip": TRIP_NAMES[trip_kind], "missing": missing,
                      "deadline": f"{deadline:%H:%M}", "number": route.number, "example": missing.split("、")[0],
                      "who": "、".join(route.monitor_names) or "未登记"}
            if trip.reminded_at is None:
                trip.reminded_at = ctx.now
                ctx.outbox.notify(monitors_of(ctx.db, route), "bus_report_missing", MISSING_REMINDER.format(**fields),
                                  fields={"route": route.label, "trip": TRIP_NAMES[trip_kind]})
                done.append(f"提醒{route.label}{TRIP_NAMES[trip_kind]}")
            if late >= ESCALATE_AFTER and trip.escalated_at is None:
                trip.escalated_at = ctx.now
                ctx.outbox.notify(admins(ctx.db), "bus_report_missing", MISSING_ESCALATION.format(**fields),
                                  fields={"route": route.label, "trip": TRIP_NAMES[trip_kind]})
                done.append(f"上报{route.label}{TRIP_NAMES[trip_kind]}")
    return "；".join(done) or "各趟人数已报告或未到时间"


def repeat_bus_alarms(ctx: JobContext, now: datetime) -> str:
    """Every 5 minutes until 确认: the alarm again, to the bus manager and admin, through quiet hours."""
    alarms = list(ctx.db.scalars(select(BusAlarm).where(BusAlarm.acknowledged_at.is_(None),
                                                        BusAlarm.last_pushed_at <= ctx.now - REPEAT_EVERY)))
    for alarm in alarms:
        alarm.pushes += 1
        alarm.last_pushed_at = ctx.now
        # who could not be reached was put before the office when the alarm was raised, and stays
        # there until acknowledged: a repeat every 5 minutes does not raise it again
        ctx.outbox.notify(bus_responsible(ctx.db), "bus_alarm", alarm_text(ctx.db, alarm), safety=True,
                          escalate=False, fields=alarm_fields(ctx.db, alarm))
    return f"重复警报 {len(alarms)} 条" if alarms else "没有未确认的警报"


def digest_section(ctx: JobContext, day: date) -> str | None:
    lines = []
    for trip in ctx.db.scalars(select(BusTrip).where(BusTrip.day == day).order_by(BusTrip.route_id, BusTrip.trip)):
        label = f"{trip.route.label}{TRIP_NAMES[trip.trip]}"
        if trip.boarded is None or trip.alighted is None:
            lines.append(f"{label}：人数未报全（上车 {trip.boarded if trip.boarded is not None else '未报'}，"
                         f"下车 {trip.alighted if trip.alighted is not None else '未报'}）")
        elif trip.boarded != trip.expected:
            lines.append(f"{label}：上车 {trip.boarded} 人，应到 {trip.expected} 人")
        if trip.data_error:
            lines.append(f"{label}：数据有误，{trip.data_error}")
        for alarm in trip.alarms:
            state = (f"已由{alarm.acknowledged_by.name if alarm.acknowledged_by else '他人'}确认"
                     + (f"（{alarm.note}）" if alarm.note else "") if alarm.acknowledged_at else "未确认！")
            lines.append(f"{label}：下车少 {alarm.missing} 人的警报，提醒 {alarm.pushes} 次，{state}")
    return "\n".join(lines) if lines else None
