"""The ledgers of things, as XLSX sheets for a month or a term: 资产台账, 借用登记, 钥匙登记, 盘点报告 and
物品领用台账 (`houqin export assets|loans|keys|stocktake|supplies`), each laid out by bot/ledgers.py."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, tzinfo
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.export import Period, Sheet
from bot.text import day_bounds, local_naive
from handlers.assets.common import status_name
from handlers.assets.stocktake import result
from models import Asset, AssetEvent, AssetLoan, AssetPhoto, Disposal, Stocktake, Supply, SupplyMove
from models.assets.loans import LOAN_STATUS_NAMES, OUT
from models.assets.register import EVENT_NAMES, REQUEST_NAMES
from models.assets.supplies import DECLINED, DONE, ISSUE, PENDING, STOCK_IN
from models.media import PHOTO_SAVED
from models.repair import KEY

KIND_NAMES = {KEY: "钥匙", "thing": "资产"}
MOVE_NAMES = {STOCK_IN: "入库", ISSUE: "领用"}
MOVE_STATUS = {DONE: "已完成", PENDING: "待批准", DECLINED: "已驳回"}
REGISTER_HEADER = ["资产编号", "名称", "类型", "类别", "楼栋", "房间", "保管人", "购置日期", "价格(元)", "数量", "状态",
                   "可借", "需审批", "报废时间", "照片"]
EVENTS_HEADER = ["时间", "资产编号", "名称", "事项", "说明", "经办人"]
DISPOSAL_HEADER = ["报废单", "资产编号", "名称", "原因", "申请人", "申请时间", "状态", "审批人", "审批时间"]
LOANS_HEADER = ["借用单", "资产编号", "物品", "数量", "借用人", "申请时间", "借出时间", "应还日期", "归还时间", "状态",
                "批准人", "逾期天数"]
KEYS_HEADER = ["借用单", "房间", "钥匙", "钥匙编号", "第几把", "领取人", "领取时间", "应还日期", "归还时间", "状态",
               "逾期天数"]
KEY_LIST_HEADER = ["钥匙编号", "房间", "钥匙", "把数", "在外", "持有人"]
STOCKTAKE_HEADER = ["盘点", "范围", "开始", "结束", "应盘", "盘到", "缺失", "位置变动", "未登记", "发起人"]
DISCREPANCY_HEADER = ["盘点", "结果", "资产编号", "名称", "登记房间", "盘点房间", "盘点人", "时间", "照片"]
CHECKS_HEADER = ["盘点", "时间", "盘点人", "房间", "资产编号", "名称"]
MOVES_HEADER = ["单号", "时间", "物品", "类型", "数量", "单位", "经手人", "部门", "用途", "状态", "批准人", "结存"]
BY_ITEM_HEADER = ["物品", "单位", "本期入库", "本期领用", "现库存", "补货线"]
BY_DEPARTMENT_HEADER = ["部门", "物品", "领用数量", "单位"]
FOUND, MISSING, MOVED, UNREGISTERED = "盘到", "缺失", "位置变动", "未登记"


Covered = Period  # the days a ledger covers, `first <= day < after` (bot.export.Period)


def bounds(period: Covered, tz: tzinfo) -> tuple[datetime, datetime]:
    return day_bounds(period.first, tz)[0], day_bounds(period.after, tz)[0]


def _yes(flag: bool) -> str:
    return "是" if flag else "否"


def _name(person: object) -> str:
    return getattr(person, "name", "") if person is not None else ""


def _late(due: date | None, back: datetime | None, today: date, tz: tzinfo) -> int | None:
    if due is None:
        return None
    end = back.astimezone(tz).date() if back is not None else today
    return max((end - due).days, 0) or None


def register_sheets(db: Session, period: Covered, tz: tzinfo) -> list[Sheet]:
    """资产台账: every thing (the disposed ones too), what happened to them in the period, and the disposals."""
    start, end = bounds(period, tz)
    assets = list(db.scalars(select(Asset).order_by(Asset.kind, Asset.code)))
    photos: dict[int, str] = {}
    for photo in db.scalars(select(AssetPhoto).where(AssetPhoto.status == PHOTO_SAVED).order_by(AssetPhoto.id)):
        photos[photo.asset_id] = photo.path  # the latest saved
    rows = [[a.code, a.name, KIND_NAMES.get(a.kind, a.kind), a.category, a.room.building if a.room else "",
             a.room.name if a.room else "", _name(a.custodian), a.purchased_on, float(a.price) if a.price is not None
             else None, a.quantity, status_name(db, a), _yes(a.lendable), _yes(a.needs_approval),
             local_naive(a.disposed_at, tz), photos.get(a.id, a.photo)] for a in assets]
    events = [[local_naive(e.at, tz), e.asset.code, e.asset.name, EVENT_NAMES.get(e.kind, e.kind), e.note,
               _name(e.person)]
              for e in db.scalars(select(AssetEvent).where(AssetEvent.at >= start, AssetEvent.at < end)
                                  .order_by(AssetEvent.at, AssetEvent.id))]
    disposals = [[d.code, d.asset.code, d.asset.name, d.reason, _name(d.asked_by), local_naive(d.asked_at, tz),
                  REQUEST_NAMES.get(d.status, d.status), _name(d.decided_by), local_naive(d.decided_at, tz)]
                 for d in db.scalars(select(Disposal).where(Disposal.asked_at >= start, Disposal.asked_at < end)
                                     .order_by(Disposal.number))]
    return [Sheet("资产台账", REGISTER_HEADER, rows), Sheet("资产变动", EVENTS_HEADER, events),
            Sheet("报废记录", DISPOSAL_HEADER, disposals)]


def _loans(db: Session, period: Covered, tz: tzinfo, keys: bool) -> list[AssetLoan]:
    """Loans asked in the period, and older ones still out (a loan never drops out of the ledger unreturned)."""
    start, end = bounds(period, tz)
    every = db.scalars(select(AssetLoan).join(Asset, AssetLoan.asset_id == Asset.id)
                       .where((Asset.kind == KEY) if keys else (Asset.kind != KEY), AssetLoan.asked_at < end)
                       .order_by(AssetLoan.number))
    return [loan for loan in every if loan.asked_at >= start or loan.status == OUT]


def loan_sheets(db: Session, period: Covered, tz: tzinfo, today: date) -> list[Sheet]:
    rows = [[loan.code, loan.asset.code, loan.asset.name, loan.quantity, loan.borrower.name,
             local_naive(loan.asked_at, tz), local_naive(loan.lent_at, tz), loan.due_on,
             local_naive(loan.returned_at, tz), LOAN_STATUS_NAMES.get(loan.status, loan.status), _name(loan.approver),
             _late(loan.due_on, loan.returned_at, today, tz) if loan.lent_at else None]
            for loan in _loans(db, period, tz, keys=False)]
    return [Sheet("借用登记", LOANS_HEADER, rows)]


def key_sheets(db: Session, period: Covered, tz: tzinfo, today: date) -> list[Sheet]:
    rows = [[loan.code, loan.asset.room.name if loan.asset.room else "", loan.asset.name, loan.asset.code,
             loan.copy_no, loan.borrower.name, local_naive(loan.lent_at or loan.asked_at, tz), loan.due_on,
             local_naive(loan.returned_at, tz), LOAN_STATUS_NAMES.get(loan.status, loan.status),
             _late(loan.due_on, loan.returned_at, today, tz)]
            for loan in _loans(db, period, tz, keys=True)]
    keys = list(db.scalars(select(Asset).where(Asset.kind == KEY).order_by(Asset.code)))
    out: dict[int, list[AssetLoan]] = defaultdict(list)
    for loan in db.scalars(select(AssetLoan).where(AssetLoan.status == OUT).order_by(AssetLoan.copy_no)):
        out[loan.asset_id].append(loan)
    listing = [[k.code, k.room.name if k.room else "", k.name, k.quantity, len(out[k.id]),
                "、".join(f"第{loan.copy_no}把 {loan.borrower.name}" for loan in out[k.id])] for k in keys]
    return [Sheet("钥匙登记", KEYS_HEADER, rows), Sheet("钥匙清单", KEY_LIST_HEADER, listing)]


def stocktake_sheets(db: Session, period: Covered, tz: tzinfo) -> list[Sheet]:
    """盘点报告: each stocktake of the period, every discrepancy, and who checked what."""
    start, end = bounds(period, tz)
    takes = list(db.scalars(select(Stocktake).where(Stocktake.started_at >= start, Stocktake.started_at < end)
                            .order_by(Stocktake.id)))
    summary: list[list[Any]] = []
    discrepancies: list[list[Any]] = []
    checks: list[list[Any]] = []
    for take in takes:
        r = result(db, take)
        name = f"第{take.id}次"
        summary.append([name, take.scope_name, local_naive(take.started_at, tz), local_naive(take.ended_at, tz),
                        len(r.expected), len(r.found) + len(r.moved), len(r.missing), len(r.moved),
                        len(r.unregistered), _name(take.started_by)])
        discrepancies += [[name, MISSING, a.code, a.name, a.room.name if a.room else "", "", "", None, ""]
                          for a in r.missing]
        discrepancies += [[name, kind, c.asset.code if c.asset else c.code, c.asset.name if c.asset else "",
                           c.asset.room.name if c.asset and c.asset.room else "", c.room.name if c.room else "",
                           _name(c.person), local_naive(c.at, tz), c.photo_media_id]
                          for kind, found in ((MOVED, r.moved), (UNREGISTERED, r.unregistered)) for c in found]
        checks += [[name, local_naive(c.at, tz), _name(c.person), c.room.name if c.room else "", c.code,
                    c.asset.name if c.asset else ("（到达房间）" if not c.code else UNREGISTERED)]
                   for c in take.checks]
    return [Sheet("盘点报告", STOCKTAKE_HEADER, summary), Sheet("差异明细", DISCREPANCY_HEADER,
                                                                            discrepancies),
            Sheet("盘点记录", CHECKS_HEADER, checks)]


def supply_sheets(db: Session, period: Covered, tz: tzinfo) -> list[Sheet]:
    """物品领用台账: every movement of the period, and the consumption per item and per department."""
    start, end = bounds(period, tz)
    moves = list(db.scalars(select(SupplyMove).where(SupplyMove.at >= start, SupplyMove.at < end)
                            .order_by(SupplyMove.at, SupplyMove.id)))
    rows = [[m.code, local_naive(m.at, tz), m.supply.name, MOVE_NAMES.get(m.kind, m.kind), m.quantity, m.supply.unit,
             _name(m.person), m.department, m.purpose, MOVE_STATUS.get(m.status, m.status), _name(m.approver),
             m.stock_after] for m in moves]
    done = [m for m in moves if m.status == DONE]
    by_item = []
    for supply in db.scalars(select(Supply).order_by(Supply.name)):
        mine = [m for m in done if m.supply_id == supply.id]
        by_item.append([supply.name, supply.unit, sum(m.quantity for m in mine if m.kind == STOCK_IN),
                        sum(m.quantity for m in mine if m.kind == ISSUE), supply.stock, supply.reorder_level])
    per_department: dict[tuple[str, str, str], int] = defaultdict(int)
    for m in done:
        if m.kind == ISSUE:
            per_department[(m.department or "未填写", m.supply.name, m.supply.unit)] += m.quantity
    by_department = [[dept, item, count, unit] for (dept, item, unit), count in sorted(per_department.items())]
    return [Sheet("物品领用台账", MOVES_HEADER, rows), Sheet("按物品汇总", BY_ITEM_HEADER, by_item),
            Sheet("按部门汇总", BY_DEPARTMENT_HEADER, by_department)]
