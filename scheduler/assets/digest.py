"""The daily digest's 资产 section: loans past their due day, keys out past theirs, supplies under their
reorder level, and the requests (借用 J, 领用 L, 报废 BF) still waiting for an answer."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from models import Asset, AssetLoan, Disposal, Supply, SupplyMove
from models.assets.loans import OUT
from models.assets.loans import PENDING as LOAN_PENDING
from models.assets.register import PENDING as DISPOSAL_PENDING
from models.assets.supplies import ISSUE
from models.assets.supplies import PENDING as SUPPLY_PENDING
from models.repair import KEY
from scheduler import JobContext

OVERDUE_LINE = "逾期未还 {n} 项：{items}"
OVERDUE_ITEM = "{code} {who} {what}（逾期{days}天）"
KEYS_LINE = "钥匙逾期未还 {n} 把：{items}"
KEY_ITEM = "{room}{name} 第{copy}把 {who}（逾期{days}天）"
LOW_LINE = "库存不足 {n} 种：{items}"
LOW_ITEM = "{name} {stock}{unit}（补货线 {level}）"
PENDING_LINE = "待审批 {n} 项：{items}（回复「批准 编号」或在控制台「资产」处理）"
SHOWN = 5
MORE = " 等"


def _listed(items: list[str]) -> str:
    return "、".join(items[:SHOWN]) + (MORE if len(items) > SHOWN else "")


def digest_section(ctx: JobContext, day: date) -> str | None:
    lines: list[str] = []
    late = list(ctx.db.scalars(select(AssetLoan).join(Asset, AssetLoan.asset_id == Asset.id)
                               .where(AssetLoan.status == OUT, AssetLoan.due_on < day)
                               .order_by(AssetLoan.due_on, AssetLoan.number)))
    things = [loan for loan in late if loan.asset.kind != KEY]
    keys = [loan for loan in late if loan.asset.kind == KEY]
    if things:
        lines.append(OVERDUE_LINE.format(n=len(things), items=_listed([OVERDUE_ITEM.format(
            code=loan.code, who=loan.borrower.name, what=loan.asset.label if loan.quantity == 1 else
            f"{loan.asset.name} ×{loan.quantity}", days=(day - loan.due_on).days) for loan in things if loan.due_on])))
    if keys:
        lines.append(KEYS_LINE.format(n=len(keys), items=_listed([KEY_ITEM.format(
            room=f"{loan.asset.room.name} " if loan.asset.room else "", name=loan.asset.name, copy=loan.copy_no or 1,
            who=loan.borrower.name, days=(day - loan.due_on).days) for loan in keys if loan.due_on])))
    low = list(ctx.db.scalars(select(Supply).where(Supply.reorder_level > 0, Supply.stock < Supply.reorder_level)
                              .order_by(Supply.name)))
    if low:
        lines.append(LOW_LINE.format(n=len(low), items=_listed([LOW_ITEM.format(
            name=s.name, stock=s.stock, unit=s.unit, level=s.reorder_level) for s in low])))
    waiting = [loan.code for loan in ctx.db.scalars(select(AssetLoan).where(AssetLoan.status == LOAN_PENDING)
                                                    .order_by(AssetLoan.number))]
    waiting += [m.code for m in ctx.db.scalars(select(SupplyMove).where(SupplyMove.status == SUPPLY_PENDING,
                                                                         SupplyMove.kind == ISSUE)
                                               .order_by(SupplyMove.number))]
    waiting += [d.code for d in ctx.db.scalars(select(Disposal).where(Disposal.status == DISPOSAL_PENDING)
                                               .order_by(Disposal.number))]
    if waiting:
        lines.append(PENDING_LINE.format(n=len(waiting), items=_listed(waiting)))
    return "\n".join(lines) or None
