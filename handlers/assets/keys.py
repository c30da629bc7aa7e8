"""Keys (钥匙): a key is an asset of kind key — which door or cabinet (its room and name), how many copies
(its quantity), who holds each copy now (its open loans). 钥匙 <房间> answers who holds that room's keys,
领钥匙 / 还钥匙 <房间> take and return a copy; a key loan stays open until the key is back, is in the
daily reminders once due, and the term-end check (scheduler/assets/keys.py) lists every key not returned."""

from __future__ import annotations

from datetime import date, timedelta, tzinfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.engine import Context, Conversation, Incoming, Reply
from bot.numbering import allocate_number
from bot.places import find_place_in, find_room
from bot.school import get_setting
from bot.text import day_label, normalize, parse_day
from handlers.assets.common import ASSET_ROLES, BAD_DAY, TOPIC, due_label, record
from models import Asset, AssetLoan, Room
from models.assets.loans import OUT, RETURNED
from models.assets.register import LENT
from models.assets.register import RETURNED as RETURNED_EVENT
from models.repair import DISPOSED, KEY

HELP_WHO = "钥匙 房间 — 这个房间的钥匙有几把、在谁手里"
HELP_TAKE = "领钥匙 房间 [门/柜…] [归还日期] — 领取钥匙"
HELP_RETURN = "还钥匙 房间 — 归还钥匙"
USAGE_WHO = "请按格式发送：钥匙 房间，例如：钥匙 科学室（发送「钥匙 未还」查看所有未还的钥匙）"
USAGE_TAKE = "请按格式发送：领钥匙 房间，例如：领钥匙 科学室"
USAGE_RETURN = "请按格式发送：还钥匙 房间，例如：还钥匙 科学室"
UNKNOWN_ROOM = "房间「{name}」不在登记表中。"
NO_KEYS = "{room} 没有登记钥匙。钥匙在资产表中登记（类型：钥匙，数量为把数），由管理员导入。"
WHICH_KEY = "{room} 登记了几种钥匙：{keys}。请写明，如「领钥匙 {room} {example}」。"
KEY_LINE = "{name}（{code}）共 {copies} 把：{holders}"
HOLDER = "第{n}把 {name}（{since}领，应还 {due}{late}）"
IN_STORE = "在库 {n} 把"
ALL_OUT = "{name}（{code}）{copies} 把都已领出：{holders}。"
TAKEN = "已领取 {name} 第{n}把（{code}），请于 {due} 归还，还时发送「还钥匙 {room}」。"
ALREADY_HOLD = "你已领有 {name} 第{n}把（{code}），还时发送「还钥匙 {room}」。"
KEY_RETURNED = "已归还 {name} 第{n}把（{code}）。"
NOT_HOLDING = "你没有领 {room} 的钥匙。{holders}"
HELD_BY = "现在由{names}领着，只能由领取人归还。"
ALREADY_BACK = "你领的 {name} 第{n}把已于 {day} 归还，不用再还。"
UNRETURNED_HEADER = "未归还的钥匙（{n} 把）："
UNRETURNED_LINE = "{room} {name} 第{n}把 · {who} · {since}领，应还 {due}"
ALL_BACK = "所有钥匙都已归还。"
LATE = "，已逾期"
UNRETURNED_WORDS = {"未还", "没还", "未归还", "全部"}
WHO_WORDS = ("谁", "哪")

who_holds = Conversation("keys", title="钥匙", keywords=["钥匙"], roles=ASSET_ROLES, help=HELP_WHO, topic=TOPIC,
                         slips=False, cues=("钥匙",))
take_key = Conversation("key_take", title="领钥匙", keywords=["领钥匙", "借钥匙", "拿钥匙"], roles=ASSET_ROLES,
                        help=HELP_TAKE, topic=TOPIC, slips=False)
return_key = Conversation("key_return", title="还钥匙", keywords=["还钥匙", "归还钥匙"], roles=ASSET_ROLES,
                          help=HELP_RETURN, topic=TOPIC, slips=False)


def keys_of(db: Session, room: Room) -> list[Asset]:
    return list(db.scalars(select(Asset).where(Asset.kind == KEY, Asset.room_id == room.id,
                                               Asset.status != DISPOSED).order_by(Asset.code)))


def key_loans(db: Session, key: Asset) -> list[AssetLoan]:
    return list(db.scalars(select(AssetLoan).where(AssetLoan.asset_id == key.id, AssetLoan.status == OUT)
                           .order_by(AssetLoan.copy_no)))


def holders_text(ctx: Context, key: Asset) -> str:
    today = ctx.local_now.date()
    loans = key_loans(ctx.db, key)
    parts = [HOLDER.format(n=loan.copy_no, name=loan.borrower.name,
                           since=day_label((loan.lent_at or loan.asked_at).astimezone(ctx.settings.tz).date()),
                           due=due_label(loan.due_on), late=LATE if loan.due_on and loan.due_on < today else "")
             for loan in loans]
    if key.quantity - len(loans) > 0:
        parts.append(IN_STORE.format(n=key.quantity - len(loans)))
    return "；".join(parts)


@who_holds.entry
def who(msg: Incoming, ctx: Context) -> Reply:
    if not msg.args:
        return Reply.end(USAGE_WHO)
    if msg.args[0] in UNRETURNED_WORDS:
        return Reply.end(unreturned_text(ctx.db, ctx.settings.tz, ctx.local_now.date()))
    room = find_room(ctx.db, " ".join(msg.args))
    if room is None:
        return Reply.end(UNKNOWN_ROOM.format(name=" ".join(msg.kept_args)))
    return Reply.end(room_keys_text(ctx, room))


def room_keys_text(ctx: Context, room: Room) -> str:
    keys = keys_of(ctx.db, room)
    if not keys:
        return NO_KEYS.format(room=room.name)
    return "\n".join(KEY_LINE.format(name=k.name, code=k.code, copies=k.quantity, holders=holders_text(ctx, k))
                     for k in keys)


@who_holds.on_event("text", "voice")
def asked(msg: Incoming, ctx: Context) -> Reply | None:
    """科学室的钥匙在谁那: a sentence asking who holds a registered room's keys."""
    if not any(w in msg.text for w in WHO_WORDS):
        return None
    found = find_place_in(ctx.db, msg.text)
    return Reply.end(room_keys_text(ctx, found[0])) if found is not None else None


def pick_key(ctx: Context, words: list[str]) -> tuple[Room, Asset, list[str]] | str:
    """The room and which of its keys the words name, and the words left (a day); or the answer why not."""
    room = None
    for end in range(len(words), 0, -1):
        room = find_room(ctx.db, " ".join(words[:end]))
        if room is not None:
            rest = words[end:]
            break
    if room is None:
        return UNKNOWN_ROOM.format(name=" ".join(words))
    keys = keys_of(ctx.db, room)
    if not keys:
        return NO_KEYS.format(room=room.name)
    chosen = keys
    if rest and (named := [k for k in keys if normalize(rest[0]) in normalize(k.name) or
                           normalize(rest[0]).lower() == k.code.lower()]):
        chosen, rest = named, rest[1:]
    if len(chosen) > 1:
        return WHICH_KEY.format(room=room.name, keys="、".join(k.name for k in chosen), example=chosen[0].name)
    return room, chosen[0], rest


@take_key.entry
def take(msg: Incoming, ctx: Context) -> Reply:
    if not msg.args:
        return Reply.end(USAGE_TAKE)
    picked = pick_key(ctx, msg.kept_args)
    if isinstance(picked, str):
        return Reply.end(picked)
    room, key, rest = picked
    person = ctx.person
    assert person is not None
    today = ctx.local_now.date()
    loans = key_loans(ctx.db, key)
    mine = next((loan for loan in loans if loan.borrower_id == person.id), None)
    if mine is not None:
        return Reply.end(ALREADY_HOLD.format(name=key.name, n=mine.copy_no, code=mine.code, room=room.name))
    taken = {loan.copy_no for loan in loans}
    free = next((n for n in range(1, key.quantity + 1) if n not in taken), None)
    if free is None:
        return Reply.end(ALL_OUT.format(name=key.name, code=key.code, copies=key.quantity,
                                        holders=holders_text(ctx, key)))
    due = today + timedelta(days=int(get_setting(ctx.db, "key_loan_days")))
    if rest:
        day = parse_day(rest[0], today)
        if day is None:
            return Reply.end(USAGE_TAKE)
        if day < today:
            return Reply.end(BAD_DAY.format(today=day_label(today)))
        due = day
    loan = AssetLoan(number=allocate_number(ctx.db, AssetLoan.number), asset=key, borrower=person, quantity=1,
                     copy_no=free, status=OUT, asked_at=ctx.now, lent_at=ctx.now, due_on=due)
    ctx.db.add(loan)
    ctx.db.flush()
    record(ctx.db, key, LENT, ctx.now, person, f"{loan.code} 第{free}把 {person.name} 至 {due_label(due)}")
    return Reply.end(TAKEN.format(name=key.name, n=free, code=loan.code, due=due_label(due), room=room.name))


@return_key.entry
def give_back(msg: Incoming, ctx: Context) -> Reply:
    if not msg.args:
        return Reply.end(USAGE_RETURN)
    picked = pick_key(ctx, msg.kept_args)
    person = ctx.person
    assert person is not None
    if isinstance(picked, str):
        # a room with several keys: the one the sender holds is meant
        room = find_room(ctx.db, " ".join(msg.args))
        if room is None:
            return Reply.end(picked)
        room_keys = keys_of(ctx.db, room)
        held = [loan for k in room_keys for loan in key_loans(ctx.db, k) if loan.borrower_id == person.id]
        if len(held) > 1 or not room_keys:
            return Reply.end(picked)
        if not held:
            return Reply.end(not_holding(ctx, room, room_keys, person.id))
        key = held[0].asset
    else:
        room, key, _ = picked
    loans = key_loans(ctx.db, key)
    mine = next((loan for loan in loans if loan.borrower_id == person.id), None)
    if mine is None:
        return Reply.end(not_holding(ctx, room, [key], person.id))
    mine.status, mine.returned_at = RETURNED, ctx.now
    record(ctx.db, key, RETURNED_EVENT, ctx.now, person, f"{mine.code} 第{mine.copy_no}把 {person.name}")
    return Reply.end(KEY_RETURNED.format(name=key.name, n=mine.copy_no, code=mine.code))


def not_holding(ctx: Context, room: Room, keys: list[Asset], person_id: int) -> str:
    """Why a 还钥匙 changes nothing: returned already, or someone else holds the keys."""
    back = ctx.db.scalar(select(AssetLoan).where(AssetLoan.asset_id.in_([k.id for k in keys]),
                                                 AssetLoan.borrower_id == person_id, AssetLoan.status == RETURNED)
                         .order_by(AssetLoan.returned_at.desc()).limit(1))
    if back is not None and back.returned_at is not None:
        return ALREADY_BACK.format(name=back.asset.name, n=back.copy_no,
                                   day=day_label(back.returned_at.astimezone(ctx.settings.tz).date()))
    names = "、".join(f"{loan.borrower.name}（{loan.asset.name} 第{loan.copy_no}把）"
                     for k in keys for loan in key_loans(ctx.db, k))
    return NOT_HOLDING.format(room=room.name, holders=HELD_BY.format(names=names) if names else "")


def unreturned(db: Session) -> list[AssetLoan]:
    return list(db.scalars(select(AssetLoan).join(Asset, AssetLoan.asset_id == Asset.id)
                           .where(Asset.kind == KEY, AssetLoan.status == OUT)
                           .order_by(Asset.room_id, Asset.code, AssetLoan.copy_no)))


def unreturned_text(db: Session, tz: tzinfo, today: date) -> str:
    loans = unreturned(db)
    if not loans:
        return ALL_BACK
    lines = [UNRETURNED_HEADER.format(n=len(loans))]
    lines += [UNRETURNED_LINE.format(room=loan.asset.room.name if loan.asset.room else "", name=loan.asset.name,
                                     n=loan.copy_no, who=loan.borrower.name,
                                     since=day_label((loan.lent_at or loan.asked_at).astimezone(tz).date()),
                                     due=due_label(loan.due_on)) + (LATE if loan.due_on and loan.due_on < today else "")
              for loan in loans]
    return "\n".join(lines)
