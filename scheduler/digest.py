"""The daily digest to admin at 17:00 on school days. Each capability contributes a section through
one small interface: a function `(ctx, day) -> str | None` listed in SECTIONS with its heading."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

from sqlalchemy import func, select

from bot.school import admins
from bot.text import day_bounds, day_label
from models import Binding, Delivery, InboundMessage
from models.outbox import FAILED, SENT, UNDELIVERABLE
from scheduler import JobContext, bus, canteen, duty, repair, safety

Section = Callable[[JobContext, date], str | None]
DIGEST_TITLE = "【后勤日报】{day}"
NOTHING = "今日无异常。"


def messages_section(ctx: JobContext, day: date) -> str | None:
    start, end = day_bounds(day, ctx.settings.tz)
    received = ctx.db.scalar(select(func.count()).select_from(InboundMessage).where(
        InboundMessage.received_at >= start, InboundMessage.received_at < end)) or 0
    failed = ctx.db.scalar(select(func.count()).select_from(InboundMessage).where(
        InboundMessage.received_at >= start, InboundMessage.received_at < end, InboundMessage.status == "failed")) or 0
    bound = ctx.db.scalar(select(func.count()).select_from(Binding).where(
        Binding.bound_at >= start, Binding.bound_at < end)) or 0
    if not (received or bound):
        return None
    line = f"收到消息 {received} 条，新绑定 {bound} 人"
    return line + (f"，处理出错 {failed} 条（请查看日志）" if failed else "")


def pushes_section(ctx: JobContext, day: date) -> str | None:
    start, end = day_bounds(day, ctx.settings.tz)
    rows = dict(ctx.db.execute(select(Delivery.status, func.count()).where(
        Delivery.next_attempt_at >= start, Delivery.next_attempt_at < end).group_by(Delivery.status)).all())
    if not rows:
        return None
    line = f"推送成功 {rows.get(SENT, 0)} 条"
    problems = rows.get(UNDELIVERABLE, 0) + rows.get(FAILED, 0)
    return line + (f"，未送达 {problems} 条（houqin outbox --status undeliverable 查看）" if problems else "")


SECTIONS: list[tuple[str, Section]] = [
    ("安全", safety.digest_section),
    ("报修", repair.digest_section),
    ("校车", bus.digest_section),
    ("值日", duty.digest_section),
    ("食堂", canteen.digest_section),
    ("消息", messages_section),
    ("推送", pushes_section),
]


def build_digest(ctx: JobContext, day: date) -> str:
    parts = [DIGEST_TITLE.format(day=day_label(day))]
    for heading, section in SECTIONS:
        body = section(ctx, day)
        if body:
            parts.append(f"■ {heading}\n{body}")
    if len(parts) == 1:
        parts.append(NOTHING)
    return "\n".join(parts)


def send_daily_digest(ctx: JobContext, now: datetime) -> str:
    text = build_digest(ctx, ctx.local_now.date())
    ctx.outbox.notify(admins(ctx.db), "daily_digest", text)
    return text.splitlines()[0]
