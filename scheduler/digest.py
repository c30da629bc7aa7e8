"""The daily digest to admin at 17:00 on school days. Each capability contributes a section through
one small interface: a function `(ctx, day) -> str | None` listed in SECTIONS with its heading."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

from sqlalchemy import func, select

from bot.outbox import kind_name, short_reason
from bot.school import admins
from bot.text import day_bounds, day_label
from models import Binding, Delivery, DeliveryAlert, InboundMessage
from models.outbox import FAILED, SENT, UNDELIVERABLE
from scheduler import JobContext, bus, canteen, duty, repair, safety, suggestions, tasks
from scheduler.assets import digest as assets_digest

Section = Callable[[JobContext, date], str | None]
DIGEST_TITLE = "【后勤日报】{day}"
NOTHING = "今日无异常。"
UNDELIVERED_LINE = "{safety}{name}未收到{what}（{reason}）：{text}"
UNDELIVERED_MORE = "……另有 {n} 条"
UNDELIVERED_OPEN = "共 {n} 条未确认，请电话或当面转告，并在后勤控制台（/admin）点「已处理」。"
UNDELIVERED_SHOWN = 10


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


def undelivered_section(ctx: JobContext, day: date) -> str | None:
    """Whom a notice could not reach and the office has not yet acknowledged (any day), safety first."""
    open_ = DeliveryAlert.acknowledged_at.is_(None)
    total = ctx.db.scalar(select(func.count()).select_from(DeliveryAlert).where(open_)) or 0
    if not total:
        return None
    alerts = ctx.db.scalars(select(DeliveryAlert).where(open_).order_by(
        DeliveryAlert.safety.desc(), DeliveryAlert.raised_at).limit(UNDELIVERED_SHOWN))
    lines = [UNDELIVERED_LINE.format(safety="⚠" if a.safety else "", name=a.name, what=kind_name(a.push.kind),
                                     reason=short_reason(a.reason), text=a.push.text.splitlines()[0])
             for a in alerts]
    if total > len(lines):
        lines.append(UNDELIVERED_MORE.format(n=total - len(lines)))
    return "\n".join([*lines, UNDELIVERED_OPEN.format(n=total)])


SECTIONS: list[tuple[str, Section]] = [
    ("未送达通知", undelivered_section),
    ("安全", safety.digest_section),
    ("报修", repair.digest_section),
    ("行事历", tasks.digest_section),
    ("资产", assets_digest.digest_section),
    ("校车", bus.digest_section),
    ("值日", duty.digest_section),
    ("食堂", canteen.digest_section),
    ("意见箱", suggestions.digest_section),
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
