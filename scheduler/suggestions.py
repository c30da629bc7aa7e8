"""The suggestion box's job — anonymous suggestions passed on together, on the hour — and its section of
the daily digest: the day's new suggestions, the month's count, what waits."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select

from bot.text import month_span
from handlers.suggestions import route_anonymous_suggestions, shorten
from models import Suggestion
from models.voice import OPEN
from scheduler import JobContext

NEW = "新意见 {code}（{topic}，{who}）：{text}"
MONTH = "本月意见 {n} 条（匿名 {anonymous} 条），已答复 {answered} 条，待答复 {open} 条"
WAITING = "待答复：{codes}（发送「回复 Y编号 内容」答复）"
ANONYMOUS, SIGNED = "匿名", "实名"


def digest_section(ctx: JobContext, day: date) -> str | None:
    first, after = month_span(day)
    month = list(ctx.db.scalars(select(Suggestion).where(Suggestion.filed_on >= first, Suggestion.filed_on < after)
                                .order_by(Suggestion.number)))
    waiting = list(ctx.db.scalars(select(Suggestion).where(Suggestion.status == OPEN).order_by(Suggestion.number)))
    if not month and not waiting:
        return None
    lines = [NEW.format(code=s.code, topic=s.topic, who=ANONYMOUS if s.anonymous else SIGNED, text=shorten(s.text))
             for s in month if s.filed_on == day]
    lines.append(MONTH.format(n=len(month), anonymous=sum(s.anonymous for s in month),
                              answered=sum(s.status != OPEN for s in month),
                              open=sum(s.status == OPEN for s in month)))
    if waiting:
        lines.append(WAITING.format(codes="、".join(s.code for s in waiting[:20])))
    return "\n".join(lines)


ROUTED = "已转交匿名意见：{codes}"
NONE_WAITING = "没有待转交的匿名意见"


def push_anonymous_suggestions(ctx: JobContext, now: datetime) -> str:
    """On the hour: the anonymous suggestions filed since, to whoever answers for each, in one go — so that a
    push's time does not single out the message (kept, redacted, in the log) that brought it."""
    routed = route_anonymous_suggestions(ctx.db, ctx.outbox)
    return ROUTED.format(codes="、".join(s.code for s in routed)) if routed else NONE_WAITING
