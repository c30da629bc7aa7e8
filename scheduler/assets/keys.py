"""The term-end key check: on the day the calendar marks as the term's end, admin gets the list of every
key not returned and each holder a reminder."""

from __future__ import annotations

from datetime import datetime

from bot.school import TERM_END, admins
from handlers.assets.keys import unreturned, unreturned_text
from scheduler import JobContext

TERM_END_HEADER = "【期末钥匙清点】本学期今天结束。"
HOLDER_REMINDER = "【期末钥匙清点】本学期今天结束，你领的以下钥匙尚未归还，请交回后勤：{keys}"
NOT_TERM_END = "今天不是学期结束日"
ALL_BACK = "期末钥匙已全部归还"


def check_keys_at_term_end(ctx: JobContext, now: datetime) -> str:
    today = ctx.local_now.date()
    if TERM_END not in ctx.calendar.marks.get(today, set()):
        return NOT_TERM_END
    loans = unreturned(ctx.db)
    text = TERM_END_HEADER + unreturned_text(ctx.db, ctx.settings.tz, today)
    ctx.outbox.notify(admins(ctx.db), "keys_term_check", text, fields={"count": str(len(loans))})
    if not loans:
        return ALL_BACK
    by_person: dict[int, list[str]] = {}
    for loan in loans:
        room = loan.asset.room.name if loan.asset.room else ""
        by_person.setdefault(loan.borrower_id, []).append(f"{room} {loan.asset.name} 第{loan.copy_no}把")
    for loan in loans:
        keys = by_person.pop(loan.borrower_id, None)
        if keys:
            ctx.outbox.notify(loan.borrower, "keys_term_check", HOLDER_REMINDER.format(keys="、".join(keys)),
                              fields={"count": str(len(keys))})
    return f"未还钥匙 {len(loans)} 把，已报管理员并提醒领取人"
