"""Duty jobs: the reminder 10 minutes before each slot, the missed-duty record 10 minutes after its
start; and the digest's duty section."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import select

from bot.school import duty_slots
from handlers.duty import EARLY, ensure_shift, rostered_on
from models.duty import DutyShift
from scheduler import JobContext

MISSED_AFTER = timedelta(minutes=10)
REMINDER = "【值日提醒】{start} 开始{slot}值日，岗位：{post}。到岗后请扫描岗位二维码或发送「签到」。"
MISSED = "【缺岗记录】你今天{slot}在{post}的值日没有签到，已记为缺岗。如有误请联系管理员。"


def _at(ctx: JobContext, value: object) -> datetime:
    return datetime.combine(ctx.local_now.date(), value, tzinfo=ctx.settings.tz)  # type: ignore[arg-type]


def remind_duty(ctx: JobContext, now: datetime) -> str:
    """From 10 minutes before a slot until it starts: remind each rostered teacher, once."""
    told = []
    for slot in duty_slots(ctx.db):
        start = _at(ctx, slot.start)
        if not start - EARLY <= ctx.local_now < start:
            continue
        for plan in rostered_on(ctx.db, ctx.local_now.date()):
            if plan.slot != slot.name:
                continue
            shift = ensure_shift(ctx.db, ctx.local_now.date(), slot.name, plan.post)
            if shift.reminded_at is None and shift.person is not None:
                shift.reminded_at = ctx.now
                ctx.outbox.notify(shift.person, "duty_reminder", REMINDER.format(
                    start=f"{slot.start:%H:%M}", slot=slot.label, post=plan.post.name),
                    fields={"post": plan.post.name, "slot": slot.label,
                            "time": f"{ctx.local_now:%Y-%m-%d} {slot.start:%H:%M}"})
                told.append(shift.person.name)
    return ("已提醒：" + "、".join(told)) if told else "没有需要提醒的值日"


def record_missed_duty(ctx: JobContext, now: datetime) -> str:
    """10 minutes after a slot's start with nobody checked in: recorded as missed, the teacher told."""
    missed = []
    for slot in duty_slots(ctx.db):
        start, end = _at(ctx, slot.start), _at(ctx, slot.end)
        if not start + MISSED_AFTER <= ctx.local_now <= end + timedelta(hours=2):
            continue
        for plan in rostered_on(ctx.db, ctx.local_now.date()):
            if plan.slot != slot.name:
                continue
            shift = ensure_shift(ctx.db, ctx.local_now.date(), slot.name, plan.post)
            if shift.checkins or shift.missed_at is not None or shift.person is None:
                continue
            shift.missed_at = ctx.now
            ctx.outbox.notify(shift.person, "duty_missed", MISSED.format(slot=slot.label, post=plan.post.name),
                              fields={"post": plan.post.name, "slot": slot.label})
            missed.append(f"{shift.person.name}（{slot.name} {plan.post.name}）")
    return ("缺岗：" + "、".join(missed)) if missed else "没有缺岗"


def digest_section(ctx: JobContext, day: date) -> str | None:
    shifts = list(ctx.db.scalars(select(DutyShift).where(DutyShift.day == day)))
    if not shifts:
        return None
    missed = [s for s in shifts if not s.checkins and s.person is not None and s.missed_at is not None]
    stand_ins = [s for s in shifts if s.checkins and s.checkins[0].stand_in]
    unverified = sum(1 for s in shifts for c in s.checkins if not c.verified)
    lines = [f"值日 {len(shifts)} 岗次，签到 {sum(1 for s in shifts if s.checkins)}，缺岗 {len(missed)}"]
    lines += [f"缺岗：{s.person.name} {s.slot} {s.post.name}" for s in missed if s.person]
    lines += [f"代班：{s.checkins[0].person.name} 代 {s.person.name if s.person else '—'}（{s.slot} {s.post.name}）"
              for s in stand_ins]
    if unverified:
        lines.append(f"文字签到（未验证位置）{unverified} 次")
    return "\n".join(lines)
