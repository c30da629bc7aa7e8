"""Loans' jobs: one rolled-up reminder a day per person listing everything due or overdue (keys included:
a key loan never expires silently), and after `loan_overdue_days` days overdue one message to each
custodian and admin listing what is overdue."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from bot.school import admins, get_setting
from handlers.assets.common import keepers
from handlers.assets.loans import loan_what
from models import AssetLoan, Person
from models.assets.loans import OUT
from scheduler import JobContext

DUE_HEADER = "【借用到期提醒】你借用的以下物品今天到期或已逾期，请尽快归还（发送「还 物品」或「还钥匙 房间」）："
DUE_LINE = "{code} {what} · {when}"
DUE_TODAY = "今天到期"
OVERDUE = "逾期{days}天"
ESCALATION_HEADER = "【借用逾期督办】以下借用已逾期{days}天以上仍未归还："
ESCALATION_LINE = "{code} {who}：{what} · 应还 {due}，逾期{late}天"
NOTHING_DUE = "没有到期的借用"
NOTHING_LATE = "没有需要督办的逾期借用"


def _when(loan: AssetLoan, today: object) -> str:
    assert loan.due_on is not None
    late = (today - loan.due_on).days  # type: ignore[operator]
    return DUE_TODAY if late <= 0 else OVERDUE.format(days=late)


def remind_loans_due(ctx: JobContext, now: datetime) -> str:
    """Each borrower with loans due today or overdue gets one message listing them all, once a day."""
    today = ctx.local_now.date()
    loans = list(ctx.db.scalars(select(AssetLoan).where(AssetLoan.status == OUT, AssetLoan.due_on <= today)
                                .order_by(AssetLoan.borrower_id, AssetLoan.due_on, AssetLoan.id)))
    by_person: dict[int, list[AssetLoan]] = {}
    for loan in loans:
        by_person.setdefault(loan.borrower_id, []).append(loan)
    told = []
    for mine in by_person.values():
        if all(loan.reminded_on == today for loan in mine):
            continue
        person = mine[0].borrower
        lines = [DUE_LINE.format(code=loan.code, what=loan_what(loan), when=_when(loan, today)) for loan in mine]
        ctx.outbox.notify(person, "loan_due", "\n".join([DUE_HEADER, *lines]),
                          fields={"items": "；".join(lines)})
        for loan in mine:
            loan.reminded_on = today
        told.append(f"{person.name}（{len(mine)}项）")
    return ("已提醒：" + "、".join(told)) if told else NOTHING_DUE


def escalate_overdue_loans(ctx: JobContext, now: datetime) -> str:
    """Loans overdue `loan_overdue_days` days: once, rolled up per recipient, to the custodians and admin."""
    today = ctx.local_now.date()
    days = int(get_setting(ctx.db, "loan_overdue_days"))
    loans = list(ctx.db.scalars(select(AssetLoan).where(AssetLoan.status == OUT, AssetLoan.escalated_at.is_(None),
                                                         AssetLoan.due_on <= today - timedelta(days=days))
                                .order_by(AssetLoan.due_on, AssetLoan.id)))
    if not loans:
        return NOTHING_LATE
    office = admins(ctx.db)
    to: dict[int, tuple[Person, list[AssetLoan]]] = {}
    for loan in loans:
        for person in [*keepers(ctx.db, loan.asset), *office]:
            if person.id != loan.borrower_id or person in office:
                to.setdefault(person.id, (person, []))[1].append(loan)
        loan.escalated_at = ctx.now
    for person, mine in to.values():
        lines = [ESCALATION_LINE.format(code=loan.code, who=loan.borrower.name, what=loan_what(loan),
                                        due=f"{loan.due_on:%m-%d}", late=(today - loan.due_on).days)
                 for loan in mine if loan.due_on is not None]
        ctx.outbox.notify(person, "loan_overdue", "\n".join([ESCALATION_HEADER.format(days=days), *lines]),
                          fields={"items": "；".join(lines)})
    return f"逾期 {len(loans)} 项，已报：" + "、".join(p.name for p, _ in to.values())
