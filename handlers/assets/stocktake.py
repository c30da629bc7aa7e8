"""Stocktakes (盘点 / 财产清查): admin starts one for a room, a building or the school (盘点 开始 <范围>);
staff, admin or a room's responsible person scan each asset's QR code (a room's code first says where
they are) or send codes in bulk (盘点 [房间] 编号 编号 …); a code or thing not in the register is noted,
with a photo to register it; 盘点 结束 gives found, missing, moved (seen in another room) and
unregistered. The 盘点报告 ledger is in handlers/assets/ledger.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.engine import Context, Conversation, Incoming, Reply
from bot.places import find_asset, find_room
from bot.text import normalize
from handlers.assets.common import ASSET_ROLES, TOPIC, WORK_ROLES, record
from models import Asset, Person, Room, Stocktake, StocktakeCheck, StocktakePhoto
from models.assets.register import CHECKED
from models.assets.stocktake import BUILDING, ROOM, SCHOOL
from models.repair import DISPOSED

HELP = "盘点 开始 范围 / 盘点 [房间] 编号… / 盘点 结束 — 财产清查（扫资产二维码也算盘点）"
SCHOOL_WORDS = {"全校", "学校", "全部", "全校资产"}
START_WORDS, END_WORDS = {"开始", "启动"}, {"结束", "完成", "结束盘点"}
UNREGISTERED_WORD = "未登记"
USAGE = ("请按格式发送：盘点 开始 范围（全校、楼栋或房间）；盘点中发送「盘点 房间 编号 编号…」或扫资产二维码；"
         "「盘点 结束」出结果。")
ONLY_ADMIN = "只有管理员可以开始或结束盘点。"
ALREADY_OPEN = "已有进行中的盘点：{scope}（{who}开始）。请先发送「盘点 结束」。"
UNKNOWN_SCOPE = "「{scope}」不是全校、已登记的楼栋或房间。"
STARTED = "已开始盘点：{scope}，应盘 {count} 件。请相关人员扫描资产二维码，或发送「盘点 房间 编号 编号…」。"
NO_STOCKTAKE = "当前没有进行中的盘点。管理员可发送「盘点 开始 范围」。"
NOT_CHECKER = "盘点由后勤、管理员或房间负责人进行。"
PROGRESS = "正在盘点：{scope}，已盘 {done}/{count} 件。"
IN_ROOM = "盘点：现在在 {room}。请扫描本室资产的二维码，或发送「盘点 编号 编号…」。如需报修请发送「报修」。"
CHECKED_ONE = "盘点：{label} ✓（{room}）{moved}"
MOVED_NOTE = "登记在 {room}，记为「位置变动」（如已搬迁，请发送「调动 {code} {here}」）。"
OUT_OF_SCOPE = "（不在本次盘点范围内）"
BULK_REPLY = "盘点 {room}：已记 {n} 件{codes}。"
UNKNOWN_CODES = "不在登记表中：{codes}，已记为「未登记」。请发送照片，便于登记入账（不拍照可发送「跳过」）。"
PHOTO_KEPT = "照片已记在未登记物品 {codes} 上。"
SKIPPED = "好的，未登记物品已记下（无照片）。"
ENDED = ("盘点结束：{scope}。应盘 {count} 件，盘到 {found} 件；缺失 {missing} 件{missing_list}；"
         "位置变动 {moved} 件{moved_list}；未登记 {unregistered} 件{unregistered_list}。详见盘点报告"
         "（houqin export stocktake）。")
SKIP_WORDS = {"跳过", "不用", "没有", "无"}


class Step:
    PHOTO = "photo"


stocktake = Conversation("stocktake", title="盘点", keywords=["盘点", "财产清查"], roles=ASSET_ROLES, help=HELP,
                         topic=TOPIC, slips=False)


def open_stocktake(db: Session) -> Stocktake | None:
    return db.scalar(select(Stocktake).where(Stocktake.ended_at.is_(None)).order_by(Stocktake.id.desc()).limit(1))


def in_scope(take: Stocktake, asset: Asset) -> bool:
    if take.scope == SCHOOL:
        return True
    if take.scope == ROOM:
        return asset.room_id == take.room_id
    return asset.room is not None and asset.room.building == take.building


def expected(db: Session, take: Stocktake) -> list[Asset]:
    every = db.scalars(select(Asset).where(Asset.status != DISPOSED).order_by(Asset.code))
    return [a for a in every if in_scope(take, a)]


def may_check(ctx: Context) -> bool:
    return ctx.has_role(*WORK_ROLES) or ctx.db.scalar(
        select(Room.id).where(Room.responsible_id == ctx.person_id).limit(1)) is not None


def current_room(db: Session, take: Stocktake, person: Person) -> Room | None:
    """Where the checker last said (or scanned) they are in this stocktake."""
    last = db.scalar(select(StocktakeCheck).where(StocktakeCheck.stocktake_id == take.id,
                                                  StocktakeCheck.person_id == person.id,
                                                  StocktakeCheck.room_id.is_not(None))
                     .order_by(StocktakeCheck.id.desc()).limit(1))
    return last.room if last is not None else None


def check(ctx: Context, take: Stocktake, asset: Asset, room: Room | None) -> str:
    person = ctx.person
    where = room or asset.room
    ctx.db.add(StocktakeCheck(stocktake=take, asset=asset, code=asset.code, room=where, person=person, at=ctx.now))
    record(ctx.db, asset, CHECKED, ctx.now, person, f"盘点于 {where.name if where else '未指定'}")
    moved = ""
    if where is not None and asset.room is not None and where.id != asset.room.id:
        moved = MOVED_NOTE.format(room=asset.room.name, code=asset.code, here=where.name)
    if not in_scope(take, asset):
        moved += OUT_OF_SCOPE
    return CHECKED_ONE.format(label=asset.label, room=where.name if where else "未指定", moved=moved)


def scan(ctx: Context, asset: Asset | None = None, room: Room | None = None) -> Reply | None:
    """A QR scan while a stocktake is open, by someone who checks: counted (an asset) or where they are
    (a room). None when no stocktake is open or the sender does not check."""
    if not ctx.bound:
        return None
    take = open_stocktake(ctx.db)
    if take is None or not may_check(ctx):
        return None
    if room is not None:
        ctx.db.add(StocktakeCheck(stocktake=take, code="", room=room, person=ctx.person, at=ctx.now))
        return Reply.end(IN_ROOM.format(room=room.name))
    assert asset is not None and ctx.person is not None
    return Reply.end(check(ctx, take, asset, current_room(ctx.db, take, ctx.person)))


@stocktake.entry
def start(msg: Incoming, ctx: Context) -> Reply:
    args, kept = msg.args, msg.kept_args
    take = open_stocktake(ctx.db)
    if args and args[0] in START_WORDS:
        if not ctx.has_role("admin"):
            return Reply.end(ONLY_ADMIN)
        return begin(ctx, " ".join(kept[1:]))
    if args and args[0] in END_WORDS:
        if not ctx.has_role("admin"):
            return Reply.end(ONLY_ADMIN)
        if take is None:
            return Reply.end(NO_STOCKTAKE)
        return finish(ctx, take)
    if take is None:
        return Reply.end(NO_STOCKTAKE if args else USAGE)
    if not may_check(ctx):
        return Reply.end(NOT_CHECKER)
    if not args:
        done = len({c.asset_id for c in take.checks if c.asset_id})
        return Reply.end(PROGRESS.format(scope=take.scope_name, done=done, count=len(expected(ctx.db, take))))
    return bulk(ctx, take, kept)


def begin(ctx: Context, scope: str) -> Reply:
    started = begin_stocktake(ctx.db, scope, ctx.person, ctx.now)
    return Reply.end(started if isinstance(started, str) else
                     STARTED.format(scope=started.scope_name, count=len(expected(ctx.db, started))))


def begin_stocktake(db: Session, scope: str, person: Person | None, now: datetime) -> Stocktake | str:
    """A new stocktake of `scope` (全校, a building, a room), or the answer why not."""
    take = open_stocktake(db)
    if take is not None:
        return ALREADY_OPEN.format(scope=take.scope_name, who=take.started_by.name if take.started_by else "")
    folded = normalize(scope).replace(" ", "")
    take = Stocktake(started_by=person, started_at=now)
    if not folded or folded in SCHOOL_WORDS:
        take.scope, take.scope_name = SCHOOL, "全校"
    elif (room := find_room(db, scope)) is not None:
        take.scope, take.scope_name, take.room = ROOM, room.name, room
    elif (building := next((b for b in db.scalars(select(Room.building).distinct())
                            if b and normalize(b).replace(" ", "") == folded), None)) is not None:
        take.scope, take.scope_name, take.building = BUILDING, building, building
    else:
        return UNKNOWN_SCOPE.format(scope=scope)
    db.add(take)
    db.flush()
    return take


def bulk(ctx: Context, take: Stocktake, words: list[str]) -> Reply:
    """盘点 [房间] 编号 编号 … (or 盘点 [房间] 未登记 名称): several at once."""
    person = ctx.person
    assert person is not None
    room = find_room(ctx.db, words[0])
    if room is not None:
        words = words[1:]
        if not words:
            ctx.db.add(StocktakeCheck(stocktake=take, code="", room=room, person=person, at=ctx.now))
            return Reply.end(IN_ROOM.format(room=room.name))
    else:
        room = current_room(ctx.db, take, person)
    if words and normalize(words[0]) == UNREGISTERED_WORD:
        words = [" ".join(words[1:])] if len(words) > 1 else []
    codes = [w for word in words for w in normalize(word).replace("，", ",").replace("、", ",").split(",") if w]
    lines, unknown, counted = [], [], []
    for code in codes:
        asset = find_asset(ctx.db, code)
        if asset is None:
            unknown.append(code)
            continue
        lines.append(check(ctx, take, asset, room))
        counted.append(asset.code)
    checks = [StocktakeCheck(stocktake=take, code=code, room=room, person=person, at=ctx.now) for code in unknown]
    ctx.db.add_all(checks)
    ctx.db.flush()
    moved = [line for line in lines if "位置变动" in line or OUT_OF_SCOPE in line]
    text = BULK_REPLY.format(room=room.name if room else "", n=len(counted),
                             codes=f"：{'、'.join(counted)}" if counted else "")
    if moved:
        text += "\n" + "\n".join(moved)
    if unknown:
        text += "\n" + UNKNOWN_CODES.format(codes="、".join(unknown))
        return Reply(text, next=Step.PHOTO, data={"checks": [c.id for c in checks]})
    return Reply.end(text)


@stocktake.on(Step.PHOTO)
def got_photo(msg: Incoming, ctx: Context) -> Reply | None:
    ids = [int(i) for i in ctx.data.get("checks", [])]
    if msg.msg_type == "image" and msg.media_id:
        checks = [c for i in ids if (c := ctx.db.get(StocktakeCheck, i)) is not None]
        for c in checks:
            c.photo_media_id = msg.media_id[:200]
            ctx.db.add(StocktakePhoto(check=c, media_id=msg.media_id, next_attempt_at=ctx.now, created_at=ctx.now))
        return Reply.end(PHOTO_KEPT.format(codes="、".join(c.code for c in checks)))
    if msg.text in SKIP_WORDS:
        return Reply.end(SKIPPED)
    return None


@dataclass
class Result:
    take: Stocktake
    expected: list[Asset]
    found: list[StocktakeCheck] = field(default_factory=list)
    moved: list[StocktakeCheck] = field(default_factory=list)
    missing: list[Asset] = field(default_factory=list)
    unregistered: list[StocktakeCheck] = field(default_factory=list)


def result(db: Session, take: Stocktake) -> Result:
    """What a stocktake found: each expected asset's last check, where it was seen."""
    out = Result(take, expected(db, take))
    last: dict[int, StocktakeCheck] = {}
    for c in take.checks:
        if c.asset_id is not None:
            last[c.asset_id] = c
        elif c.code:
            out.unregistered.append(c)
    for c in last.values():
        assert c.asset is not None
        if c.room_id is not None and c.asset.room_id is not None and c.room_id != c.asset.room_id:
            out.moved.append(c)
        else:
            out.found.append(c)
    out.missing = [a for a in out.expected if a.id not in last]
    return out


def finish(ctx: Context, take: Stocktake) -> Reply:
    return Reply.end(finish_stocktake(ctx.db, take, ctx.now))


def finish_stocktake(db: Session, take: Stocktake, now: datetime) -> str:
    """End `take`; what it found, in a sentence."""
    take.ended_at = now
    db.flush()
    r = result(db, take)

    def listing(items: list[str]) -> str:
        return f"（{'、'.join(items[:10])}{'…' if len(items) > 10 else ''}）" if items else ""

    return ENDED.format(
        scope=take.scope_name, count=len(r.expected), found=len(r.found) + len(r.moved), missing=len(r.missing),
        missing_list=listing([a.label for a in r.missing]), moved=len(r.moved),
        moved_list=listing([f"{c.asset.label if c.asset else c.code} 在 {c.room.name if c.room else ''}"
                            for c in r.moved]),
        unregistered=len(r.unregistered), unregistered_list=listing([c.code for c in r.unregistered]))
