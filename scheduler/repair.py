"""Repair escalation: a ticket not accepted within 2 working hours, or not done within 3 days (an
urgent one: 4 hours), is reported to admin, once per rule. And the repairs section of the daily
digest: today's numbers, late tickets, and assets that keep failing (3 times in 90 days)."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta

from sqlalchemy import select

from bot.school import admins, get_setting
from bot.text import clock_time, day_bounds
from handlers.repair.rules import done_limit, is_overdue, local_label, names_of, ticket_push, workers_of
from models import RepairTicket
from models.repair import ACTIVE, OPEN, STATUS_NAMES, WITHDRAWN
from scheduler import JobContext

UNACCEPTED = "【报修超时未接单】{code} {place} · {category}：{description}（报修人：{reporter}，{when}报修）已超过{limit}个工作小时无人接单。已通知：{notified}。"
OVERDUE = "【报修逾期未完成】{code} {place} · {category}：{description}（报修人：{reporter}，{when}报修）超过{limit}仍未修好。{state}"
OVERDUE_STATE = "当前：{status}{who}。"
NONE_UNACCEPTED = "没有超时未接单的报修"
NONE_OVERDUE = "没有逾期未完成的报修"
ESCALATED = "{n} 张报修已报管理员：{codes}"
REPEAT_WINDOW = timedelta(days=90)
REPEAT_COUNT = 3


def _fields(ctx: JobContext, ticket: RepairTicket) -> dict[str, str]:
    return {"code": ticket.code, "place": ticket.place, "category": ticket.category,
            "description": ticket.description, "reporter": ticket.reporter.name if ticket.reporter else "",
            "when": local_label(ctx.settings.tz, ticket.filed_at)}


def accept_limit(ctx: JobContext) -> float:
    return float(get_setting(ctx.db, "repair_accept_hours"))


def waiting_hours(ctx: JobContext, ticket: RepairTicket) -> float:
    """Working hours since the ticket was filed (school days, work_start-work_end)."""
    opens, closes = clock_time(get_setting(ctx.db, "work_start")), clock_time(get_setting(ctx.db, "work_end"))
    return ctx.calendar.working_hours(ticket.filed_at, ctx.now, ctx.settings.tz, opens, closes)


def is_unaccepted_late(ctx: JobContext, ticket: RepairTicket) -> bool:
    return ticket.status == OPEN and waiting_hours(ctx, ticket) >= accept_limit(ctx)


def escalate_unaccepted_repairs(ctx: JobContext, now: datetime) -> str:
    """Open tickets nobody accepted within the working hours allowed go to admin, once each."""
    tickets = ctx.db.scalars(select(RepairTicket).where(RepairTicket.status == OPEN,
                                                        RepairTicket.unaccepted_escalated_at.is_(None))
                             .order_by(RepairTicket.number))
    late = [t for t in tickets if is_unaccepted_late(ctx, t)]
    for ticket in late:
        ticket.unaccepted_escalated_at = ctx.now
        notified = workers_of(ctx.db, ticket)
        text = UNACCEPTED.format(**_fields(ctx, ticket), limit=f"{accept_limit(ctx):g}", notified=names_of(notified))
        ctx.outbox.notify(admins(ctx.db), "repair_escalation", text, safety=ticket.urgent, about=ticket,
                          fields=ticket_push(ticket))
    return ESCALATED.format(n=len(late), codes="、".join(t.code for t in late)) if late else NONE_UNACCEPTED


def escalate_overdue_repairs(ctx: JobContext, now: datetime) -> str:
    """Tickets not done within 3 days (urgent: 4 hours) of filing go to admin, once each."""
    tickets = ctx.db.scalars(select(RepairTicket).where(RepairTicket.status.in_(ACTIVE),
                                                        RepairTicket.overdue_escalated_at.is_(None))
                             .order_by(RepairTicket.number))
    late = [t for t in tickets if is_overdue(ctx.db, t, ctx.now)]
    for ticket in late:
        ticket.overdue_escalated_at = ctx.now
        who = f"，负责人：{ticket.assignee.name}" if ticket.assignee else ""
        state = OVERDUE_STATE.format(status=STATUS_NAMES[ticket.status], who=who)
        text = OVERDUE.format(**_fields(ctx, ticket), limit=done_limit(ctx.db, ticket)[1], state=state)
        ctx.outbox.notify(admins(ctx.db), "repair_escalation", text, safety=ticket.urgent, about=ticket,
                          fields=ticket_push(ticket))
    return ESCALATED.format(n=len(late), codes="、".join(t.code for t in late)) if late else NONE_OVERDUE


def repeat_failures(ctx: JobContext, day: date) -> list[tuple[str, int]]:
    """Assets that failed at least 3 times (tickets and reopenings, not withdrawn ones) in the 90 days up to `day`."""
    _, end = day_bounds(day, ctx.settings.tz)
    tickets = ctx.db.scalars(select(RepairTicket).where(RepairTicket.asset_id.is_not(None),
                                                        RepairTicket.status != WITHDRAWN,
                                                        RepairTicket.filed_at >= end - REPEAT_WINDOW,
                                                        RepairTicket.filed_at < end))
    counts: Counter[int] = Counter()
    labels: dict[int, str] = {}
    for t in tickets:
        assert t.asset is not None
        counts[t.asset.id] += 1 + t.reopen_count
        labels[t.asset.id] = f"{t.place}（{t.asset.code}）"
    return [(labels[a], n) for a, n in counts.most_common() if n >= REPEAT_COUNT]


def digest_section(ctx: JobContext, day: date) -> str | None:
    """Today's repairs, the late ones, and assets that keep failing."""
    start, end = day_bounds(day, ctx.settings.tz)
    filed = list(ctx.db.scalars(select(RepairTicket).where(RepairTicket.filed_at >= start,
                                                           RepairTicket.filed_at < end)))
    done = list(ctx.db.scalars(select(RepairTicket).where(RepairTicket.done_at >= start, RepairTicket.done_at < end)))
    active = list(ctx.db.scalars(select(RepairTicket).where(RepairTicket.status.in_(ACTIVE))
                                 .order_by(RepairTicket.number)))
    lines = []
    if filed or done or active:
        hazards = sum(1 for t in filed if t.hazard)
        lines.append(f"今日报修 {len(filed)} 张（其中隐患 {hazards} 张），完成 {len(done)} 张，未完成共 {len(active)} 张")
    for t in active:
        if is_overdue(ctx.db, t, ctx.now):
            who = t.assignee.name if t.assignee else "无人接单"
            lines.append(f"逾期：{t.code} {t.place} · {t.description}（{STATUS_NAMES[t.status]}，{who}，"
                         f"超过{done_limit(ctx.db, t)[1]}）")
        elif is_unaccepted_late(ctx, t):
            lines.append(f"超时未接单：{t.code} {t.place} · {t.description}")
    for label, count in repeat_failures(ctx, day):
        lines.append(f"重复故障：{label} 90天内报修 {count} 次，建议检修或更换")
    return "\n".join(lines) if lines else None
