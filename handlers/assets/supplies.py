"""Consumables (日常用品的入库、领用、盘库): 入库 <物品> <数量> (staff), 领用 <物品> <数量> [用途] (teachers
and staff; an item marked for approval waits for 批准 L<n> from its keeper), 库存 [物品]. An issue that
takes the stock under the item's reorder level alerts its keeper (else the staff of 后勤, else admin)
once. `houqin supplies import` registers items; the 物品领用台账 sums a month per item and department."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.engine import Context, Conversation, Incoming, Reply
from bot.numbering import allocate_number
from bot.outbox import told
from bot.people import AmbiguousName, PersonNotFound, resolve_person
from bot.school import admins, people_with_role
from bot.tables import TableError, read_table
from bot.text import normalize
from handlers.assets.common import ASSET_ROLES, TOPIC, WORK_ROLES, read_request
from models import Person, Supply, SupplyMove
from models.assets.supplies import DONE, ISSUE, PENDING, STOCK_IN
from models.identity import ROLE_NAMES

HELP_IN = "入库 物品 数量 — 日常用品入库"
HELP_ISSUE = "领用 物品 数量 [用途] — 领用日常用品"
HELP_STOCK = "库存 [物品] — 日常用品的库存"
USAGE_IN = "请按格式发送：入库 物品 数量，例如：入库 A4纸 20"
USAGE_ISSUE = "请按格式发送：领用 物品 数量 [用途]，例如：领用 A4纸 2 期末试卷"
NO_QUANTITY = "请写明数量，例如：{command} {name} 2"
UNKNOWN_SUPPLY = "没有登记「{name}」这种物品。{known}"
KNOWN = "现有：{names}。"
NEW_SUPPLY = "（新登记的物品）"
STOCKED = "已入库 {name} {quantity}{unit}{new}，现库存 {stock}{unit}。"
NOT_ENOUGH = "{name} 库存只有 {stock}{unit}，不够领用 {quantity}{unit}。"
ISSUED = "已领用 {code}：{name} {quantity}{unit}{purpose}，现库存 {stock}{unit}。"
ASKED = "已申请领用 {code}：{name} {quantity}{unit}{purpose}，需{keepers}批准。{told}"
ASK_KEEPER = "【领用申请】{who}申请领用 {name} {quantity}{unit}{purpose}（{code}）。同意请回复「批准 {code}」，不同意请回复「驳回 {code} 理由」。"
LOW_STOCK = "【库存不足】{name} 现库存 {stock}{unit}，低于补货线 {level}{unit}，请及时补货。"
STOCK_HEADER = "日常用品库存："
STOCK_LINE = "{name} {stock}{unit}{low}"
LOW_MARK = "（低于补货线 {level}）"
NO_SUPPLIES = "还没有登记日常用品。后勤可发送「入库 物品 数量」，或由管理员导入物品表。"

stock_in = Conversation("supply_in", title="入库", keywords=["入库"], roles=WORK_ROLES, help=HELP_IN, topic=TOPIC,
                        slips=False)
issue = Conversation("supply_issue", title="领用", keywords=["领用"], roles=ASSET_ROLES, help=HELP_ISSUE,
                     topic=TOPIC, slips=False)
stock = Conversation("supply_stock", title="库存", keywords=["库存"], roles=ASSET_ROLES, help=HELP_STOCK, topic=TOPIC,
                     slips=False)


def find_supply(db: Session, name: str) -> Supply | None:
    folded = normalize(name).replace(" ", "").lower()
    every = list(db.scalars(select(Supply).order_by(Supply.id)))
    return next((s for s in every if normalize(s.name).replace(" ", "").lower() == folded), None)


def keepers_of(db: Session, supply: Supply) -> list[Person]:
    if supply.keeper is not None:
        return [supply.keeper]
    return people_with_role(db, "staff") or admins(db)


def department(person: Person) -> str:
    """What the month's consumption is summed by: the class or office written for the person, else their role."""
    if person.class_name:
        return person.class_name
    roles = [ROLE_NAMES.get(r, r) for r in sorted(person.role_set) if r in ROLE_NAMES]
    return roles[0] if roles else ""


def _known(db: Session) -> str:
    names = list(db.scalars(select(Supply.name).order_by(Supply.name).limit(12)))
    return KNOWN.format(names="、".join(names)) if names else ""


@stock_in.entry
def receive(msg: Incoming, ctx: Context) -> Reply:
    request = read_request(msg.kept_args, ctx.local_now.date(), with_rest=True)
    if not request.name:
        return Reply.end(USAGE_IN)
    if request.error:
        return Reply.end(request.error)
    if request.quantity is None:
        return Reply.end(NO_QUANTITY.format(command="入库", name=request.name))
    supply = find_supply(ctx.db, request.name)
    new = supply is None
    if supply is None:
        supply = Supply(name=request.name, stock=0, unit="", reorder_level=0)
        ctx.db.add(supply)
    supply.stock += request.quantity
    person = ctx.person
    ctx.db.add(SupplyMove(number=allocate_number(ctx.db, SupplyMove.number), supply=supply, kind=STOCK_IN,
                          quantity=request.quantity, status=DONE, person=person, purpose=request.rest,
                          department=department(person) if person else "", at=ctx.now, stock_after=supply.stock))
    return Reply.end(STOCKED.format(name=supply.name, quantity=request.quantity, unit=supply.unit,
                                    new=NEW_SUPPLY if new else "", stock=supply.stock))


@issue.entry
def take(msg: Incoming, ctx: Context) -> Reply:
    request = read_request(msg.kept_args, ctx.local_now.date(), with_rest=True)
    if not request.name:
        return Reply.end(USAGE_ISSUE)
    if request.error:
        return Reply.end(request.error)
    supply = find_supply(ctx.db, request.name)
    if supply is None:
        return Reply.end(UNKNOWN_SUPPLY.format(name=request.name, known=_known(ctx.db)))
    if request.quantity is None:
        return Reply.end(NO_QUANTITY.format(command="领用", name=supply.name))
    if request.quantity > supply.stock:
        return Reply.end(NOT_ENOUGH.format(name=supply.name, stock=supply.stock, unit=supply.unit,
                                           quantity=request.quantity))
    person = ctx.person
    assert person is not None
    move = SupplyMove(number=allocate_number(ctx.db, SupplyMove.number), supply=supply, kind=ISSUE,
                      quantity=request.quantity, person=person, department=department(person),
                      purpose=request.rest, at=ctx.now)
    ctx.db.add(move)
    purpose = f"（{request.rest}）" if request.rest else ""
    if supply.needs_approval and not ctx.has_role(*WORK_ROLES):
        move.status = PENDING
        ctx.db.flush()
        keepers = keepers_of(ctx.db, supply)
        notice = ctx.outbox.notify(keepers, "supply_request", ASK_KEEPER.format(
            who=person.name, name=supply.name, quantity=move.quantity, unit=supply.unit, purpose=purpose,
            code=move.code), fields={"code": move.code, "item": supply.name, "person": person.name})
        return Reply.end(ASKED.format(code=move.code, name=supply.name, quantity=move.quantity, unit=supply.unit,
                                      purpose=purpose, keepers="、".join(p.name for p in keepers), told=told(notice)))
    ctx.db.flush()
    deduct(ctx, move)
    return Reply.end(ISSUED.format(code=move.code, name=supply.name, quantity=move.quantity, unit=supply.unit,
                                   purpose=purpose, stock=supply.stock))


def deduct(ctx: Context, move: SupplyMove) -> None:
    """Take an issue from the stock; crossing the reorder level alerts the keepers once."""
    supply = move.supply
    before = supply.stock
    supply.stock -= move.quantity
    move.status, move.stock_after = DONE, supply.stock
    if supply.reorder_level and supply.stock < supply.reorder_level <= before:
        ctx.outbox.notify(keepers_of(ctx.db, supply), "supply_low", LOW_STOCK.format(
            name=supply.name, stock=supply.stock, unit=supply.unit, level=supply.reorder_level),
            fields={"item": supply.name, "count": str(supply.stock)})


@stock.entry
def show(msg: Incoming, ctx: Context) -> Reply:
    if msg.args:
        supply = find_supply(ctx.db, " ".join(msg.args))
        if supply is None:
            return Reply.end(UNKNOWN_SUPPLY.format(name=" ".join(msg.kept_args), known=_known(ctx.db)))
        supplies = [supply]
    else:
        supplies = list(ctx.db.scalars(select(Supply).order_by(Supply.name)))
        if not supplies:
            return Reply.end(NO_SUPPLIES)
    lines = [] if msg.args else [STOCK_HEADER]
    lines += [STOCK_LINE.format(name=s.name, stock=s.stock, unit=s.unit,
                                low=LOW_MARK.format(level=s.reorder_level) if s.stock < s.reorder_level else "")
              for s in supplies]
    return Reply.end("\n".join(lines))


SUPPLY_COLUMNS = {"name": ("物品", "名称", "品名"), "unit": ("单位",), "stock": ("库存", "数量", "现有"),
                  "reorder": ("补货线", "最低库存", "警戒线"), "approval": ("需审批", "审批"),
                  "keeper": ("负责人", "保管人")}


def import_supplies(db: Session, path: str | Path) -> int:
    """Supplies by name, all or nothing with row-numbered problems: unit, stock, reorder level, approval, keeper."""
    from handlers.assets.register import _flag

    rows = read_table(path, SUPPLY_COLUMNS, required=("name",))
    problems: list[str] = []
    parsed = []
    for row in rows:
        name = row.get("name")
        if not name:
            problems.append(f"第{row.number}行：物品名称为空")
            continue
        numbers = {}
        for key, label in (("stock", "库存"), ("reorder", "补货线")):
            value = row.get(key) or "0"
            if not value.isdigit():
                problems.append(f"第{row.number}行：{label}「{value}」应为不小于0的整数")
            numbers[key] = int(value) if value.isdigit() else 0
        approval = _flag(row.get("approval"))
        if approval is None:
            problems.append(f"第{row.number}行：需审批「{row.get('approval')}」应为 是 或 否")
        keeper = None
        if row.get("keeper"):
            try:
                keeper = resolve_person(db, row.get("keeper"))
            except (PersonNotFound, AmbiguousName) as exc:
                problems.append(f"第{row.number}行：负责人「{row.get('keeper')}」：{exc.message}")
        parsed.append((name, row.get("unit"), numbers["stock"], numbers["reorder"], bool(approval), keeper))
    if problems:
        raise TableError(problems)
    for name, unit, count, reorder, approval, keeper in parsed:
        supply = find_supply(db, name)
        if supply is None:
            supply = Supply(name=name)
            db.add(supply)
        supply.unit, supply.stock, supply.reorder_level, supply.needs_approval, supply.keeper = (
            unit, count, reorder, approval, keeper)
    db.flush()
    return len(parsed)
