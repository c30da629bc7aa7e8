"""The bureau's jobs: the county digest at 17:30 on school days, to the bureau's people; and the one
reminder to a school's admins who have not confirmed a bureau notice.

The digest runs in the default school (the county office's home, where the bureau's people are): on any
other school the job does nothing, so a county scheduler sends it once. The figures come from every
school's own namespace (bot.county_report).

The reminder runs in each school, in its own timezone and calendar: on the first school day after the
day a bureau notice reached the school, from 8:00 and never in the quiet hours, the admins who have not
confirmed it are reminded — once per notice (handlers.notices.remind_unconfirmed, the same once as the
sender's 通知 N<n> 提醒). Who was reminded, and when, is on each recipient's row; the bureau reads it in
`houqin county notices ID` and on the console's notice page (bot.county_notices).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from bot.outbox import quiet_until
from bot.school import people_with_role
from bot.text import day_bounds
from handlers.notices import remind_unconfirmed
from models import CountyNoticeSchool, Notice
from scheduler import JobContext

NOT_HOME = "不是教育局所在的学校：跳过"
NO_COUNTY = "没有区县（单校运行）：跳过"
NO_BUREAU = "没有教育局人员：跳过"
QUIET = "静默时段：不提醒（静默时段结束后的下一次运行再提醒）"
NOTHING_TO_REMIND = "没有需要提醒的教育局通知"
REMINDED_ONE = "{code}「{title}」：{said}"
REMIND_WITHIN = timedelta(days=30)  # an older notice is not reminded any more (nor on a first upgrade)


def send_county_digest(ctx: JobContext, now: datetime) -> str:
    if ctx.settings.school:
        return NOT_HOME
    if ctx.services is None:
        return NO_COUNTY
    from bot.county import County
    from bot.county_report import county_digest

    people = people_with_role(ctx.db, "bureau")
    if not people:
        return NO_BUREAU
    text = county_digest(County.of(ctx.services))
    ctx.outbox.notify(people, "county_digest", text)
    return text.splitlines()[0]


def remind_unread_county_notices(ctx: JobContext, now: datetime) -> str:
    """On school days from 8:00: each bureau notice this school received before today whose admins have
    not all confirmed is reminded once, to those who have not; nothing in the quiet hours."""
    if ctx.services is None:
        return NO_COUNTY
    from bot.county import County

    county = County.of(ctx.services)
    slug = county.entry_of(ctx.services).slug
    with county.default.read_factory() as main:
        numbers = set(main.scalars(select(CountyNoticeSchool.notice_number).where(
            CountyNoticeSchool.slug == slug, CountyNoticeSchool.notice_number > 0)))
    if not numbers:
        return NOTHING_TO_REMIND
    today_starts, _ = day_bounds(ctx.local_now.date(), ctx.settings.tz)
    notices = ctx.db.scalars(select(Notice).where(
        Notice.number.in_(numbers), Notice.confirm.is_(True), Notice.reminded_at.is_(None),
        Notice.created_at < today_starts, Notice.created_at >= ctx.now - REMIND_WITHIN).order_by(Notice.number))
    waiting = [n for n in notices if any(r.confirmed_at is None and r.person is not None for r in n.recipients)]
    if not waiting:
        return NOTHING_TO_REMIND
    if quiet_until(ctx.now, ctx.settings) is not None:
        return QUIET
    return "；".join(REMINDED_ONE.format(code=n.code, title=n.title, said=remind_unconfirmed(ctx.db, ctx.outbox, n))
                    for n in waiting)
