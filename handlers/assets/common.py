"""What the asset capabilities share: finding a thing by code or name, reading quantities and days,
who lends a thing, its history line."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.places import find_asset
from bot.school import admins, people_with_role
from bot.text import day_label, normalize, parse_day
from models import Asset, AssetEvent, AssetLoan, Person, RepairTicket
from models.assets.loans import HELD, OUT
from models.repair import ACTIVE, ASSET_STATUS_NAMES, DISPOSED, IN_REPAIR, IN_USE, KEY, ON_LOAN, THING

ASSET_ROLES = {"teacher", "staff", "admin"}
WORK_ROLES = {"staff", "admin"}
TOPIC = "资产"
UNITS = "个只件把台套本张支盒包箱瓶卷桶根副块"
QUANTITY_RE = re.compile(rf"^[x×X*]?(\d+)(?:[{UNITS}])?$")
GLUED_UNIT_RE = re.compile(rf"^(.*[^\d\s])(\d+)[{UNITS}]$")  # A4纸2包, 篮球3个
GLUED_QUANTITY_RE = re.compile(r"^(.+?)\s*(?:[×*]|(?<=[^\x00-\x7f])[xX])(\d+)$")  # 篮球×3; not YS-KX1
DECIMAL_RE = re.compile(r"^[x×X*]?[-+]?\d+\.\d+\D{0,1}$")
NUMERIC_RE = re.compile(r"^[x×X*]?[-+]?\d+(?:\.\d+)?\D{0,1}$")

BAD_QUANTITY = "数量「{word}」不对：请写一个正整数，如 3。"
BAD_DAY = "归还日期不能早于今天（{today}）。"
UNKNOWN_THING = "没有找到「{name}」。请核对名称或资产编号（发送「本室资产」查看你保管的资产）。"
SEVERAL_THINGS = "「{name}」有多件：{codes}。请写资产编号，如「{example}」。"


@dataclass
class Request:
    """`借 篮球 ×3 周五` read: what (as written), how many, until when; `rest` (领用's 用途) after the quantity."""

    name: str
    quantity: int | None = None
    due: date | None = None
    rest: str = ""
    error: str = ""


def read_request(words: list[str], today: date, with_rest: bool = False) -> Request:
    """Split command words into the thing, a quantity (3, ×3, 3个, 篮球×3) and a day (周五, 12月5日).
    With `with_rest`, the words after the quantity are kept apart (领用 纸杯 2 开会用)."""
    name: list[str] = []
    rest: list[str] = []
    request = Request("")
    for word in words:
        folded = normalize(word)
        if with_rest and request.quantity is not None:
            rest.append(word)
            continue
        if name and DECIMAL_RE.match(folded):  # 1.5: a bad quantity, not 1月5日
            request.error = BAD_QUANTITY.format(word=word)
            continue
        if (day := parse_day(folded, today)) is not None and request.due is None and name:
            request.due = day
            continue
        if (m := QUANTITY_RE.match(folded)) is not None and name:
            request.quantity = int(m[1])
            if request.quantity <= 0:
                request.error = BAD_QUANTITY.format(word=word)
            continue
        if (m := GLUED_QUANTITY_RE.match(folded) or GLUED_UNIT_RE.match(folded)) is not None and m[1].strip():
            name.append(word[:len(m[1])].strip())
            request.quantity = int(m[2])
            if request.quantity <= 0:
                request.error = BAD_QUANTITY.format(word=word)
            continue
        if name and NUMERIC_RE.match(folded):
            request.error = BAD_QUANTITY.format(word=word)
            continue
        name.append(word)
    request.name = " ".join(name)
    request.rest = " ".join(rest)
    return request


def find_things(db: Session, text: str, kind: str | None = THING, active: bool = True) -> list[Asset]:
    """The asset whose code `text` is; else those of that name (exactly, then containing it)."""
    by_code = find_asset(db, text)
    if by_code is not None:
        return [by_code]
    folded = normalize(text).replace(" ", "").lower()
    if not folded:
        return []
    query = select(Asset).order_by(Asset.id)
    if kind is not None:
        query = query.where(Asset.kind == kind)
    if active:
        query = query.where(Asset.status != DISPOSED)
    every = list(db.scalars(query))
    exact = [a for a in every if normalize(a.name).replace(" ", "").lower() == folded]
    return exact or [a for a in every if folded in normalize(a.name).replace(" ", "").lower()]


def one_thing(db: Session, text: str, kind: str | None = THING) -> Asset | str:
    """The one asset `text` names, or the answer saying why not."""
    things = find_things(db, text, kind)
    if not things:
        return UNKNOWN_THING.format(name=text)
    names = {normalize(a.name) for a in things}
    if len(things) > 1 and len(names) > 1:
        return SEVERAL_THINGS.format(name=text, codes="、".join(a.label for a in things[:8]),
                                     example=things[0].code)
    return things[0]


def held(db: Session, asset: Asset) -> int:
    """How many of `asset` are lent or asked for."""
    return int(db.scalar(select(func.coalesce(func.sum(AssetLoan.quantity), 0))
                         .where(AssetLoan.asset_id == asset.id, AssetLoan.status.in_(HELD))) or 0)


def out_loans(db: Session, asset: Asset) -> list[AssetLoan]:
    return list(db.scalars(select(AssetLoan).where(AssetLoan.asset_id == asset.id, AssetLoan.status == OUT)
                           .order_by(AssetLoan.id)))


def lenders(db: Session, asset: Asset) -> list[Person]:
    """Who lends `asset`: its custodian, else the room's responsible person, else the staff of its category,
    else admin."""
    if asset.custodian is not None:
        return [asset.custodian]
    if asset.room is not None and asset.room.responsible is not None:
        return [asset.room.responsible]
    staff = [p for p in people_with_role(db, "staff") if asset.category in p.category_list]
    return staff or admins(db)


def keepers(db: Session, asset: Asset) -> list[Person]:
    """Who answers for `asset` (its custodian or its room's responsible person), for escalations."""
    found = [p for p in (asset.custodian, asset.room.responsible if asset.room else None) if p is not None]
    return list({p.id: p for p in found}.values())


def in_repair(db: Session, asset: Asset) -> bool:
    """A repair on `asset` is still being worked on (its status reads 维修中 meanwhile)."""
    return asset.status == IN_REPAIR or db.scalar(select(RepairTicket.id).where(
        RepairTicket.asset_id == asset.id, RepairTicket.status.in_(ACTIVE)).limit(1)) is not None


def status_name(db: Session, asset: Asset) -> str:
    """在用 / 借出 / 维修中 / 已报废, an open repair counting as 维修中."""
    if asset.status in (IN_USE, ON_LOAN) and in_repair(db, asset):
        return ASSET_STATUS_NAMES[IN_REPAIR]
    return asset.status_name


def record(db: Session, asset: Asset, kind: str, at: datetime, person: Person | None, note: str = "") -> None:
    db.add(AssetEvent(asset=asset, kind=kind, at=at, person=person, note=note))


def due_label(day: date | None) -> str:
    return day_label(day) if day else "未定"


def quantity_label(asset: Asset, quantity: int) -> str:
    return f"{asset.name} ×{quantity}" if asset.quantity > 1 or quantity > 1 else asset.name


def is_key(asset: Asset) -> bool:
    return asset.kind == KEY
