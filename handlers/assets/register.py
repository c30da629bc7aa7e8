"""The register (一物一档): `houqin assets import` with the register's columns (old files with 编号 名称
类别 房间 still import), 本室资产 for a room's custodian (属地管理: 由各室责任人负责，做到物表一致), and
资产 <编号>: one thing's file with its history (repairs, loans, moves, stocktakes, disposal)."""

from __future__ import annotations

from datetime import datetime, tzinfo
from decimal import Decimal, InvalidOperation
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.engine import Context, Conversation, Incoming, Reply
from bot.people import AmbiguousName, PersonNotFound, resolve_person
from bot.places import find_asset, find_room
from bot.tables import TableError, read_table
from bot.text import normalize
from handlers.assets.common import ASSET_ROLES, TOPIC, WORK_ROLES, held, out_loans, status_name
from models import Asset, AssetEvent, AssetPhoto, Person, RepairTicket, Room, utcnow
from models.assets.register import EVENT_NAMES, MOVED, REGISTERED
from models.repair import ASSET_STATUS_NAMES, DISPOSED, IN_USE, KEY, STATUS_NAMES, THING

HELP_ROOM = "本室资产 [房间] — 你保管的房间里登记的资产"
HELP_FILE = "资产 编号 — 一件资产的档案和经历（维修、借用、调动、盘点、报废）"
NOT_CUSTODIAN = "你不是任何房间的负责人，也没有保管的资产。可发送「本室资产 房间」查看某个房间。"
UNKNOWN_ROOM = "房间「{name}」不在登记表中。"
NOT_YOUR_ROOM = "{room} 的负责人是{keeper}，只有负责人、后勤和管理员可以查看本室资产。"
ROOM_EMPTY = "{room} 没有登记在用的资产。"
ROOM_HEADER = "{room} 的资产（{count} 件）："
ROOM_LINE = "{code} {name}{quantity} · {status}{extra}"
KEPT_HEADER = "你保管的其他资产："
USAGE_FILE = "请按格式发送：资产 编号，例如：资产 DJ-0302"
UNKNOWN_CODE = "没有编号为「{code}」的资产。"
FILE_LINES = ("{label}：{category} · {status}", "位置：{room}；保管人：{keeper}", "购置：{bought}；价格：{price}")
HISTORY = "经历："
NO_HISTORY = "（暂无记录）"

HELP_MOVE = "调动 编号 房间 — 资产换了地方（记入它的经历）"
USAGE_MOVE = "请按格式发送：调动 编号 房间，例如：调动 DJ-0302 四(1)班"
NOT_MOVER = "只有后勤、管理员或 {label} 的保管人可以登记调动。"
SAME_ROOM = "{label} 已登记在 {room}。"
MOVED_REPLY = "已登记调动：{label} {old} → {new}。"

ASK_PHOTO = "如需给它存档案照片，10分钟内直接发送照片即可。"
PHOTO_KEPT = "照片已存入 {label} 的档案。"
PHOTOS = "照片：{n} 张"


class FileStep:
    PHOTO = "photo"


room_assets = Conversation("room_assets", title="本室资产", keywords=["本室资产", "我的资产"], roles=ASSET_ROLES,
                           help=HELP_ROOM, topic=TOPIC, slips=False)
asset_file = Conversation("asset_file", title="资产档案", keywords=["资产"], roles=ASSET_ROLES, help=HELP_FILE,
                          topic=TOPIC, slips=False)


move = Conversation("asset_move", title="调动", keywords=["调动"], roles=ASSET_ROLES, help=HELP_MOVE, topic=TOPIC,
                    slips=False)


@move.entry
def move_asset(msg: Incoming, ctx: Context) -> Reply:
    if len(msg.args) < 2:
        return Reply.end(USAGE_MOVE)
    asset = find_asset(ctx.db, msg.args[0])
    if asset is None:
        return Reply.end(UNKNOWN_CODE.format(code=msg.kept_args[0]))
    room = find_room(ctx.db, " ".join(msg.args[1:]))
    if room is None:
        return Reply.end(UNKNOWN_ROOM.format(name=" ".join(msg.kept_args[1:])))
    person = ctx.person
    assert person is not None
    from handlers.assets.common import keepers

    if not ctx.has_role(*WORK_ROLES) and person.id not in {p.id for p in keepers(ctx.db, asset)}:
        return Reply.end(NOT_MOVER.format(label=asset.label))
    if asset.room_id == room.id:
        return Reply.end(SAME_ROOM.format(label=asset.label, room=room.name))
    old = asset.room.name if asset.room else "未指定"
    asset.room = room
    ctx.db.add(AssetEvent(asset=asset, kind=MOVED, at=ctx.now, person=person, note=f"{old} → {room.name}"))
    return Reply.end(MOVED_REPLY.format(label=asset.label, old=old, new=room.name))


def status_line(db: Session, asset: Asset) -> str:
    status = status_name(db, asset)
    if asset.quantity > 1:
        lent = held(db, asset)
        status = f"{status}，借出 {lent}" if lent else status
    else:
        loans = out_loans(db, asset)
        if loans:
            status += f"（{loans[0].borrower.name}）"
    return status


@room_assets.entry
def list_room(msg: Incoming, ctx: Context) -> Reply:
    person = ctx.person
    assert person is not None
    if msg.args:
        room = find_room(ctx.db, " ".join(msg.args))
        if room is None:
            return Reply.end(UNKNOWN_ROOM.format(name=" ".join(msg.kept_args)))
        if room.responsible_id != person.id and not ctx.has_role(*WORK_ROLES):
            keeper = room.responsible.name if room.responsible else "未指定"
            return Reply.end(NOT_YOUR_ROOM.format(room=room.name, keeper=keeper))
        rooms = [room]
    else:
        rooms = list(ctx.db.scalars(select(Room).where(Room.responsible_id == person.id).order_by(Room.id)))
    kept = list(ctx.db.scalars(select(Asset).where(Asset.custodian_id == person.id, Asset.status != DISPOSED)
                               .order_by(Asset.code)))
    if not rooms and not kept:
        return Reply.end(NOT_CUSTODIAN)
    lines: list[str] = []
    shown: set[int] = set()
    for room in rooms:
        things = list(ctx.db.scalars(select(Asset).where(Asset.room_id == room.id, Asset.status != DISPOSED)
                                     .order_by(Asset.kind.desc(), Asset.code)))
        if not things:
            lines.append(ROOM_EMPTY.format(room=room.name))
            continue
        lines.append(ROOM_HEADER.format(room=room.name, count=sum(a.quantity for a in things)))
        lines += [line(ctx.db, a) for a in things]
        shown |= {a.id for a in things}
    others = [a for a in kept if a.id not in shown]
    if others and not msg.args:
        lines.append(KEPT_HEADER)
        lines += [line(ctx.db, a) for a in others]
    return Reply.end("\n".join(lines))


def line(db: Session, asset: Asset) -> str:
    extra = f"（{asset.room.name}）" if asset.custodian_id and asset.room else ""
    return ROOM_LINE.format(code=asset.code, name=asset.name, quantity=f" ×{asset.quantity}" if asset.quantity > 1
                            else "", status=status_line(db, asset), extra=extra)


@asset_file.entry
def show_file(msg: Incoming, ctx: Context) -> Reply:
    if not msg.args:
        return Reply.end(USAGE_FILE)
    asset = find_asset(ctx.db, msg.args[0])
    if asset is None:
        return Reply.end(UNKNOWN_CODE.format(code=msg.kept_args[0]))
    text = asset_history_text(ctx.db, asset, ctx.settings.tz)
    from handlers.assets.common import keepers

    if ctx.has_role(*WORK_ROLES) or ctx.person_id in {p.id for p in keepers(ctx.db, asset)}:
        return Reply(f"{text}\n{ASK_PHOTO}", next=FileStep.PHOTO, data={"asset": asset.id})
    return Reply.end(text)


@asset_file.on(FileStep.PHOTO)
def got_photo(msg: Incoming, ctx: Context) -> Reply | None:
    """A photo sent after the file: kept as the thing's photo (downloaded by the media worker)."""
    asset = ctx.db.get(Asset, int(ctx.data["asset"]))
    if asset is None or msg.msg_type != "image" or not msg.media_id:
        return None  # anything else is a new message
    ctx.db.add(AssetPhoto(asset=asset, media_id=msg.media_id, next_attempt_at=ctx.now, created_at=ctx.now))
    return Reply.end(PHOTO_KEPT.format(label=asset.label))


def history(db: Session, asset: Asset, tz: tzinfo) -> list[tuple[datetime, str]]:
    """The thing's life in one list, oldest first: its events and its repairs."""
    rows = [(e.at, f"{EVENT_NAMES.get(e.kind, e.kind)} {e.note}".strip()
             + (f"（{e.person.name}）" if e.person and e.person.name not in e.note else ""))
            for e in db.scalars(select(AssetEvent).where(AssetEvent.asset_id == asset.id).order_by(AssetEvent.id))]
    rows += [(t.filed_at, f"报修 {t.code} {t.description}（{STATUS_NAMES.get(t.status, t.status)}）")
             for t in db.scalars(select(RepairTicket).where(RepairTicket.asset_id == asset.id))]
    return sorted(rows, key=lambda r: r[0])


def asset_history_text(db: Session, asset: Asset, tz: tzinfo) -> str:
    lines = [
        FILE_LINES[0].format(label=asset.label, category=asset.category, status=status_line(db, asset)),
        FILE_LINES[1].format(room=asset.room.name if asset.room else "未指定",
                             keeper=asset.custodian.name if asset.custodian else
                             (asset.room.responsible.name if asset.room and asset.room.responsible else "未指定")),
        FILE_LINES[2].format(bought=f"{asset.purchased_on:%Y-%m-%d}" if asset.purchased_on else "未登记",
                             price=f"{asset.price}元" if asset.price is not None else "未登记"),
    ]
    photos = int(db.scalar(select(func.count()).select_from(AssetPhoto).where(AssetPhoto.asset_id == asset.id)) or 0)
    if photos or asset.photo:
        lines.append(PHOTOS.format(n=photos + (1 if asset.photo else 0)))
    lines.append(HISTORY)
    events = history(db, asset, tz)
    lines += [f"{at.astimezone(tz):%Y-%m-%d} {what}" for at, what in events[-10:]] or [NO_HISTORY]
    return "\n".join(lines)


# -- the import ------------------------------------------------------------------------------------
ASSET_COLUMNS = {"code": ("编号", "资产编号"), "name": ("名称", "资产名称", "设备", "物品"), "category": ("类别",),
                 "room": ("房间", "地点", "位置", "存放地点"), "custodian": ("保管人", "责任人"),
                 "purchased": ("购置日期", "购买日期", "购入日期"), "price": ("价格", "单价", "金额"),
                 "status": ("状态",), "photo": ("照片",), "quantity": ("数量", "份数", "把数"),
                 "lendable": ("可借", "可借用", "外借"), "approval": ("需审批", "借用审批", "审批"),
                 "kind": ("类型", "种类")}
YES = {"是", "可", "可以", "需要", "需", "要", "y", "yes", "1", "true", "√", "✓"}
NO = {"", "否", "不", "不可", "不需要", "不需", "n", "no", "0", "false", "×"}
KIND_WORDS = {"钥匙": KEY, "key": KEY, "资产": THING, "设备": THING, "物品": THING, "thing": THING, "": THING}
STATUS_WORDS = {**{name: code for code, name in ASSET_STATUS_NAMES.items()}, "": IN_USE, "在库": IN_USE}


def _flag(value: str) -> bool | None:
    folded = normalize(value).lower()
    return True if folded in YES else False if folded in NO else None


def import_assets(db: Session, path: str | Path, now: datetime | None = None) -> int:
    """Assets by code, all or nothing, with row-numbered problems. The category must be one the repair
    map knows (empty: from the name), the room registered, the custodian in the people list."""
    from handlers.repair.rules import categorize, category_map

    rows = read_table(path, ASSET_COLUMNS, required=("code", "name"))
    known = [name for name, _ in category_map(db)]
    problems: list[str] = []
    parsed: list[dict[str, object]] = []
    seen: dict[str, int] = {}
    for row in rows:
        code, name = row.get("code").replace(" ", ""), row.get("name")
        if not code or not name:
            problems.append(f"第{row.number}行：编号或名称为空")
            continue
        if code.lower() in seen:
            problems.append(f"第{row.number}行：编号「{code}」与第{seen[code.lower()]}行重复")
        seen[code.lower()] = row.number
        values: dict[str, object] = {"code": code, "name": name}
        kind = KIND_WORDS.get(normalize(row.get("kind")).lower())
        if kind is None:
            problems.append(f"第{row.number}行：类型「{row.get('kind')}」应为 资产 或 钥匙")
        values["kind"] = kind or THING
        category = row.get("category") or categorize(db, name)
        if category not in known:
            problems.append(f"第{row.number}行：不认识的类别「{category}」（可用：{'、'.join(known)}）")
        values["category"] = category
        room = find_room(db, row.get("room")) if row.get("room") else None
        if row.get("room") and room is None:
            problems.append(f"第{row.number}行：房间「{row.get('room')}」不在房间登记表中（先导入房间）")
        values["room"] = room
        custodian: Person | None = None
        if row.get("custodian"):
            try:
                custodian = resolve_person(db, row.get("custodian"))
            except (PersonNotFound, AmbiguousName) as exc:
                problems.append(f"第{row.number}行：保管人「{row.get('custodian')}」：{exc.message}")
        values["custodian"] = custodian
        values["purchased_on"] = row.date("purchased") if row.get("purchased") else None
        if row.get("purchased") and values["purchased_on"] is None:
            problems.append(f"第{row.number}行：购置日期「{row.get('purchased')}」看不懂（如 2024-09-01）")
        values["price"] = None
        if row.get("price"):
            try:
                price = Decimal(normalize(row.get("price")).replace(",", "").removesuffix("元"))
                if price < 0 or not price.is_finite():
                    raise InvalidOperation
                values["price"] = price.quantize(Decimal("0.01"))
            except InvalidOperation:
                problems.append(f"第{row.number}行：价格「{row.get('price')}」不是金额")
        status = STATUS_WORDS.get(normalize(row.get("status")))
        if status is None:
            problems.append(f"第{row.number}行：状态「{row.get('status')}」应为 在用、借出、维修中 或 已报废")
        values["status"] = status or IN_USE
        quantity = row.get("quantity") or "1"
        if not quantity.isdigit() or int(quantity) < 1:
            problems.append(f"第{row.number}行：数量「{quantity}」应为正整数")
        values["quantity"] = int(quantity) if quantity.isdigit() and int(quantity) >= 1 else 1
        for key, column in (("lendable", "可借"), ("needs_approval", "需审批")):
            flag = _flag(row.get("lendable" if key == "lendable" else "approval"))
            if flag is None:
                problems.append(f"第{row.number}行：{column}「{row.get('lendable' if key == 'lendable' else 'approval')}」"
                                "应为 是 或 否")
            values[key] = bool(flag)
        values["photo"] = row.get("photo")
        parsed.append(values)
    if problems:
        raise TableError(problems)
    now = now or utcnow()
    for values in parsed:
        asset = find_asset(db, str(values["code"]))
        new = asset is None
        if asset is None:
            asset = Asset(code=str(values["code"]), name=str(values["name"]), category=str(values["category"]))
            db.add(asset)
        old_room = asset.room
        for key, value in values.items():
            if key == "photo" and not value:
                continue
            setattr(asset, key, value)
        if values["status"] == DISPOSED and asset.disposed_at is None:
            asset.disposed_at = now
        db.flush()
        if new:
            db.add(AssetEvent(asset=asset, kind=REGISTERED, at=now, note="导入登记"))
        elif old_room is not None and asset.room is not None and old_room.id != asset.room.id:
            db.add(AssetEvent(asset=asset, kind=MOVED, at=now, note=f"{old_room.name} → {asset.room.name}（导入）"))
    db.flush()
    return len(parsed)


