"""The bureau's jobs: the county digest at 17:30 on school days, to the bureau's people.

It runs in the default school (the county office's home, where the bureau's people are): on any other
school the job does nothing, so a county scheduler sends it once. The figures come from every school's
own namespace (bot.county_report).
"""

from __future__ import annotations

from datetime import datetime

from bot.school import people_with_role
from scheduler import JobContext

NOT_HOME = "不是教育局所在的学校：跳过"
NO_COUNTY = "没有区县（单校运行）：跳过"
NO_BUREAU = "没有教育局人员：跳过"


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
