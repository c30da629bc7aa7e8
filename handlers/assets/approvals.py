"""批准 / 驳回 <编号>: the lender's answer to a loan request (J<n>), the keeper's to a requisition (L<n>),
admin's to a disposal (BF<n>). The asker is told either way; a request already answered changes nothing."""

from __future__ import annotations

import re

from sqlalchemy import select

from bot.engine import Context, Conversation, Incoming, Reply
from bot.outbox import told
from handlers.assets import disposal as disposal_module
from handlers.assets.common import ASSET_ROLES, TOPIC, held, lenders, quantity_label
from handlers.assets.loans import hand_out
from handlers.assets.supplies import deduct, keepers_of
from models import AssetLoan, Disposal, SupplyMove
from models.assets.loans import DECLINED as LOAN_DECLINED
from models.assets.loans import PENDING as LOAN_PENDING
from models.assets.register import APPROVED, DECLINED, PENDING, REQUEST_NAMES
from models.assets.supplies import DECLINED as SUPPLY_DECLINED
from models.assets.supplies import PENDING as SUPPLY_PENDING

HELP = "批准 / 驳回 编号 [理由] — 审批借用（J）、领用（L）、报废（BF）申请"
USAGE = "请按格式发送：批准 编号 或 驳回 编号 理由，例如：批准 J3"
UNKNOWN = "没有找到申请 {code}，请核对编号。"
NOT_YOURS = "{code} 需由{names}审批。"
ANSWERED = "{code} 已处理过（{state}），不再更改。"
LOAN_GONE = "{what} 现在只剩 {left} 个可借，{code} 不能批准，请驳回或等归还后再批。"
STOCK_GONE = "{name} 库存只有 {stock}{unit}，{code} 不能批准。"
APPROVED_REPLY = "已批准 {code}：{what}（{who}）。{told}"
DECLINED_REPLY = "已驳回 {code}：{what}（{who}）{reason}。{told}"
TELL_APPROVED = "【申请已批准】你的{kind} {code}：{what} 已由{by}批准。{tail}"
TELL_DECLINED = "【申请未批准】你的{kind} {code}：{what} 未获{by}批准{reason}。"
LOAN_TAIL = "请于 {due} 前归还。"
CODE_RE = re.compile(r"^(J|L|BF)(\d{1,9})$", re.IGNORECASE)
YES_WORDS, NO_WORDS = ("批准",), ("驳回",)

approve = Conversation("asset_approve", title="审批申请", keywords=[*YES_WORDS, *NO_WORDS], roles=ASSET_ROLES,
                       help=HELP, topic=TOPIC, slips=False)


@approve.entry
def answer(msg: Incoming, ctx: Context) -> Reply:
    yes = msg.command in YES_WORDS
    if not msg.args or (m := CODE_RE.match(msg.args[0].upper())) is None:
        return Reply.end(USAGE)
    kind, number = m[1].upper(), int(m[2])
    code = f"{kind}{number}"
    reason = " ".join(msg.kept_args[1:])
    if kind == "J":
        loan = ctx.db.scalar(select(AssetLoan).where(AssetLoan.number == number))
        return _loan(ctx, loan, code, yes, reason)
    if kind == "L":
        move = ctx.db.scalar(select(SupplyMove).where(SupplyMove.number == number))
        return _supply(ctx, move, code, yes, reason)
    disposal = ctx.db.scalar(select(Disposal).where(Disposal.number == number))
    return _disposal(ctx, disposal, code, yes, reason)


def _because(reason: str) -> str:
    return f"，理由：{reason}" if reason else ""


def _loan(ctx: Context, loan: AssetLoan | None, code: str, yes: bool, reason: str) -> Reply:
    if loan is None:
        return Reply.end(UNKNOWN.format(code=code))
    allowed = lenders(ctx.db, loan.asset)
    if ctx.person_id not in {p.id for p in allowed} and not ctx.has_role("admin"):
        return Reply.end(NOT_YOURS.format(code=code, names="、".join(p.name for p in allowed) or "管理员"))
    if loan.status != LOAN_PENDING:
        return Reply.end(ANSWERED.format(code=code, state=_loan_state(loan.status)))
    what = quantity_label(loan.asset, loan.quantity)
    assert ctx.person is not None
    if yes:
        left = loan.asset.quantity - held(ctx.db, loan.asset) + loan.quantity
        if loan.quantity > left:
            return Reply.end(LOAN_GONE.format(what=loan.asset.label, left=left, code=code))
        hand_out(ctx, loan, ctx.person)
        from handlers.assets.common import due_label

        notice = ctx.outbox.notify(loan.borrower, "loan_decided", TELL_APPROVED.format(
            kind="借用申请", code=code, what=what, by=ctx.person.name, tail=LOAN_TAIL.format(due=due_label(loan.due_on))),
            fields={"code": code, "item": what, "person": ctx.person.name})
        return Reply.end(APPROVED_REPLY.format(code=code, what=what, who=loan.borrower.name, told=told(notice)))
    loan.status, loan.approver = LOAN_DECLINED, ctx.person
    notice = ctx.outbox.notify(loan.borrower, "loan_decided", TELL_DECLINED.format(
        kind="借用申请", code=code, what=what, by=ctx.person.name, reason=_because(reason)),
        fields={"code": code, "item": what, "person": ctx.person.name})
    return Reply.end(DECLINED_REPLY.format(code=code, what=what, who=loan.borrower.name, reason=_because(reason),
                                           told=told(notice)))


def _loan_state(status: str) -> str:
    from models.assets.loans import LOAN_STATUS_NAMES

    return LOAN_STATUS_NAMES.get(status, status)


def _supply(ctx: Context, move: SupplyMove | None, code: str, yes: bool, reason: str) -> Reply:
    if move is None or move.kind != "out":
        return Reply.end(UNKNOWN.format(code=code))
    allowed = keepers_of(ctx.db, move.supply)
    if ctx.person_id not in {p.id for p in allowed} and not ctx.has_role("admin"):
        return Reply.end(NOT_YOURS.format(code=code, names="、".join(p.name for p in allowed)))
    if move.status != SUPPLY_PENDING:
        return Reply.end(ANSWERED.format(code=code, state="已驳回" if move.status == SUPPLY_DECLINED else "已领用"))
    supply = move.supply
    what = f"{supply.name} {move.quantity}{supply.unit}"
    assert ctx.person is not None and move.person is not None
    move.approver = ctx.person
    if yes:
        if move.quantity > supply.stock:
            return Reply.end(STOCK_GONE.format(name=supply.name, stock=supply.stock, unit=supply.unit, code=code))
        deduct(ctx, move)
        notice = ctx.outbox.notify(move.person, "supply_decided", TELL_APPROVED.format(
            kind="领用申请", code=code, what=what, by=ctx.person.name, tail=""),
            fields={"code": code, "item": what, "person": ctx.person.name})
        return Reply.end(APPROVED_REPLY.format(code=code, what=what, who=move.person.name, told=told(notice)))
    move.status = SUPPLY_DECLINED
    notice = ctx.outbox.notify(move.person, "supply_decided", TELL_DECLINED.format(
        kind="领用申请", code=code, what=what, by=ctx.person.name, reason=_because(reason)),
        fields={"code": code, "item": what, "person": ctx.person.name})
    return Reply.end(DECLINED_REPLY.format(code=code, what=what, who=move.person.name, reason=_because(reason),
                                           told=told(notice)))


def _disposal(ctx: Context, disposal: Disposal | None, code: str, yes: bool, reason: str) -> Reply:
    if disposal is None:
        return Reply.end(UNKNOWN.format(code=code))
    if not ctx.has_role("admin"):
        return Reply.end(NOT_YOURS.format(code=code, names="管理员"))
    if disposal.status != PENDING:
        return Reply.end(ANSWERED.format(code=code, state=REQUEST_NAMES.get(disposal.status, disposal.status)))
    assert ctx.person is not None
    disposal.status = APPROVED if yes else DECLINED
    disposal.decided_by, disposal.decided_at = ctx.person, ctx.now
    what, asker = disposal.asset.label, disposal.asked_by
    if yes:
        disposal_module.carry_out(ctx, disposal)
        notice = ctx.outbox.notify(asker, "disposal_decided", TELL_APPROVED.format(
            kind="报废申请", code=code, what=what, by=ctx.person.name, tail="已从在用资产中移出。"),
            fields={"code": code, "item": what, "person": ctx.person.name})
        return Reply.end(APPROVED_REPLY.format(code=code, what=what, who=asker.name if asker else "", told=told(notice)))
    notice = ctx.outbox.notify(asker, "disposal_decided", TELL_DECLINED.format(
        kind="报废申请", code=code, what=what, by=ctx.person.name, reason=_because(reason)),
        fields={"code": code, "item": what, "person": ctx.person.name})
    return Reply.end(DECLINED_REPLY.format(code=code, what=what, who=asker.name if asker else "",
                                           reason=_because(reason), told=told(notice)))
