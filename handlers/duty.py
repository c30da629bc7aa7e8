"""Duty (值日 / 巡查打卡): check-in by the post's QR code, by location, or by text; handovers
(代班 / 同意); the posts and roster imports; the ledger. Reminders and misses are jobs in scheduler/duty.py.

A slot's window runs from 10 minutes before its start to its end. Check-in by QR code or a
location inside the post's radius is verified; `签到` text alone is recorded as unverified.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.engine import Context, Conversation, Incoming, Reply
from bot.outbox import told
from bot.people import AmbiguousName, PersonNotFound, find_person, resolve_person
from bot.school import Calendar, Slot, duty_slots, get_setting
from bot.tables import TableError, read_table
from bot.text import WEEKDAYS, day_label, day_short, local_naive, month_span, parse_day, tidy
from models import Person
from models.duty import (
    LOCATION,
    METHOD_NAMES,
    QR,
    TEXT,
    DutyCheckin,
    DutyOverride,
    DutyPost,
    DutyRoster,
    DutyShift,
    DutySwap,
)

EARLY = timedelta(minutes=10)
DUTY_ROLES = {"teacher", "staff", "admin"}

HELP_CHECKIN = "签到 [岗位] — 值日签到（扫岗位二维码或发送位置可验证）"
HELP_SWAP = "代班 姓名 [日期] [时段] — 请同事代班；同意 / 不同意 [姓名] — 答复同事的代班请求"
NOT_SCHOOL_DAY = "今天不是上课日，没有值日安排。"
OUTSIDE_WINDOW = "现在不在值日签到时间。值日时段：{slots}（开始前10分钟起可签到）。"
WHICH_POST = "你在{slot}没有排班。请发送「签到 岗位名」或扫描岗位二维码。岗位：{posts}"
UNKNOWN_POST = "没有找到岗位「{name}」。岗位：{posts}"
AMBIGUOUS_POST = "「{name}」对应多个岗位：{posts}，请写全称。"
TOO_FAR = "你不在值日岗位范围内（离最近的岗位「{post}」约 {distance}）。请到岗后再签到，或扫描岗位二维码。"
METRES, KILOMETRES = "{n} 米", "{n:.1f} 公里"
NO_POSTS = "学校还没有登记值日岗位，请联系管理员。"
IN_SCHOOL_ASK = "已收到位置（在校内）。请扫描岗位二维码或发送「签到 岗位名」完成签到。"
ALREADY = "你已于 {at} 在{post}签到（{slot}），无需重复签到。"
CHECKED_IN = "已签到：{post} {slot}，{at}{late}，{how}。{extra}"
LATE = "（迟到）"
VERIFIED = "已验证（{method}）"
UNVERIFIED = "文字签到，未验证位置（扫描岗位二维码或发送位置可验证）"
STAND_IN_NOTE = "你不在该时段该岗位的排班上，已记为代班（原排班：{who}）。"
STAND_IN_TOLD = "【代班记录】{who}于 {at} 在{post}为你值日（{slot}）。"
NOT_STAND_IN = "{who}已于 {at} 在{post}签到（{slot}），你不是代班，本次没有记录签到。"
OWN_POST_ASK = "你本时段的岗位是「{own}」，是要在那里签到吗？回复「是」签到（文字签到），或扫描该岗位二维码。"
OWN_POSTS_LIST = "你本时段的岗位：{own}。请发送「签到 岗位名」或扫描岗位二维码。"
OWN_POST_NOT_TAKEN = "好的，没有签到。需要时请发送「签到 岗位名」或扫描岗位二维码。"
YES_WORDS = {"是", "是的", "对", "对的", "好", "好的", "嗯", "确定", "yes", "y"}
SWAP_USAGE = "请按格式发送：代班 同事姓名 [日期] [时段]，例如：代班 王强 明天 课间"
SWAP_NO_PERSON = "没有找到同事「{name}」。"
SWAP_SELF = "不能请自己代班。"
SWAP_NO_SHIFT = "你在{day}{slot}没有值日安排。"
SWAP_WHICH = "你在{day}有多个值日：{shifts}。请写明时段，例如：代班 {name} {day_short} {example}"
SWAP_BAD = "「{value}」不是日期或时段。日期如：今天、明天、周五、{example}；时段：{slots}"
SWAP_ASKED = "已向{name}发出代班请求：{day} {slot} {post}。对方回复「同意」后生效。"
SWAP_NOT_SENT = "已记录代班请求：{day} {slot} {post}，但{told}请当面告知{name}，对方回复「同意」后生效。"
SWAP_REQUEST = "【代班请求】{who}请你代班：{day} {slot} {post}。回复「同意」接受，「不同意」拒绝。"
SWAP_NONE = "目前没有待你同意的代班请求。"
SWAP_ACCEPTED = "已接受代班：{day} {slot} {post}（原排班：{who}）。请准时到岗签到。"
SWAP_TOLD = "【代班已同意】{who}将代你值日：{day} {slot} {post}。"
SWAP_DECLINED = "已拒绝{who}的代班请求：{day} {slot} {post}。"
SWAP_DECLINED_TOLD = "【代班未同意】{who}不能代你值日：{day} {slot} {post}。请另请同事代班，或按原排班到岗。"
SWAP_WHICH_REQUEST = "你有 {count} 个待答复的代班请求：\n{listing}\n请回复「{verb} 序号」或「{verb} 姓名」，例如：{verb} 1"
SWAP_LISTING = "{n}. {who}：{day} {slot} {post}"
SWAP_NO_MATCH = "没有找到「{choice}」对应的代班请求。"

checkin = Conversation("duty", title="值日签到", keywords=["签到", "打卡"], menu_keys=["CHECKIN"], scenes=["post"],
                       roles=DUTY_ROLES, help=HELP_CHECKIN, gives_way=True, topic="值日", rank=4)
swap = Conversation("duty_swap", title="代班", keywords=["代班"], roles=DUTY_ROLES, help=HELP_SWAP, topic="值日")
ACCEPT, DECLINE = "同意", "不同意"
agree = Conversation("duty_agree", title="答复代班", keywords=[ACCEPT, DECLINE], roles=DUTY_ROLES, gives_way=True)


class CheckinStep:
    OWN_POST = "own_post"


class AgreeStep:
    WHICH = "which"


# -- roster -----------------------------------------------------------------------------------
@dataclass
class Rostered:
    slot: str
    post: DutyPost
    person: Person
    note: str = ""


def rostered_on(db: Session, day: date) -> list[Rostered]:
    """Who is on duty where on `day`: the weekly pattern with that day's overrides applied."""
    plan: dict[tuple[str, int], Rostered] = {}
    for row in db.scalars(select(DutyRoster).where(DutyRoster.weekday == day.weekday())):
        plan[(row.slot, row.post_id)] = Rostered(row.slot, row.post, row.person)
    for over in db.scalars(select(DutyOverride).where(DutyOverride.day == day)):
        plan[(over.slot, over.post_id)] = Rostered(over.slot, over.post, over.person, over.note)
    return sorted(plan.values(), key=lambda r: (r.slot, r.post.name))


def ensure_shift(db: Session, day: date, slot: str, post: DutyPost) -> DutyShift:
    shift = db.scalar(select(DutyShift).where(DutyShift.day == day, DutyShift.slot == slot,
                                              DutyShift.post_id == post.id))
    if shift is None:
        plan = next((r for r in rostered_on(db, day) if r.slot == slot and r.post.id == post.id), None)
        shift = DutyShift(day=day, slot=slot, post=post, post_id=post.id, person=plan.person if plan else None,
                          note=plan.note if plan else "")
        db.add(shift)
        db.flush()
    return shift


def slot_open(slots: list[Slot], now: datetime) -> Slot | None:
    """The slot whose check-in window (10 minutes before its start to its end) holds `now`."""
    for slot in slots:
        start = datetime.combine(now.date(), slot.start, tzinfo=now.tzinfo)
        end = datetime.combine(now.date(), slot.end, tzinfo=now.tzinfo)
        if start - EARLY <= now <= end:
            return slot
    return None


def all_posts(db: Session) -> list[DutyPost]:
    """The posts in use (a 停用 post keeps its rows: its shifts and check-ins are history)."""
    return list(db.scalars(select(DutyPost).where(DutyPost.stopped_at.is_(None)).order_by(DutyPost.name)))


def find_post(db: Session, name: str) -> DutyPost | str:
    posts = all_posts(db)
    exact = [p for p in posts if p.name == name]
    found = exact or [p for p in posts if name in p.name]
    listing = "、".join(p.name for p in posts) or "（尚未登记）"
    if not found:
        return UNKNOWN_POST.format(name=name, posts=listing)
    if len(found) > 1:
        return AMBIGUOUS_POST.format(name=name, posts="、".join(p.name for p in found))
    return found[0]


# -- geofence ---------------------------------------------------------------------------------
def metres_between(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    r = 6371000.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


def fence(db: Session, post: DutyPost) -> tuple[float, float, float] | None:
    """(latitude, longitude, radius) of a post: its own, or the school's geofence."""
    if post.latitude is not None and post.longitude is not None:
        return post.latitude, post.longitude, post.radius or 30.0
    lat, lon = get_setting(db, "school_latitude"), get_setting(db, "school_longitude")
    if not lat or not lon:
        return None
    return float(lat), float(lon), float(get_setting(db, "school_radius") or 200)


# -- check-in ---------------------------------------------------------------------------------
@checkin.entry
def check_in_entry(msg: Incoming, ctx: Context) -> Reply:
    if msg.scene:
        post = ctx.db.get(DutyPost, _scene_id(msg.scene))
        if post is None or post.stopped_at is not None:
            return Reply.end(UNKNOWN_POST.format(name=msg.scene, posts="、".join(p.name for p in all_posts(ctx.db))))
        return check_in(ctx, post, QR)
    if msg.args:
        found = find_post(ctx.db, " ".join(msg.args))
        if isinstance(found, str):
            return Reply.end(found)
        return check_in(ctx, found, TEXT)
    return check_in(ctx, None, TEXT)


def _scene_id(scene: str) -> int:
    value = scene.split(":", 1)[1] if ":" in scene else ""
    return int(value) if value.isdigit() else 0


@checkin.on_event("location", "location_select")
def check_in_by_location(msg: Incoming, ctx: Context) -> Reply | None:
    """A location message (or the menu's location picker) inside a post's fence checks in.
    WeChat's periodic LOCATION report (event "location") is not a check-in: it is ignored."""
    if msg.msg_type == "event" and msg.event != "location_select":
        return None
    if msg.latitude is None or msg.longitude is None:
        return None
    local = ctx.local_now
    slot = slot_open(duty_slots(ctx.db), local)
    posts = all_posts(ctx.db)
    if not posts:
        return Reply.end(NO_POSTS)
    measured = []
    for post in posts:
        area = fence(ctx.db, post)
        if area is not None:
            measured.append((metres_between(msg.latitude, msg.longitude, area[0], area[1]), area[2], post))
    inside = [(d, p) for d, radius, p in measured if d <= radius]
    if not inside:
        if not measured:
            return Reply.end(NO_POSTS)
        d, _, nearest = min(measured, key=lambda m: m[0])
        distance = METRES.format(n=round(d)) if d < 1000 else KILOMETRES.format(n=d / 1000)
        return Reply.end(TOO_FAR.format(post=nearest.name, distance=distance))
    mine = {r.post.id for r in rostered_on(ctx.db, local.date())
            if slot is not None and r.slot == slot.name and ctx.person is not None and r.person.id == ctx.person.id}
    own = [(d, p) for d, p in inside if p.id in mine]
    precise = [(d, p) for d, p in inside if p.latitude is not None]
    choice = min(own or precise or [(0.0, None)], key=lambda m: m[0])  # type: ignore[list-item]
    if choice[1] is None:
        return Reply.end(IN_SCHOOL_ASK)
    return check_in(ctx, choice[1], LOCATION, distance=choice[0])


def check_in(ctx: Context, post: DutyPost | None, method: str, distance: float | None = None) -> Reply:
    person = ctx.person
    assert person is not None
    local = ctx.local_now
    if not Calendar(ctx.db).is_school_day(local.date()):
        return Reply.end(NOT_SCHOOL_DAY)
    slots = duty_slots(ctx.db)
    slot = slot_open(slots, local)
    if slot is None:
        return Reply.end(OUTSIDE_WINDOW.format(slots="、".join(s.label for s in slots)))
    if post is None:
        mine = [r for r in rostered_on(ctx.db, local.date()) if r.slot == slot.name and r.person.id == person.id]
        if not mine:
            return Reply.end(WHICH_POST.format(slot=slot.label, posts="、".join(p.name for p in all_posts(ctx.db))))
        post = mine[0].post
    shift = ensure_shift(ctx.db, local.date(), slot.name, post)
    earlier = next((c for c in shift.checkins if c.person_id == person.id), None)
    if earlier is not None:
        return Reply.end(ALREADY.format(at=f"{earlier.at.astimezone(ctx.settings.tz):%H:%M}", post=post.name,
                                        slot=slot.label))
    stand_in = shift.person_id is not None and shift.person_id != person.id
    rostered_checkin = next((c for c in shift.checkins if c.person_id == shift.person_id), None)
    if stand_in and rostered_checkin is not None and shift.person is not None:
        return _not_a_stand_in(ctx, shift, rostered_checkin, slot)
    ctx.db.add(DutyCheckin(shift=shift, person=person, at=ctx.now, method=method, verified=method != TEXT,
                           stand_in=stand_in, distance=distance))
    extra = ""
    if stand_in and shift.person is not None:
        extra = STAND_IN_NOTE.format(who=shift.person.name)
        ctx.outbox.notify(shift.person, "duty_stand_in", STAND_IN_TOLD.format(
            who=person.name, at=f"{local:%H:%M}", post=post.name, slot=slot.label),
            fields={"post": post.name, "slot": slot.label, "person": person.name})
    how = VERIFIED.format(method=METHOD_NAMES[method]) if method != TEXT else UNVERIFIED
    late = LATE if local.time() > slot.start else ""
    return Reply.end(CHECKED_IN.format(post=post.name, slot=slot.label, at=f"{local:%H:%M}", late=late, how=how,
                                       extra=extra).rstrip())


def _not_a_stand_in(ctx: Context, shift: DutyShift, rostered: DutyCheckin, slot: Slot) -> Reply:
    """The rostered teacher is at this post already: nothing is recorded; perhaps they meant their own."""
    person = ctx.person
    assert person is not None and shift.person is not None
    told = NOT_STAND_IN.format(who=shift.person.name, at=f"{rostered.at.astimezone(ctx.settings.tz):%H:%M}",
                               post=shift.post.name, slot=slot.label)
    done = set(ctx.db.scalars(select(DutyShift.post_id).join(DutyCheckin).where(
        DutyCheckin.person_id == person.id, DutyShift.day == shift.day, DutyShift.slot == slot.name)))
    own = [r.post for r in rostered_on(ctx.db, shift.day)
           if r.slot == slot.name and r.person.id == person.id and r.post.id not in done]
    if len(own) == 1:
        return Reply(told + OWN_POST_ASK.format(own=own[0].name), next=CheckinStep.OWN_POST,
                     data={"post": own[0].id})
    if own:
        return Reply.end(told + OWN_POSTS_LIST.format(own="、".join(p.name for p in own)))
    return Reply.end(told)


@checkin.on(CheckinStep.OWN_POST)
def check_in_at_own_post(msg: Incoming, ctx: Context) -> Reply:
    post = ctx.db.get(DutyPost, int(ctx.data["post"]))
    if post is None or msg.text.lower() not in YES_WORDS:
        return Reply.end(OWN_POST_NOT_TAKEN)
    return check_in(ctx, post, TEXT)


# -- 代班 / 同意 --------------------------------------------------------------------------------
@swap.entry
def request_swap(msg: Incoming, ctx: Context) -> Reply:
    person = ctx.person
    assert person is not None
    if not msg.args:
        return Reply.end(SWAP_USAGE)
    try:
        colleague, rest = find_person(ctx.db, msg.args, DUTY_ROLES)
    except AmbiguousName as ambiguous:
        return Reply.end(ambiguous.message)
    except PersonNotFound:
        return Reply.end(SWAP_NO_PERSON.format(name=msg.args[0]))
    name = " ".join(msg.args[:len(msg.args) - len(rest)])
    if colleague.id == person.id:
        return Reply.end(SWAP_SELF)
    slots = {s.name: s for s in duty_slots(ctx.db)}
    today = ctx.local_now.date()
    day, slot_name = today, ""
    for word in rest:
        if word in slots:
            slot_name = word
            continue
        parsed = parse_day(word, today)
        if parsed is None or parsed < today:
            return Reply.end(SWAP_BAD.format(value=word, slots="、".join(slots),
                                             example=day_short(today + timedelta(days=1))))
        day = parsed
    mine = [r for r in rostered_on(ctx.db, day) if r.person.id == person.id and (not slot_name or r.slot == slot_name)]
    if not mine:
        return Reply.end(SWAP_NO_SHIFT.format(day=day_label(day), slot=slots[slot_name].label if slot_name else ""))
    if len(mine) > 1:
        return Reply.end(SWAP_WHICH.format(day=day_label(day), shifts="、".join(f"{r.slot} {r.post.name}" for r in mine),
                                           name=name, day_short=f"{day.month}月{day.day}日", example=mine[0].slot))
    shift = mine[0]
    slot_label = slots[shift.slot].label if shift.slot in slots else shift.slot
    ctx.db.add(DutySwap(day=day, slot=shift.slot, post=shift.post, from_person=person, to_person=colleague,
                        requested_at=ctx.now))
    named = {"day": day_label(day), "slot": slot_label, "post": shift.post.name}
    notice = ctx.outbox.notify(colleague, "duty_swap_request", SWAP_REQUEST.format(who=person.name, **named),
                               fields={**named, "person": person.name})
    fields = {"name": colleague.name, **named}
    if notice.unreached:
        return Reply.end(SWAP_NOT_SENT.format(**fields, told=told(notice)))
    return Reply.end(SWAP_ASKED.format(**fields))


def pending_swaps(ctx: Context) -> list[DutySwap]:
    """The 代班 requests waiting for the sender's answer, oldest first (the order they are listed in)."""
    person = ctx.person
    assert person is not None
    return list(ctx.db.scalars(select(DutySwap).where(
        DutySwap.to_id == person.id, DutySwap.accepted_at.is_(None), DutySwap.declined_at.is_(None),
        DutySwap.day >= ctx.local_now.date()).order_by(DutySwap.requested_at, DutySwap.id)))


def _swap_fields(ctx: Context, swap: DutySwap) -> dict[str, str]:
    slots = {s.name: s for s in duty_slots(ctx.db)}
    return {"day": day_label(swap.day), "slot": slots[swap.slot].label if swap.slot in slots else swap.slot,
            "post": swap.post.name}


@agree.entry
def answer_swap(msg: Incoming, ctx: Context) -> Reply:
    """同意 / 不同意, optionally naming the request by its number in the list or the asker's name."""
    return _answer(ctx, msg.command, " ".join(msg.args))


@agree.on(AgreeStep.WHICH)
def answer_which_swap(msg: Incoming, ctx: Context) -> Reply:
    """The answer to "which request?": "2" or "张丽" ("同意 2" is a command of its own)."""
    return _answer(ctx, str(ctx.data["verb"]), msg.text)


def _answer(ctx: Context, verb: str, choice: str) -> Reply:
    pending = pending_swaps(ctx)
    if not pending:
        return Reply.end(SWAP_NONE)
    chosen = pending
    if choice.isdigit():
        chosen = pending[int(choice) - 1:int(choice)] if int(choice) >= 1 else []
    elif choice:
        chosen = [p for p in pending if p.from_person.name == choice]
    if len(chosen) == 1:
        return Reply.end(_accept(ctx, chosen[0]) if verb == ACCEPT else _decline(ctx, chosen[0]))
    listing = "\n".join(SWAP_LISTING.format(n=n, who=p.from_person.name, **_swap_fields(ctx, p))
                        for n, p in enumerate(pending, 1))
    asked = SWAP_WHICH_REQUEST.format(count=len(pending), listing=listing, verb=verb)
    return Reply((SWAP_NO_MATCH.format(choice=choice) if not chosen else "") + asked, next=AgreeStep.WHICH,
                 data={"verb": verb})


def _accept(ctx: Context, pending: DutySwap) -> str:
    person = ctx.person
    assert person is not None
    pending.accepted_at = ctx.now
    note = f"代班：{pending.from_person.name}→{person.name}"
    over = ctx.db.scalar(select(DutyOverride).where(DutyOverride.day == pending.day, DutyOverride.slot == pending.slot,
                                                    DutyOverride.post_id == pending.post_id))
    if over is None:
        ctx.db.add(DutyOverride(day=pending.day, slot=pending.slot, post=pending.post, person=person, note=note))
    else:
        over.person, over.note = person, note
    shift = ctx.db.scalar(select(DutyShift).where(DutyShift.day == pending.day, DutyShift.slot == pending.slot,
                                                  DutyShift.post_id == pending.post_id))
    if shift is not None:
        shift.person, shift.note = person, note
    fields = _swap_fields(ctx, pending)
    ctx.outbox.notify(pending.from_person, "duty_swap_accepted", SWAP_TOLD.format(who=person.name, **fields),
                      fields={**fields, "person": person.name})
    return SWAP_ACCEPTED.format(who=pending.from_person.name, **fields)


def _decline(ctx: Context, pending: DutySwap) -> str:
    person = ctx.person
    assert person is not None
    pending.declined_at = ctx.now
    fields = _swap_fields(ctx, pending)
    ctx.outbox.notify(pending.from_person, "duty_swap_declined", SWAP_DECLINED_TOLD.format(who=person.name, **fields),
                      fields={**fields, "person": person.name})
    return SWAP_DECLINED.format(who=pending.from_person.name, **fields)


# -- imports ----------------------------------------------------------------------------------
POST_COLUMNS = {"name": ("岗位", "名称", "岗位名称"), "latitude": ("纬度",), "longitude": ("经度",),
                "radius": ("半径", "范围")}
ROSTER_COLUMNS = {"weekday": ("星期", "周"), "date": ("日期",), "slot": ("时段",), "post": ("岗位",),
                  "teacher": ("教师", "老师", "姓名", "值日教师")}
WEEKDAY_WORDS = {**{f"周{c}": i for i, c in enumerate(WEEKDAYS)}, **{f"星期{c}": i for i, c in enumerate(WEEKDAYS)},
                 **{str(i + 1): i for i in range(7)}, "周天": 6, "星期天": 6,
                 **{n: i for i, n in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun"))}}


# -- posts one at a time (the console; the import does whole tables) ---------------------------
POST_NO_NAME = "请填写岗位名称。"
POST_TOO_LONG = "岗位名称太长了：最多 64 个字。"
POST_TAKEN = "已有岗位「{name}」。"
POST_IN_ROSTER = "岗位「{name}」还在值日表或今后的调整中（{count} 处：{where}），请先清空，再停用。"


class PostProblem(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _post_name(db: Session, name: str, post: DutyPost | None = None) -> str:
    name = tidy(name)
    if not name:
        raise PostProblem(POST_NO_NAME)
    if len(name) > 64:
        raise PostProblem(POST_TOO_LONG)
    same = db.scalar(select(DutyPost).where(DutyPost.name == name))
    if same is not None and same is not post:
        raise PostProblem(POST_TAKEN.format(name=name))
    return name


def add_post(db: Session, name: str) -> DutyPost:
    """A new post (the school's geofence applies until the posts import gives it its own)."""
    post = DutyPost(name=_post_name(db, name))
    db.add(post)
    db.flush()
    return post


def rename_post(db: Session, post: DutyPost, name: str) -> str:
    """A post's new name (its printed QR code stays valid: the code names the post's id). The old name."""
    old, post.name = post.name, _post_name(db, name, post)
    db.flush()
    return old


def stop_post(db: Session, post: DutyPost, today: date, now: datetime) -> None:
    """停用: refused while the weekly roster or an override from today names it; its QR code then answers
    that the post is unknown, its shifts stay for the ledger."""
    cells = [f"周{WEEKDAYS[r.weekday]}{r.slot}" for r in db.scalars(
        select(DutyRoster).where(DutyRoster.post_id == post.id).order_by(DutyRoster.weekday, DutyRoster.slot))]
    cells += [f"{o.day:%m-%d} {o.slot}" for o in db.scalars(
        select(DutyOverride).where(DutyOverride.post_id == post.id, DutyOverride.day >= today)
        .order_by(DutyOverride.day))]
    if cells:
        raise PostProblem(POST_IN_ROSTER.format(name=post.name, count=len(cells), where="、".join(cells[:6])
                                                + ("等" if len(cells) > 6 else "")))
    post.stopped_at = now


def import_posts(db: Session, path: str | Path) -> int:
    rows = read_table(path, POST_COLUMNS, required=("name",))
    problems, parsed = [], []
    for row in rows:
        values: dict[str, float | None] = {}
        bad_number = False
        for key in ("latitude", "longitude", "radius"):
            raw = row.get(key)
            try:
                values[key] = float(raw) if raw else None
            except ValueError:
                bad_number = True
                problems.append(f"第{row.number}行：{POST_COLUMNS[key][0]}「{raw}」不是数字")
        if not bad_number and (values.get("latitude") is None) != (values.get("longitude") is None):
            problems.append(f"第{row.number}行：纬度和经度要一起填写")
        if not row.get("name"):
            problems.append(f"第{row.number}行：岗位名称为空")
        parsed.append((row.get("name"), values))
    if problems:
        raise TableError(problems)
    for name, values in parsed:
        post = db.scalar(select(DutyPost).where(DutyPost.name == name))
        if post is None:
            post = DutyPost(name=name)
            db.add(post)
        post.latitude, post.longitude, post.radius = values.get("latitude"), values.get("longitude"), values.get("radius")
    db.flush()
    return len(parsed)


def import_roster(db: Session, path: str | Path, today: date | None = None) -> int:
    """Rows with 星期 set the weekly pattern; rows with 日期 are dated overrides (a date without a
    year, 12月14日, is the coming one from `today`)."""
    rows = read_table(path, ROSTER_COLUMNS, required=("slot", "post", "teacher"))
    slot_names = {s.name for s in duty_slots(db)}
    problems: list[str] = []
    parsed: list[tuple[int | None, date | None, str, DutyPost, Person]] = []
    for row in rows:
        weekday = WEEKDAY_WORDS.get(row.get("weekday").lower()) if row.get("weekday") else None
        day = row.date("date", today) if row.get("date") else None
        if row.get("date") and day is None:
            problems.append(f"第{row.number}行：日期「{row.get('date')}」格式不对（例：2026-11-24）")
        if weekday is None and day is None and not row.get("date"):
            problems.append(f"第{row.number}行：星期「{row.get('weekday')}」不对（例：周一）或缺少日期")
        if row.get("slot") not in slot_names:
            problems.append(f"第{row.number}行：时段「{row.get('slot')}」不在设置的时段中（{'、'.join(slot_names)}）")
        post = db.scalar(select(DutyPost).where(DutyPost.name == row.get("post")))
        if post is None:
            problems.append(f"第{row.number}行：岗位「{row.get('post')}」未登记（先导入岗位）")
        try:
            teacher: Person | None = resolve_person(db, row.get("teacher"))
        except AmbiguousName as ambiguous:
            teacher = None
            problems.append(f"第{row.number}行：教师{ambiguous.message}")
        except PersonNotFound:
            teacher = None
            problems.append(f"第{row.number}行：教师「{row.get('teacher')}」未登记")
        if post is not None and teacher is not None:
            parsed.append((weekday, day, row.get("slot"), post, teacher))
    if problems:
        raise TableError(problems)
    for weekday, day, slot, post, person in parsed:
        if day is not None:
            over = db.scalar(select(DutyOverride).where(DutyOverride.day == day, DutyOverride.slot == slot,
                                                        DutyOverride.post_id == post.id))
            if over is None:
                db.add(DutyOverride(day=day, slot=slot, post=post, person=person))
            else:
                over.person = person
        else:
            assert weekday is not None
            entry = db.scalar(select(DutyRoster).where(DutyRoster.weekday == weekday, DutyRoster.slot == slot,
                                                       DutyRoster.post_id == post.id))
            if entry is None:
                db.add(DutyRoster(weekday=weekday, slot=slot, post=post, person=person))
            else:
                entry.person = person
    db.flush()
    return len(parsed)


# -- ledger -----------------------------------------------------------------------------------
SHIFT_HEADER = ["日期", "岗位", "时段", "值日教师", "签到人", "方式", "签到时间", "状态", "备注"]
TEACHER_HEADER = ["姓名", "应值日", "按时", "迟到", "缺岗", "被代班", "为他人代班"]
ON_TIME, LATE_STATUS, MISSED, STOOD_IN = "按时", "迟到", "缺岗", "代班"


def shift_status(shift: DutyShift, slots: dict[str, Slot], tz: tzinfo) -> tuple[str, DutyCheckin | None]:
    first = shift.checkins[0] if shift.checkins else None
    if first is None:
        return MISSED, None
    if first.stand_in:
        return STOOD_IN, first
    slot = slots.get(shift.slot)
    local = first.at.astimezone(tz)
    return (ON_TIME if slot is None or local.time() <= slot.start else LATE_STATUS), first


def duty_ledger(db: Session, first: date, tz: tzinfo,
                after: date | None = None) -> tuple[list[list[object]], list[list[object]]]:
    """The month's 值日台账 (or from `first` to `after`, a term) and the per-teacher summary."""
    after = after or month_span(first)[1]
    slots = {s.name: s for s in duty_slots(db)}
    order = {name: i for i, name in enumerate(slots)}
    shifts = sorted(db.scalars(select(DutyShift).where(DutyShift.day >= first, DutyShift.day < after)),
                    key=lambda s: (s.day, order.get(s.slot, 99), s.post.name))
    rows: list[list[object]] = []
    summary: dict[str, list[int]] = {}
    for shift in shifts:
        status, check = shift_status(shift, slots, tz)
        rostered = shift.person.name if shift.person else ""
        how = ""
        if check is not None:
            how = METHOD_NAMES[check.method] + ("" if check.verified else "（未验证）")
        at = local_naive(check.at, tz) if check else None
        rows.append([shift.day, shift.post.name, slots[shift.slot].label if shift.slot in slots else shift.slot,
                     rostered, check.person.name if check else "", how, at,
                     f"{STOOD_IN}（{check.person.name}）" if status == STOOD_IN and check else status, shift.note])
        if rostered:
            counts = summary.setdefault(rostered, [0, 0, 0, 0, 0, 0])
            counts[0] += 1
            counts[{ON_TIME: 1, LATE_STATUS: 2, MISSED: 3, STOOD_IN: 4}[status]] += 1
        if status == STOOD_IN and check is not None:
            summary.setdefault(check.person.name, [0, 0, 0, 0, 0, 0])[5] += 1
    teachers: list[list[object]] = [[name, *counts] for name, counts in sorted(summary.items())]
    return rows, teachers
