"""Disposal (报废): 报废 <编号> <原因> by staff or the thing's custodian (or its room's responsible person)
asks admin, with the thing's history attached; 批准 BF<n> takes it out of the active register (it stays
in the ledger, 已报废), 驳回 BF<n> leaves it as it was (handlers/assets/approvals.py)."""

from __future__ import annotations

from sqlalchemy import select

from bot.engine import Context, Conversation, Incoming, Reply
from bot.numbering import allocate_number
from bot.outbox import told
from bot.places import find_asset
from bot.school import admins
from handlers.assets.common import ASSET_ROLES, TOPIC, WORK_ROLES, keepers, out_loans, record
from handlers.assets.register import asset_history_text
from models import Disposal
from models.assets.register import DISPOSED_EVENT, PENDING
from models.repair import DISPOSED

HELP = "报废 编号 原因 — 申请报废（管理员批准）"
USAGE = "请按格式发送：报废 编号 原因，例如：报废 DJ-0302 灯泡老化无法维修"
UNKNOWN_CODE = "没有编号为「{code}」的资产。"
NO_REASON = "请写明报废原因，例如：报废 {code} 主板损坏无法维修"
NOT_KEEPER = "只有后勤、管理员或 {label} 的保管人可以申请报废。"
ALREADY_DISPOSED = "{label} 已报废。"
ALREADY_ASKED = "{label} 已有报废申请 {code}，等待管理员批准。"
ON_LOAN = "{label} 还在借用中（{who}），请归还后再申请报废。"
ASKED = "已申请报废 {code}：{label}，原因：{reason}。{told}"
ASK_ADMIN = ("【报废申请】{who}申请报废 {label}（{code}），原因：{reason}。\n{history}\n"
             "同意请回复「批准 {code}」，不同意请回复「驳回 {code} 理由」。")

dispose = Conversation("asset_dispose", title="报废", keywords=["报废"], roles=ASSET_ROLES, help=HELP, topic=TOPIC,
                       slips=False)


@dispose.entry
def ask(msg: Incoming, ctx: Context) -> Reply:
    if not msg.args:
        return Reply.end(USAGE)
    asset = find_asset(ctx.db, msg.args[0])
    if asset is None:
        return Reply.end(UNKNOWN_CODE.format(code=msg.kept_args[0]))
    person = ctx.person
    assert person is not None
    if not ctx.has_role(*WORK_ROLES) and person.id not in {p.id for p in keepers(ctx.db, asset)}:
        return Reply.end(NOT_KEEPER.format(label=asset.label))
    if len(msg.args) < 2:
        return Reply.end(NO_REASON.format(code=asset.code))
    if asset.status == DISPOSED:
        return Reply.end(ALREADY_DISPOSED.format(label=asset.label))
    waiting = ctx.db.scalar(select(Disposal).where(Disposal.asset_id == asset.id, Disposal.status == PENDING))
    if waiting is not None:
        return Reply.end(ALREADY_ASKED.format(label=asset.label, code=waiting.code))
    loans = out_loans(ctx.db, asset)
    if loans:
        return Reply.end(ON_LOAN.format(label=asset.label, who="、".join(loan.borrower.name for loan in loans)))
    reason = " ".join(msg.kept_args[1:])
    disposal = Disposal(number=allocate_number(ctx.db, Disposal.number), asset=asset, reason=reason,
                        asked_by=person, asked_at=ctx.now)
    ctx.db.add(disposal)
    ctx.db.flush()
    notice = ctx.outbox.notify(admins(ctx.db), "disposal_request", ASK_ADMIN.format(
        who=person.name, label=asset.label, code=disposal.code, reason=reason,
        history=asset_history_text(ctx.db, asset, ctx.settings.tz)),
        fields={"code": disposal.code, "item": asset.label, "person": person.name})
    return Reply.end(ASKED.format(code=disposal.code, label=asset.label, reason=reason, told=told(notice)))


def carry_out(ctx: Context, disposal: Disposal) -> None:
    """Approved: the thing leaves the active register and keeps its history."""
    asset = disposal.asset
    asset.status, asset.disposed_at = DISPOSED, ctx.now
    record(ctx.db, asset, DISPOSED_EVENT, ctx.now, ctx.person, f"{disposal.code} {disposal.reason}")
