"""The office survey's job: remind, once, those who have not finished, two days before it closes."""

from __future__ import annotations

from datetime import datetime

from handlers.survey import REMIND_BEFORE, open_survey, remind
from scheduler import JobContext

NONE_OPEN = "没有进行中的后勤满意度测评"
ALREADY = "已提醒过"
NOT_YET = "未到提醒日"


def remind_office_survey(ctx: JobContext, now: datetime) -> str:
    today = ctx.local_now.date()
    survey = open_survey(ctx.db, today)
    if survey is None:
        return NONE_OPEN
    if survey.reminded_at is not None:
        return ALREADY
    if today < survey.closes_on - REMIND_BEFORE and today != survey.closes_on:
        return NOT_YET
    return remind(ctx.db, ctx.outbox, survey)
