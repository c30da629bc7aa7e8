"""The repair rules the conversations, the console, the ledger and the jobs share: the category map and
urgency words, who a category goes to, places (a room, an asset or the words as typed), what counts as
the same fault (see `same_fault`), ticket numbers, and how late a ticket may be done."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session, joinedload, lazyload

from bot.db import memo
from bot.numbering import allocate_number
from bot.places import find_asset, find_room, place_key
from bot.school import get_setting, people_with_role
from bot.text import (
    normalize,
    segment,
)
from models import Asset, Person, RepairCategory, RepairTicket, Room, TicketEvent, TicketFollower
from models.repair import (
    ACTIVE,
    REPORT,
    STATUS_NAMES,
)

HAZARD_CATEGORY = "安全"
OTHER_CATEGORY = "其他"
DEFAULT_CATEGORIES: list[tuple[str, str]] = [  # matched in this order: the first category with a keyword wins
    ("消防", "灭火器;消防栓;消火栓;消防;应急灯;疏散指示;安全出口;烟感;喷淋;着火;起火;冒烟"),
    ("电教", "投影;电脑;一体机;白板;显示屏;屏幕;音响;话筒;麦克风;广播;网络;网线;wifi;打印机;电视;摄像头;幕布;"
             "鼠标;键盘;录播"),
    ("水电", "水龙头;水管;漏水;跑水;下水;马桶;厕所;便池;堵;直饮水;饮水机;热水;灯;插座;开关;跳闸;停电;没电;断电;"
             "漏电;电线;空调;风扇;电扇;电梯"),
    ("门窗", "门;窗;锁;玻璃;把手;合页;钥匙"),
    ("桌椅", "桌;椅;凳;柜;讲台;书架;黑板"),
    ("安全", "隐患;栏杆;护栏;扶手;楼梯;台阶;地面;地砖;墙;吊顶;天花板;松动;脱落;裂缝;井盖;尖角"),
    ("其他", ""),
]
MAX_DESCRIPTION = 500
MAX_PLACE = 200
REPAIR_ROLES = {"teacher", "staff", "admin"}
WORK_ROLES = {"staff", "admin"}
CODE_RE = re.compile(r"[Rr](\d{1,9})")
SEPARATORS = re.compile(r"[;；、，,]+")
# Words that say how something is broken, or name nothing in particular: two reports sharing only
# these are not about the same thing (the urgent words are added to them: 漏水, 冒烟, 火花 ...)
NOT_THINGS = {"漏水", "跑水", "渗水", "漏电", "跳闸", "停电", "没电", "断电", "堵", "松动", "脱落", "裂缝", "着火",
              "起火", "冒烟", "火花", "黑屏", "花屏", "画面", "声音", "隐患", "问题", "故障", "毛病", "东西", "情况",
              "地方", "时候", "现在", "今天", "开机", "教室", "老师", "同学", "学生", "我们", "大家"}



# -- categories, urgency, routing -----------------------------------------------------------------
def split_words(text: str) -> list[str]:
    return [w.strip() for w in SEPARATORS.split(text) if w.strip()]


CATEGORY_MAP = "repair_category_map"  # bot.db.memo: the map as this transaction read it


def category_map(db: Session) -> list[tuple[str, list[str]]]:
    """The school's keyword map, in matching order; the defaults until one is imported. Read once per
    transaction (a repair report asks for it three times); an import (handlers.repair.ledger) forgets it,
    and so does any change to a category this session has not flushed yet."""
    found: list[tuple[str, list[str]]] | None = memo(db).get(CATEGORY_MAP)
    if found is not None and not any(isinstance(o, RepairCategory) for o in (*db.new, *db.dirty, *db.deleted)):
        return found
    rows = list(db.scalars(select(RepairCategory).order_by(RepairCategory.position, RepairCategory.name)))
    pairs = [(r.name, r.keywords) for r in rows] if rows else DEFAULT_CATEGORIES
    memo(db)[CATEGORY_MAP] = found = [(name, split_words(words)) for name, words in pairs]
    return found


def categorize(db: Session, text: str) -> str:
    lowered = text.lower()
    for name, words in category_map(db):
        if any(w.lower() in lowered for w in words):
            return name
    return OTHER_CATEGORY


def is_urgent(db: Session, text: str) -> bool:
    return any(w in text for w in split_words(get_setting(db, "repair_urgent_words")))


def responsible(db: Session, category: str) -> list[Person]:
    """The staff whose categories include `category`, else admin (staff and admins read in one query)."""
    people = people_with_role(db, "staff", "admin")
    staff = [p for p in people if "staff" in p.role_set and category in p.category_list]
    return staff or [p for p in people if "admin" in p.role_set]


def names_of(people: list[Person]) -> str:
    return "、".join(p.name for p in people) or "管理员"


# -- places ---------------------------------------------------------------------------------------
@dataclass
class Place:
    text: str
    room: Room | None = None
    asset: Asset | None = None

    @property
    def data(self) -> dict[str, Any]:
        return {"place": self.text, "room_id": self.room.id if self.room else None,
                "asset_id": self.asset.id if self.asset else None}


def asset_place(asset: Asset) -> Place:
    text = f"{asset.room.name} {asset.name}" if asset.room else asset.name
    return Place(text, asset.room, asset)


def resolve_place(db: Session, text: str) -> Place:
    """An asset code, a registered room however written, or the place as typed."""
    asset = find_asset(db, text)
    if asset is not None:
        return asset_place(asset)
    room = find_room(db, text)
    return Place(room.name, room) if room is not None else Place(text)


def place_from_data(db: Session, data: dict[str, Any]) -> Place:
    room = db.get(Room, data["room_id"]) if data.get("room_id") else None
    asset = db.get(Asset, data["asset_id"]) if data.get("asset_id") else None
    return Place(str(data.get("place", "")), room, asset)


# -- tickets --------------------------------------------------------------------------------------
def ticket_by_code(db: Session, word: str, lock: bool = False) -> RepairTicket | None:
    match = CODE_RE.fullmatch(word) or re.fullmatch(r"(\d{1,9})", word)
    if match is None:
        return None
    query = select(RepairTicket).where(RepairTicket.number == int(match.group(1)))
    return db.scalar(query.with_for_update() if lock else query)


def shown_code(word: str) -> str:
    return word if word.upper().startswith("R") else f"R{word}"


def is_party(ticket: RepairTicket, person: Person) -> bool:
    """The reporter or a follower."""
    return ticket.reporter_id == person.id or any(f.person_id == person.id for f in ticket.followers)


def parties(ticket: RepairTicket) -> list[Person]:
    return [p for p in [ticket.reporter, *ticket.follower_people] if p is not None]


def follow(db: Session, ticket: RepairTicket, person: Person) -> None:
    """`person` follows the ticket unless a party to it already. A ticket loaded without its followers
    (find_duplicate) is asked by one query instead of loading them all, each with their roles and bindings."""
    if ticket.reporter_id == person.id:
        return
    if "followers" in inspect(ticket).unloaded:
        db.flush()
        party = db.scalar(select(TicketFollower.id).where(TicketFollower.ticket_id == ticket.id,
                                                          TicketFollower.person_id == person.id)) is not None
    else:
        party = is_party(ticket, person)
    if not party:
        db.add(TicketFollower(ticket=ticket, person=person))
        db.flush()


def things(db: Session, text: str) -> set[str]:
    """What a description says is broken: its nouns (jieba), each reduced to the longest category keyword
    it contains (灯管 → 灯, 投影仪 → 投影), less NOT_THINGS and the urgent words. 空调在漏水 → {空调}."""
    skip = NOT_THINGS | set(split_words(get_setting(db, "repair_urgent_words")))
    keywords = sorted({w.lower() for _, words in category_map(db) for w in words} - skip, key=len, reverse=True)
    found = set()
    for token, flag in segment(normalize(text).lower()):
        word = token.strip()
        keyword = next((k for k in keywords if k in word), None)
        if keyword is not None:
            found.add(keyword)
        elif flag.startswith("n") and len(word) >= 2 and word not in skip:
            found.add(word)
    return found


def same_fault(db: Session, ticket: RepairTicket, place: Place, description: str) -> bool:
    """Whether a report at the ticket's place describes the ticket's fault: the same asset; else a thing
    in common (the assets' names count: 没有声音 scanned on the projector is about 投影); else the same
    words. Two assets, or two things, are two faults: 插座冒火花 is not 空调漏水."""
    if place.asset is not None and ticket.asset is not None:
        return place.asset.id == ticket.asset.id
    mine = things(db, f"{place.asset.name if place.asset else ''} {description}")
    theirs = things(db, f"{ticket.asset.name if ticket.asset else ''} {ticket.description}")
    if mine or theirs:
        return bool(mine & theirs)
    return normalize(description).replace(" ", "") == normalize(ticket.description).replace(" ", "")


# A duplicate's candidates come without their followers, photos and history, and with their reporter and
# assignee joined, without the roles and bindings a Person loads (selectin) wherever it is loaded: the reply
# names them; telling one (the assignee) loads those when it does. Made once: building options costs.
_CANDIDATE_OPTIONS = (lazyload(RepairTicket.followers), lazyload(RepairTicket.photos), lazyload(RepairTicket.events),
                      *(joinedload(person).options(lazyload(Person.roles), lazyload(Person.bindings))
                        for person in (RepairTicket.reporter, RepairTicket.assignee)))


def find_duplicate(db: Session, place: Place, description: str) -> RepairTicket | None:
    """The first active ticket for the same room (or the same place as typed) and the same fault.
    The candidates come without their followers, photos and history (selectin on a plain load): the
    comparison needs none of them, and a busy room's open ticket gathers many; the one that matches loads
    them when they are used. Its reporter and assignee come in the same query (`_CANDIDATE_OPTIONS`)."""
    query = (select(RepairTicket).where(RepairTicket.status.in_(ACTIVE)).order_by(RepairTicket.number)
             .options(*_CANDIDATE_OPTIONS))
    if place.room is not None:
        candidates = list(db.scalars(query.where(RepairTicket.room_id == place.room.id)))
    else:
        key = place_key(place.text)
        candidates = [t for t in db.scalars(query.where(RepairTicket.room_id.is_(None))) if place_key(t.place) == key]
    return next((t for t in candidates if same_fault(db, t, place, description)), None)


def next_number(db: Session) -> int:
    return allocate_number(db, RepairTicket.number)

def workers_of(db: Session, ticket: RepairTicket) -> list[Person]:
    """Who works on the ticket: its assignee, else the staff of its category (else admin)."""
    return [ticket.assignee] if ticket.assignee else responsible(db, ticket.category)



def ticket_fields(ticket: RepairTicket) -> dict[str, Any]:
    return {"code": ticket.code, "place": ticket.place, "category": ticket.category,
            "description": ticket.description, "status": STATUS_NAMES.get(ticket.status, ticket.status),
            "reporter": ticket.reporter.name if ticket.reporter else "（已删除）",
            "name": ticket.assignee.name if ticket.assignee else ""}


def ticket_push(ticket: RepairTicket) -> dict[str, str]:
    """A repair push's named fields (bot.push_kinds): who `person` is, the worker or else the reporter."""
    fields = ticket_fields(ticket)
    return {"code": fields["code"], "place": fields["place"], "description": fields["description"],
            "status": fields["status"], "person": fields["name"] or fields["reporter"]}


def local_label(ctx_tz: tzinfo, moment: datetime | None) -> str:
    if moment is None:
        return ""
    local = moment.astimezone(ctx_tz)
    return f"{local.month}月{local.day}日 {local:%H:%M}"



def follow_up_lines(ticket: RepairTicket, tz: tzinfo) -> list[str]:
    """The later reports of the ticket's fault, in their reporters' words, with the photos each sent."""
    lines = []
    for event in ticket.follow_ups:
        photos = sum(1 for p in ticket.photos if p.kind == REPORT and p.sender_id == event.person_id
                     and event.person_id != ticket.reporter_id)
        lines.append(f"{event.who} {local_label(tz, event.created_at)}「{event.text}」"
                     + ("【紧急】" if event.urgent else "") + (f"（照片 {photos} 张）" if photos else ""))
    return lines


def withdrawal_line(event: TicketEvent, tz: tzinfo) -> str:
    return f"{event.who} {local_label(tz, event.created_at)}" + (f"，理由：{event.text}" if event.text else "")



def done_limit(db: Session, ticket: RepairTicket) -> tuple[timedelta, str]:
    """How long a ticket may take before it is late (school settings), and that said in Chinese."""
    if ticket.urgent:
        hours = float(get_setting(db, "repair_urgent_done_hours"))
        return timedelta(hours=hours), f"{hours:g}小时"
    days = float(get_setting(db, "repair_done_days"))
    return timedelta(days=days), f"{days:g}天"


def is_overdue(db: Session, ticket: RepairTicket, now: datetime) -> bool:
    return ticket.status in ACTIVE and now - ticket.filed_at >= done_limit(db, ticket)[0]


def overdue_among(db: Session, tickets: list[RepairTicket], now: datetime) -> list[RepairTicket]:
    """The tickets `is_overdue` picks, reading the two limits once (not once per ticket)."""
    urgent = timedelta(hours=float(get_setting(db, "repair_urgent_done_hours")))
    normal = timedelta(days=float(get_setting(db, "repair_done_days")))
    return [t for t in tickets if t.status in ACTIVE and now - t.filed_at >= (urgent if t.urgent else normal)]
