"""School bus (校车): headcounts per trip against the roster, the left-on-bus alarm and its 确认,
leave (请假/销假), parents' arrival notices (订阅 校车), and the routes import.

Before 12:00 a report is for the morning trip (上学: children board at stops, alight at school),
after it for the afternoon trip (放学). Expected = the route's students less those on leave.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, tzinfo
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload

from bot.engine import Context, Conversation, Incoming, Reply
from bot.outbox import Outbox, told
from bot.school import admins, setting_person
from bot.tables import TableError, read_table
from bot.text import (
    asks_how,
    day_label,
    day_short,
    local_naive,
    month_span,
    normalize,
    original_tail,
    parse_day,
    parse_number,
    route_key,
    split_list,
    tidy,
    without_emoji,
)
from models import Delivery, ParentLink, Person, Student
from models.bus import (
    AFTERNOON,
    BOARD,
    MORNING,
    TRIP_NAMES,
    BusAlarm,
    BusCountNotice,
    BusLeave,
    BusRoute,
    BusStop,
    BusSubscription,
    BusTrip,
    route_label,
)

MAX_COUNT = 200
NOON = time(12, 0)
LEAVE_HORIZON = timedelta(days=31)

HELP_COUNT = "校车 线路 上车|下车 人数 — 报告本趟校车人数（也可语音：三号线上车四十二人）"
HELP_ACK = "确认 [线路] [情况] — 确认校车警报并记录检查情况（管理员、校车管理）"
HELP_LEAVE = "请假 孩子姓名 [今天|明天|日期] [上学|放学|全天] — 孩子不坐校车；销假 孩子姓名 [日期] — 撤销"
HELP_SUBSCRIBE = "订阅 校车 / 退订 校车 — 孩子的上学校车到校时通知我"

COUNT_USAGE = "请按格式发送：校车 线路 上车|下车 人数，例如：校车 3号线 上车 42"
UNKNOWN_ROUTE = "没有找到线路「{route}」。现有线路：{routes}。"
BAD_COUNT = "人数「{value}」不对：请填写 0 到 200 之间的整数。"
COUNT_REPLY = "{route} {trip}趟 上车：应到 {expected} 人，实到 {count} 人，{diff}。{extra}"
ALIGHT_REPLY = "{route} {trip}趟 下车：上车 {boarded} 人，下车 {count} 人，{diff}。{extra}"
ALIGHT_ONLY_REPLY = "{route} {trip}趟 下车：实到 {count} 人。{extra}"
REPLACED = "（已更新，之前报告为 {old} 人）"
DIFF_NONE = "人数相符"
DIFF_FEWER = "少 {n} 人"
DIFF_MORE = "多 {n} 人"
MISMATCH_TOLD = "请校车管理和管理员核对名单：{told}"
MISMATCH_ALERT = ("【校车人数不符】{route} {trip}趟上车 {count} 人，应到 {expected} 人（{diff}）。报告人：{who}。\n"
                  "应乘车学生：{names}{leave}")
MISMATCH_UNCHANGED = "与上次报告的差异相同，不再重复通知。"
CORRECTED = "【校车人数更正】{route} {trip}趟上车 {count} 人，应到 {expected} 人。已更正：人数相符。报告人：{who}。"
CORRECTION_TOLD = "之前的人数不符提醒已更正：{told}"
ALARM_HEADING = "【校车警报】"
ALARM_TEXT = (ALARM_HEADING + "{route} {trip}趟下车 {alighted} 人，少于上车 {boarded} 人：可能有 {missing} 名学生仍在车上！"
              "请立即检查车厢。车牌 {plate}，司机 {driver}，跟车老师 {monitors}。"
              "处理后发送「确认 {number}号线 情况」。")
CONTACT = "{name} {phone}"
CONTACT_NO_PHONE = "{name}（电话未登记）"
NOT_REGISTERED = "未登记"
ALARM_STILL_OPEN = "本趟下车少 {missing} 人的警报仍未确认，每5分钟继续提醒（不重复新建警报）。"
ALARM_OPEN_AFTER_MATCH = "本趟之前的警报仍待确认：请管理员或校车管理检查车厢后发送「确认 {number}号线 情况」。"
ALARM_REPEAT = "【校车警报·第{n}次提醒】"
ALARM_TOLD = "⚠ 下车人数少于上车人数！请立即检查车厢每一排座位。{told}每5分钟提醒直到确认。"
DATA_ERROR = "下车人数多于上车人数（{alighted} > {boarded}），请核对后重新报告。"
NO_BOARD_YET = "本趟还没有上车人数，请补报：校车 {number}号线 上车 人数。"
ACK_NONE = "{route}目前没有未确认的警报。"
ACK_NOTHING_OPEN = "目前没有未确认的校车警报。"
ACK_WHICH = "有 {count} 条线路的警报未确认：\n{listing}\n请回复要确认的线路，例如：{example}。"
ACK_WHICH_LINE = "{route}（{alarms}）"
ACK_WHICH_ALARM = "{trip}趟 {at} 少{missing}人"
ACK_WHICH_AGAIN = "请回复上面列出的线路（{choices}），或发送「取消」。"
ACK_DONE = "已确认{route}警报（{count}条），确认人：{who}，时间 {at}。{found}{told}"
ACK_FOUND = "情况：{note}。"
ACK_NO_NOTE = "未填写情况（可写在线路后，例如：确认 {number}号线 后排发现学生睡着了，已送回家）。"
ACK_TOLD = "【校车警报已确认】{route} {trip}趟警报已由{who}于 {at} 确认。{found}"
ACK_TOLD_NO_NOTE = "（未填写情况）"
ACK_REFUSED = "抱歉，「确认」仅限管理员和校车管理负责人使用。"
ARRIVAL = "【到校通知】{student}乘坐的{route}校车已于 {at} 到校。"
LEAVE_USAGE = "请按格式发送：请假 孩子姓名 [今天|明天|日期] [上学|放学|全天]，例如：请假 陈小明 明天 上学"
LEAVE_NO_CHILD = "没有找到你关联的学生「{name}」。你关联的学生：{mine}。"
LEAVE_NO_STUDENT = "没有找到学生「{name}」。"
LEAVE_AMBIGUOUS = "有多名学生叫「{name}」（{classes}），请写成「班级+姓名」，例如：{example}"
LEAVE_BAD_DAY = "日期「{value}」不对：请写今天、明天、后天、周五或日期（如 {example}），且在今后一个月内。"
LEAVE_WHICH_CHILD = "请写明是哪个孩子（{names}），例如：请假 {first} 明天。"
LEAVE_NO_ROUTE = "{name}没有登记校车线路，无需请假。"
LEAVE_DONE = "已为{name}请假：{day} {trips}校车不乘坐。发送「销假 {name} {day_short}」可撤销。"
UNLEAVE_DONE = "已为{name}销假：{day} 照常乘坐校车。"
UNLEAVE_NONE = "{name}在{day}没有校车请假记录。"
SUBSCRIBED = "已订阅：{names}的上学校车到校时会通知你。发送「退订 校车」取消。"
UNSUBSCRIBED = "已退订校车到校通知。"
SUBSCRIBE_USAGE = "请发送「订阅 校车」或「退订 校车」。"
NO_CHILD_ON_BUS = "你关联的学生都没有登记校车线路。"

TRIP_WORDS = {"上学": MORNING, "早上": MORNING, "上午": MORNING, "放学": AFTERNOON, "下午": AFTERNOON,
              "全天": "all", "全日": "all"}
LEAVE_CUES = ("请假", "不坐", "不乘")
LEAVE_SENTENCE = re.compile(r"请假|不(?:坐|乘坐?)(?:校车|车)")  # 明天小明不坐校车, 明天请假
DAY_WORDS = re.compile(r"今天|明天|后天|(?:下下|下个?|本|这个?)?(?:周|星期|礼拜)[一二三四五六日天]"
                       r"|\d{1,2}月\d{1,2}[日号]?|\d{1,2}[-/]\d{1,2}")
TRIP_LABEL = {MORNING: "上学", AFTERNOON: "放学", "all": "全天（上学、放学）"}
_COUNT_WORDS = r"(?:人数|共|一共|总共)?\s*[:：]?\s*"
COUNT_PATTERNS = (  # every way a headcount is written: 3号线上车42, 三号线 上车：四十二人, 3号线 42人上车
    re.compile(rf"^(?:校车\s*)?(?P<route>.+?)\s*(?P<dir>上车|下车)\s*{_COUNT_WORDS}(?P<n>\S+?)\s*(?:人|名)?[。.!]?$"),
    re.compile(r"^(?:校车\s*)?(?P<route>\S+?(?:号线|号|线|路))\s*(?P<n>[0-9零一二两三四五六七八九十百]+)\s*(?:人|名)?\s*"
               r"(?P<dir>上车|下车)[。.!]?$"),
)

bus = Conversation("bus", title="校车点名", keywords=["校车"], roles={"bus_monitor", "admin"}, help=HELP_COUNT,
                   topic="校车", rank=1, cues=("上车", "下车"))
ack = Conversation("bus_ack", title="确认校车警报", keywords=["确认"], roles={"admin"}, help=HELP_ACK,
                   permits=lambda ctx: manages_buses(ctx), refusal=ACK_REFUSED, gives_way=True,
                   topic="校车", rank=2)
leave = Conversation("bus_leave", title="校车请假", keywords=["请假", "销假"], roles={"parent", "teacher", "admin"},
                     help=HELP_LEAVE, topic="校车", rank=2, cues=LEAVE_CUES)
subscription = Conversation("bus_subscribe", title="校车到校通知", keywords=["订阅", "退订"], roles={"parent"},
                            help=HELP_SUBSCRIBE, topic="校车", rank=5)


# -- routes and rosters -------------------------------------------------------------------------
def all_routes(db: Session) -> list[BusRoute]:
    """The routes in service (a 停运 route keeps its rows for the ledgers, and is no longer run)."""
    return list(db.scalars(select(BusRoute).where(BusRoute.stopped_at.is_(None)).order_by(BusRoute.number)))


def find_route(db: Session, text: str) -> BusRoute | None:
    key = route_key(text)
    for route in all_routes(db):
        if key == route.number or key in {route_key(a) for a in route.aliases.split(";") if a}:
            return route
    return None


def trip_of(local: datetime) -> str:
    return MORNING if local.time() < NOON else AFTERNOON


def on_leave(db: Session, day: date, trip: str) -> set[int]:
    leaves = db.scalars(select(BusLeave).where(BusLeave.day == day, BusLeave.cancelled_at.is_(None)))
    return {lv.student_id for lv in leaves if lv.covers(trip)}


def riders(db: Session, route: BusRoute, day: date, trip: str) -> tuple[list[Student], list[Student]]:
    """The route's students expected on this trip, and those on leave."""
    roster = list(db.scalars(select(Student).where(Student.route == route.number).order_by(Student.name)))
    away = on_leave(db, day, trip)
    return [s for s in roster if s.id not in away], [s for s in roster if s.id in away]


def trip_row(db: Session, route: BusRoute, day: date, trip: str) -> BusTrip:
    row = db.scalar(select(BusTrip).where(BusTrip.route_id == route.id, BusTrip.day == day, BusTrip.trip == trip))
    if row is None:
        row = BusTrip(route=route, route_id=route.id, day=day, trip=trip)
        db.add(row)
    return row


def bus_manager(db: Session) -> Person | None:
    return setting_person(db, "bus_manager")


def is_bus_manager(db: Session, person_id: int | None) -> bool:
    manager = bus_manager(db)
    return manager is not None and person_id is not None and manager.id == person_id


def manages_buses(ctx: Context) -> bool:
    """The sender is the bus manager named in settings; with none named (most schools), known from the
    setting read with the message, without a session (every 帮助 of a bound teacher asks)."""
    return bool(ctx.setting("bus_manager")) and is_bus_manager(ctx.db, ctx.person_id)


def bus_responsible(db: Session) -> list[Person]:
    """Who hears about bus anomalies: the bus manager and the admins."""
    manager = bus_manager(db)
    return ([manager] if manager else []) + admins(db)


def monitors_of(db: Session, route: BusRoute) -> list[Person]:
    names = route.monitor_names
    return list(db.scalars(select(Person).where(Person.name.in_(names)))) if names else []


# -- 校车 <线路> 上车|下车 <人数> ------------------------------------------------------------------
def count_match(text: str) -> re.Match[str] | None:
    return next((m for m in (p.match(text) for p in COUNT_PATTERNS) if m is not None), None)


@bus.entry
def report(msg: Incoming, ctx: Context) -> Reply:
    match = count_match(" ".join(msg.args))
    if not msg.args or match is None:
        return Reply.end(COUNT_USAGE)
    return record(ctx, match) or Reply.end(COUNT_USAGE)


@bus.on_event("text", "voice")
def report_without_keyword(msg: Incoming, ctx: Context) -> Reply | None:
    """"3号线上车42" or a voice message "三号线上车四十二人": a headcount if it names a route, or
    something written as one (3号线, 三路: an unknown route gets the list of routes)."""
    match = count_match(without_emoji(msg.text).removeprefix("今天").strip())  # 今天1号线上车3人 👌
    if match is None or (find_route(ctx.db, match["route"]) is None and not route_key(match["route"]).isdigit()):
        return None
    return record(ctx, match)


def record(ctx: Context, match: re.Match[str]) -> Reply | None:
    route = find_route(ctx.db, match["route"])
    if route is None:
        names = "、".join(r.label for r in all_routes(ctx.db)) or "（尚未导入）"
        key = route_key(match["route"])
        return Reply.end(UNKNOWN_ROUTE.format(route=key if key.isdigit() else match["route"], routes=names))
    count = parse_number(match["n"])
    if count is None or not 0 <= count <= MAX_COUNT:
        return Reply.end(BAD_COUNT.format(value=match["n"]))
    local = ctx.local_now
    trip = trip_row(ctx.db, route, local.date(), trip_of(local))
    expected, away = riders(ctx.db, route, trip.day, trip.trip)
    trip.expected = len(expected)
    fields = {"route": route.label, "trip": TRIP_NAMES[trip.trip], "count": count}
    if match["dir"] == BOARD:
        old, trip.boarded, trip.boarded_at, trip.boarded_by = trip.boarded, count, ctx.now, ctx.person
        extra = _after_boarding(ctx, trip, expected, away)
        text = COUNT_REPLY.format(expected=trip.expected, diff=difference(count, trip.expected), extra=extra, **fields)
    else:
        old, trip.alighted, trip.alighted_at, trip.alighted_by = trip.alighted, count, ctx.now, ctx.person
        extra = _after_alighting(ctx, trip, expected)
        text = (ALIGHT_ONLY_REPLY.format(extra=extra, **fields) if trip.boarded is None else
                ALIGHT_REPLY.format(boarded=trip.boarded, diff=difference(count, trip.boarded), extra=extra, **fields))
    if old is not None:
        text += REPLACED.format(old=old)
    return Reply.end(text)


def difference(count: int, reference: int) -> str:
    """少 1 人 / 多 2 人 / 人数相符: `count` against `reference`, as the reply's other figures show."""
    if count == reference:
        return DIFF_NONE
    return (DIFF_FEWER if count < reference else DIFF_MORE).format(n=abs(count - reference))


def _after_boarding(ctx: Context, trip: BusTrip, expected: list[Student], away: list[Student]) -> str:
    """Tell the office of a mismatch once per difference, and of its correction to those who were told."""
    assert trip.boarded is not None and trip.expected is not None
    diff = trip.boarded - trip.expected
    believed = trip.count_notices[-1].diff if trip.count_notices else 0  # what the office believes now
    if diff == believed:
        return MISMATCH_UNCHANGED if diff else ""
    who = ctx.person.name if ctx.person else "未知"
    fields = {"route": trip.route.label, "trip": TRIP_NAMES[trip.trip], "count": trip.boarded,
              "expected": trip.expected, "who": who}
    if diff == 0:
        alerted = _told_of_mismatch(ctx.db, trip)
        notice = ctx.outbox.notify(alerted, "bus_mismatch", CORRECTED.format(**fields), safety=True,
                                   fields=count_fields(fields))
        reply = CORRECTION_TOLD.format(told=told(notice)) if notice.anybody else ""
    else:
        leave = f"\n今日请假：{'、'.join(s.name for s in away)}" if away else ""
        notice = ctx.outbox.notify(bus_responsible(ctx.db), "bus_mismatch", MISMATCH_ALERT.format(
            diff=difference(trip.boarded, trip.expected), leave=leave,
            names="、".join(f"{s.name}（{s.stop or s.class_name}）" for s in expected) or "无", **fields), safety=True,
            fields=count_fields(fields))
        trip.mismatch_alerted_at = ctx.now
        reply = MISMATCH_TOLD.format(told=told(notice))
    ctx.db.add(BusCountNotice(trip=trip, boarded=trip.boarded, expected=trip.expected, diff=diff, push=notice.push,
                              sent_at=ctx.now))
    return reply


def _told_of_mismatch(db: Session, trip: BusTrip) -> list[Person]:
    """Who got the trip's mismatch alerts since the office last heard the count was right."""
    push_ids: list[int] = []
    for notice in trip.count_notices:
        if notice.diff == 0:
            push_ids.clear()
        elif notice.push_id is not None:
            push_ids.append(notice.push_id)
    if not push_ids:
        return []
    person_ids = select(Delivery.person_id).where(Delivery.push_id.in_(push_ids))
    return list(db.scalars(select(Person).where(Person.id.in_(person_ids)).order_by(Person.id)))


def _after_alighting(ctx: Context, trip: BusTrip, expected: list[Student]) -> str:
    assert trip.alighted is not None
    if trip.boarded is None:
        return NO_BOARD_YET.format(number=trip.route.number)
    if trip.alighted > trip.boarded:
        trip.data_error = DATA_ERROR.format(alighted=trip.alighted, boarded=trip.boarded)
        return trip.data_error
    trip.data_error = ""
    still_open = [a for a in trip.alarms if a.acknowledged_at is None]
    if trip.alighted < trip.boarded:
        missing = trip.boarded - trip.alighted
        if any(a.missing == missing for a in still_open):  # the same report again: the alarm already repeats
            return ALARM_STILL_OPEN.format(missing=missing)
        alarm = BusAlarm(trip=trip, missing=missing, raised_at=ctx.now, last_pushed_at=ctx.now)
        ctx.db.add(alarm)
        notice = ctx.outbox.notify(bus_responsible(ctx.db), "bus_alarm", alarm_text(ctx.db, alarm), safety=True,
                                   fields=alarm_fields(ctx.db, alarm))
        return ALARM_TOLD.format(told=told(notice))
    if trip.trip == MORNING and trip.arrival_notified_at is None:
        _notify_arrival(ctx, trip, expected)
    return ALARM_OPEN_AFTER_MATCH.format(number=trip.route.number) if still_open else ""


def contact(name: str, phone: str) -> str:
    return (CONTACT if phone else CONTACT_NO_PHONE).format(name=name, phone=phone)


def alarm_text(db: Session, alarm: BusAlarm) -> str:
    """The left-on-bus alarm, naming whom to call: the driver and the monitors, with their phones."""
    trip = alarm.trip
    route = trip.route
    registered = {p.name: p for p in monitors_of(db, route)}
    monitors = "、".join(contact(name, registered[name].phone if name in registered else "")
                         for name in route.monitor_names) or NOT_REGISTERED
    driver = contact(route.driver, route.driver_phone) if route.driver else NOT_REGISTERED
    text = ALARM_TEXT.format(route=route.label, trip=TRIP_NAMES[trip.trip], alighted=trip.alighted,
                             boarded=trip.boarded, missing=alarm.missing, plate=route.plate or NOT_REGISTERED,
                             driver=driver, monitors=monitors, number=route.number)
    # the repeat's heading replaces the alarm's own: 【校车警报·第2次提醒】…, not 【校车警报·第2次提醒】【校车警报】…
    return ALARM_REPEAT.format(n=alarm.pushes) + text.removeprefix(ALARM_HEADING) if alarm.pushes > 1 else text


def alarm_fields(db: Session, alarm: BusAlarm) -> dict[str, str]:
    """A bus alarm's named fields (bot.push_kinds): the route, plate, how many are missing, whom to call."""
    route = alarm.trip.route
    return {"route": route.label, "plate": route.plate or NOT_REGISTERED, "missing": str(alarm.missing),
            "contact": contact(route.driver, route.driver_phone) if route.driver else NOT_REGISTERED}


def count_fields(fields: dict[str, object]) -> dict[str, object]:
    """A headcount push's named fields (bot.push_kinds): route, trip, count and expected."""
    return {k: fields[k] for k in ("route", "trip", "count", "expected")}


def _notify_arrival(ctx: Context, trip: BusTrip, expected: list[Student]) -> None:
    trip.arrival_notified_at = ctx.now
    at = f"{ctx.local_now:%H:%M}"
    subscribed = set(ctx.db.scalars(select(BusSubscription.person_id)))
    for student in expected:
        parents = [link.person for link in student.parents if link.person_id in subscribed]
        ctx.outbox.notify(parents, "bus_arrival", ARRIVAL.format(student=student.name, route=trip.route.label, at=at),
                          fields={"student": student.name, "route": trip.route.label})


# -- 确认 [线路] [情况] ------------------------------------------------------------------------
class AckStep:
    WHICH = "which"


def open_alarms(db: Session) -> list[BusAlarm]:
    return list(db.scalars(select(BusAlarm).where(BusAlarm.acknowledged_at.is_(None)).order_by(BusAlarm.id)))


@ack.entry
def acknowledge(msg: Incoming, ctx: Context) -> Reply:
    """确认 1号线 [情况]; 确认 [情况] when one route has open alarms (with several, asks which)."""
    args = msg.args
    route = find_route(ctx.db, args[0]) if args else None
    if args and route is None and route_key(args[0]).isdigit():
        names = "、".join(r.label for r in all_routes(ctx.db)) or "（尚未导入）"
        return Reply.end(UNKNOWN_ROUTE.format(route=args[0], routes=names))
    note = _note(msg, args[1:] if route is not None else args)
    asked = ctx.sender.state
    if not note and asked is not None and asked.conversation == ack.name:  # "确认 2号线" answering which
        note = str(asked.data.get("note", ""))
    if route is not None:
        return Reply.end(_acknowledge(ctx, route, note))
    routes = list({a.trip.route.id: a.trip.route for a in open_alarms(ctx.db)}.values())
    if not routes:
        return Reply.end(ACK_NOTHING_OPEN)
    if len(routes) == 1:
        return Reply.end(_acknowledge(ctx, routes[0], note))
    return Reply(_which_alarm(ctx, routes), next=AckStep.WHICH, data={"note": note, "routes": [r.id for r in routes]})


@ack.on(AckStep.WHICH)
def acknowledge_which(msg: Incoming, ctx: Context) -> Reply:
    """The answer to "which route?": one of the listed routes, optionally followed by the 情况."""
    words = msg.text.split(" ")
    listed = [r for r in (ctx.db.get(BusRoute, i) for i in ctx.data["routes"]) if r is not None]
    chosen = find_route(ctx.db, words[0]) if words[0] else None
    route = next((r for r in listed if r is chosen), None)
    if route is None:
        return Reply(ACK_WHICH_AGAIN.format(choices="、".join(r.label for r in listed)), next=AckStep.WHICH)
    return Reply.end(_acknowledge(ctx, route, _note(msg, words[1:]) or str(ctx.data.get("note", ""))))


def _note(msg: Incoming, words: list[str]) -> str:
    """What the acknowledger found, in their own characters."""
    original = str(msg.raw.get("Content") or msg.text) if msg.msg_type == "text" else msg.text
    return original_tail(original, " ".join(words))


def _which_alarm(ctx: Context, routes: list[BusRoute]) -> str:
    lines = []
    for route in routes:
        alarms = [a for a in open_alarms(ctx.db) if a.trip.route_id == route.id]
        lines.append(ACK_WHICH_LINE.format(route=route.label, alarms="；".join(ACK_WHICH_ALARM.format(
            trip=TRIP_NAMES[a.trip.trip], at=f"{a.raised_at.astimezone(ctx.settings.tz):%H:%M}", missing=a.missing)
            for a in alarms)))
    return ACK_WHICH.format(count=len(routes), listing="\n".join(lines), example=routes[0].label)


def _acknowledge(ctx: Context, route: BusRoute, note: str) -> str:
    return acknowledge_route(ctx.db, ctx.outbox, route, ctx.person, note, ctx.now, ctx.settings.tz)


def acknowledge_route(db: Session, outbox: Outbox, route: BusRoute, person: Person | None, note: str, now: datetime,
                      tz: tzinfo) -> str:
    """Acknowledge the route's open alarms with what was found; tell the monitors who raised them and
    everyone else the alarm went to. The chat's 确认 and the console's 确认 both come here."""
    alarms = [a for a in open_alarms(db) if a.trip.route_id == route.id]
    if not alarms:
        return ACK_NONE.format(route=route.label)
    who = person.name if person else "未知"
    at = f"{now.astimezone(tz):%H:%M}"
    raisers = [a.trip.alighted_by for a in alarms if a.trip.alighted_by is not None]
    for alarm in alarms:
        alarm.acknowledged_at, alarm.acknowledged_by, alarm.note = now, person, note
    others = [p for p in {p.id: p for p in raisers + bus_responsible(db)}.values()
              if person is None or p.id != person.id]
    trips = "、".join(dict.fromkeys(TRIP_NAMES[a.trip.trip] for a in alarms))
    notice = outbox.notify(others, "bus_alarm_ack", ACK_TOLD.format(
        route=route.label, trip=trips, who=who, at=at,
        found=ACK_FOUND.format(note=note) if note else ACK_TOLD_NO_NOTE), safety=True,
        fields={"route": route.label, "trip": trips, "person": who})
    return ACK_DONE.format(route=route.label, count=len(alarms), who=who, at=at,
                           found=ACK_FOUND.format(note=note) if note else ACK_NO_NOTE.format(number=route.number),
                           told=told(notice) if notice.anybody else "")


# -- 请假 / 销假 -------------------------------------------------------------------------------
def given_names(student: Student) -> set[str]:
    """What a parent may call their child besides the full name: the given name (陈小明 → 小明)."""
    return {student.name[1:]} if len(student.name) >= 3 else set()


def _my_children(ctx: Context) -> list[Student]:
    person = ctx.person
    assert person is not None
    return list(ctx.db.scalars(select(Student).join(ParentLink).where(ParentLink.person_id == person.id)
                               .order_by(Student.id)))


def _own_child(mine: list[Student], name: str) -> Student | str:
    """The child `name` names among a parent's own: full name, class + name, given name, or a part of the
    name (two characters or more) that only one of them has."""
    found = [s for s in mine if name in (s.name, f"{s.class_name}{s.name}")]
    if not found:
        found = [s for s in mine if name in given_names(s) or (len(name) >= 2 and name in s.name)]
    if len(found) == 1:
        return found[0]
    if found:
        return which_child(found)
    return LEAVE_NO_CHILD.format(name=name, mine="、".join(s.name for s in mine) or "无")


def which_child(children: list[Student]) -> str:
    return LEAVE_WHICH_CHILD.format(names="、".join(s.name for s in children), first=children[0].name)


def find_student(ctx: Context, name: str) -> Student | str:
    """The student a sender may act for, or the answer explaining why not."""
    if not ctx.has_role("teacher", "admin"):
        return _own_child(_my_children(ctx), name)
    candidates = [s for s in ctx.db.scalars(select(Student).where(Student.name == name))]
    if not candidates:
        candidates = [s for s in ctx.db.scalars(select(Student)) if f"{s.class_name}{s.name}" == name]
    if not candidates:
        return LEAVE_NO_STUDENT.format(name=name)
    if len(candidates) > 1:
        return LEAVE_AMBIGUOUS.format(name=name, classes="、".join(s.class_name for s in candidates),
                                      example=f"请假 {candidates[0].class_name}{name}")
    return candidates[0]


def bad_day(word: str, today: date) -> str:
    """Why `word` is no day to take leave on, with an example that is one (tomorrow, from the clock)."""
    return LEAVE_BAD_DAY.format(value=word, example=day_short(today + timedelta(days=1)))


def split_trip(word: str) -> list[str]:
    """A day glued to its trip, as people write it: 明天早上 → [明天, 早上]; any other word → [word]."""
    trip = next((t for t in TRIP_WORDS if len(word) > len(t) and word.endswith(t)), None)
    return [word[:-len(trip)], trip] if trip else [word]


@leave.entry
def request_leave(msg: Incoming, ctx: Context) -> Reply:
    if not msg.args:
        return Reply.end(LEAVE_USAGE)
    today = ctx.local_now.date()
    first = split_trip(msg.args[0])[0]
    words = [w for word in msg.args[1:] for w in split_trip(word)]
    if not ctx.has_role("teacher", "admin") and (first in TRIP_WORDS or parse_day(first, today)):
        mine = _my_children(ctx)  # 请假 明天: a parent's only child
        found: Student | str = mine[0] if len(mine) == 1 else (which_child(mine) if mine else LEAVE_USAGE)
        words = [w for word in msg.args for w in split_trip(word)]
    else:
        found = find_student(ctx, msg.args[0])
    if isinstance(found, str):
        return Reply.end(found)
    day, trips = today, "all"
    for word in words:
        if word in TRIP_WORDS:
            trips = TRIP_WORDS[word]
            continue
        parsed = parse_day(word, today)
        if parsed is None or not today <= parsed <= today + LEAVE_HORIZON:
            return Reply.end(bad_day(word, today))
        day = parsed
    return Reply.end(_leave(ctx, found, day, trips, cancelling=msg.command == "销假"))


@leave.on_event("text", "voice")
def leave_sentence(msg: Incoming, ctx: Context) -> Reply | None:
    """A parent's sentence: 「明天小明不坐校车」「小明周五请假」「明天请假」 (one child: theirs). The child is
    named as 请假 allows, or not at all when they have one; the day is 今天 unless one is named."""
    text = msg.text.replace(" ", "")
    if (not LEAVE_SENTENCE.search(text) or asks_how(text) or ctx.has_role("teacher", "admin")
            or not ctx.has_role("parent")):
        return None
    mine = _my_children(ctx)
    if not mine:
        return None
    named = [s for s in mine if any(n in text for n in (s.name, *given_names(s)))]
    if len(named) != 1 and len(mine) != 1:
        return Reply.end(which_child(named or mine))
    student = named[0] if len(named) == 1 else mine[0]
    today = ctx.local_now.date()
    day = today
    for word in DAY_WORDS.findall(text):
        parsed = parse_day(word, today)
        if parsed is None or not today <= parsed <= today + LEAVE_HORIZON:
            return Reply.end(bad_day(word, today))
        day = parsed
    trips = next((TRIP_WORDS[w] for w in TRIP_WORDS if w in text), "all")
    return Reply.end(_leave(ctx, student, day, trips, cancelling=False))


def _leave(ctx: Context, student: Student, day: date, trips: str, cancelling: bool) -> str:
    if cancelling:
        leaves = list(ctx.db.scalars(select(BusLeave).where(
            BusLeave.student_id == student.id, BusLeave.day == day, BusLeave.cancelled_at.is_(None))))
        if not leaves:
            return UNLEAVE_NONE.format(name=student.name, day=day_label(day))
        for lv in leaves:
            cancel_leave(lv, ctx.now)
        return UNLEAVE_DONE.format(name=student.name, day=day_label(day))
    return take_leave(ctx, student, day, trips)


def take_leave(ctx: Context, student: Student, day: date, trips: str) -> str:
    """请假 for `student` on `day` (am | pm | all), asked by ctx's person: the chat's 请假 and the console's.
    The day's expected count drops by the student (riders()). Refused, with the reply, without a route."""
    if not student.route:
        return LEAVE_NO_ROUTE.format(name=student.name)
    ctx.db.add(BusLeave(student=student, day=day, trips=trips, requested_by=ctx.person, created_at=ctx.now))
    return LEAVE_DONE.format(name=student.name, day=day_label(day), trips=TRIP_LABEL[trips], day_short=day_short(day))


def cancel_leave(leave: BusLeave, now: datetime) -> None:
    """销假 of one leave: kept, marked cancelled (the ledger shows it as 已销假)."""
    leave.cancelled_at = now


# -- 订阅 校车 / 退订 校车 -----------------------------------------------------------------------
@subscription.entry
def subscribe(msg: Incoming, ctx: Context) -> Reply:
    if msg.args != ["校车"]:
        return Reply.end(SUBSCRIBE_USAGE)
    person = ctx.person
    assert person is not None
    current = ctx.db.get(BusSubscription, person.id)
    if msg.command == "退订":
        if current is not None:
            ctx.db.delete(current)
        return Reply.end(UNSUBSCRIBED)
    children = [s for s in ctx.db.scalars(select(Student).join(ParentLink).where(ParentLink.person_id == person.id))
                if s.route]
    if not children:
        return Reply.end(NO_CHILD_ON_BUS)
    if current is None:
        ctx.db.add(BusSubscription(person_id=person.id, created_at=ctx.now))
    return Reply.end(SUBSCRIBED.format(names="、".join(s.name for s in children)))


# -- routes, stops and riders one at a time (the console; the import replaces whole routes) ---------
ROUTE_BAD_NUMBER = "线路号「{value}」不对：请写数字，例如 3 或 3号线。"
ROUTE_TAKEN = "已有{route}，请换一个线路号。"
ROUTE_HAS_RIDERS = "{route}还有 {count} 名学生乘坐（{names}），请先把他们移出本线路，再停运。"
STOP_NO_NAME = "请填写站点名称。"
STOP_TAKEN = "{route}已有站点「{name}」。"
STOP_BAD_TIME = "时间「{value}」格式不对：请写成 07:10。"
STOP_HAS_RIDERS = "站点「{name}」还有 {count} 名学生（{names}），请先给他们换站点或移出线路，再删除。"
STOP_NOT_ON_ROUTE = "站点不在{route}上。"
ROUTE_STOPPED = "{route}已停运。"
RIDER_SAME = "{name}已经在{route}「{stop}」站。"
FIELD_LIMITS = {"aliases": 200, "plate": 20, "driver": 64, "driver_phone": 32, "monitors": 200}
_HHMM = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


class BusProblem(Exception):
    """An operator's mistake in managing routes, stops or riders: the Chinese sentence to show them."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def route_number(text: str) -> str:
    """The bare number a route is stored by (3 / 3号线 / 三号线 → "3"), or BusProblem."""
    number = route_key(text)
    if not number.isdigit() or len(number) > 16:
        raise BusProblem(ROUTE_BAD_NUMBER.format(value=text))
    return number


def stop_time(text: str) -> str:
    """A stop's time as HH:MM ("" when not given), or BusProblem."""
    text = normalize(text).replace(" ", "")
    if not text:
        return ""
    match = _HHMM.fullmatch(text)
    if match is None:
        raise BusProblem(STOP_BAD_TIME.format(value=text))
    return f"{int(match.group(1)):02d}:{match.group(2)}"


def add_route(db: Session, number: str) -> BusRoute:
    """A new route by its number (its details and stops are added after)."""
    number = route_number(number)
    if db.scalar(select(BusRoute).where(BusRoute.number == number)) is not None:
        raise BusProblem(ROUTE_TAKEN.format(route=route_label(number)))
    route = BusRoute(number=number)
    db.add(route)
    db.flush()
    return route


def edit_route(route: BusRoute, aliases: str, plate: str, driver: str, driver_phone: str, monitors: str) -> list[str]:
    """The route's details, lists stored as the import stores them (";"-joined); the changes, as "字段：旧→新".
    The number is the route's identity (students and past trips name it) and is not changed here."""
    wanted = {"aliases": ";".join(split_list(aliases)), "plate": plate, "driver": driver,
              "driver_phone": driver_phone, "monitors": ";".join(split_list(monitors))}
    labels = {"aliases": "别名", "plate": "车牌", "driver": "司机", "driver_phone": "司机电话", "monitors": "跟车老师"}
    changes = []
    for key, value in wanted.items():
        if len(value) > FIELD_LIMITS[key]:
            raise BusProblem(f"「{labels[key]}」太长了：最多 {FIELD_LIMITS[key]} 个字。")
        old = getattr(route, key)
        if old != value:
            changes.append(f"{labels[key]}：{old or '（空）'}→{value or '（空）'}")
            setattr(route, key, value)
    return changes


def route_riders(db: Session, route: BusRoute) -> list[Student]:
    return list(db.scalars(select(Student).where(Student.route == route.number).order_by(Student.class_name,
                                                                                         Student.name)))


def stop_route(db: Session, route: BusRoute, now: datetime) -> None:
    """停运: refused while students ride it; its trips, alarms and leaves stay for the ledgers."""
    riding = route_riders(db, route)
    if riding:
        raise BusProblem(ROUTE_HAS_RIDERS.format(route=route.label, count=len(riding),
                                                 names="、".join(s.name for s in riding[:5])
                                                 + ("等" if len(riding) > 5 else "")))
    route.stopped_at = now


def _stop_name(route: BusRoute, name: str, stop: BusStop | None = None) -> str:
    name = tidy(name)
    if not name:
        raise BusProblem(STOP_NO_NAME)
    if len(name) > 64:
        raise BusProblem("「站点」太长了：最多 64 个字。")
    if any(normalize(s.name) == normalize(name) for s in route.stops if s is not stop):
        raise BusProblem(STOP_TAKEN.format(route=route.label, name=name))
    return name


def add_stop(db: Session, route: BusRoute, name: str, am: str, pm: str) -> BusStop:
    """A stop at the end of the route (move it up after)."""
    name, am, pm = _stop_name(route, name), stop_time(am), stop_time(pm)
    stop = BusStop(route=route, seq=max((s.seq for s in route.stops), default=0) + 1, name=name, am_time=am,
                   pm_time=pm)
    db.add(stop)
    db.flush()
    return stop


def edit_stop(db: Session, stop: BusStop, name: str, am: str, pm: str) -> list[str]:
    """A stop's name and times; its students follow a new name (they are stored by the stop's name).
    Past trips name no stop, so nothing of them is rewritten. The changes, as "字段：旧→新"."""
    name, am, pm = _stop_name(stop.route, name, stop), stop_time(am), stop_time(pm)
    changes = []
    if name != stop.name:
        for student in db.scalars(select(Student).where(Student.route == stop.route.number,
                                                        Student.stop == stop.name)):
            student.stop = name
        changes.append(f"站点：{stop.name}→{name}")
        stop.name = name
    for label, key, value in (("上学时间", "am_time", am), ("放学时间", "pm_time", pm)):
        if getattr(stop, key) != value:
            changes.append(f"{label}：{getattr(stop, key) or '（空）'}→{value or '（空）'}")
            setattr(stop, key, value)
    db.flush()
    return changes


def move_stop(db: Session, stop: BusStop, step: int) -> bool:
    """Swap a stop with the one before (step -1) or after (+1); False at either end."""
    stops = sorted(stop.route.stops, key=lambda s: s.seq)
    at = stops.index(stop)
    if not 0 <= at + step < len(stops):
        return False
    other = stops[at + step]
    mine, theirs = stop.seq, other.seq
    stop.seq = 0  # (route, seq) is unique: step aside first
    db.flush()
    other.seq = mine
    db.flush()
    stop.seq = theirs
    db.flush()
    return True


def remove_stop(db: Session, stop: BusStop) -> None:
    """A stop off the route (refused while students get on there); the stops after it move up."""
    route = stop.route
    here = list(db.scalars(select(Student).where(Student.route == route.number, Student.stop == stop.name)
                           .order_by(Student.name)))
    if here:
        raise BusProblem(STOP_HAS_RIDERS.format(name=stop.name, count=len(here),
                                                names="、".join(s.name for s in here[:5]) + ("等" if len(here) > 5 else "")))
    later = sorted((s for s in route.stops if s.seq > stop.seq), key=lambda s: s.seq)
    route.stops.remove(stop)
    db.flush()
    for s in later:
        s.seq -= 1
        db.flush()


def set_rider(student: Student, stop: BusStop) -> str:
    """The student rides `stop`'s route from that stop; what changed, as "旧→新"."""
    route = stop.route
    if route.stopped_at is not None:
        raise BusProblem(ROUTE_STOPPED.format(route=route.label))
    if (student.route, student.stop) == (route.number, stop.name):
        raise BusProblem(RIDER_SAME.format(name=student.name, route=route.label, stop=stop.name))
    before = f"{route_label(student.route)} {student.stop}".strip() or "（不坐校车）"
    student.route, student.stop = route.number, stop.name
    return f"{before}→{route.label} {stop.name}"


def remove_rider(student: Student) -> str:
    """The student no longer rides a bus (their leaves and the trips' counts stay as they were)."""
    before = f"{route_label(student.route)} {student.stop}".strip()
    student.route, student.stop = "", ""
    return f"{before}→（不坐校车）"


# -- import ---------------------------------------------------------------------------------
ROUTE_COLUMNS = {"route": ("线路", "线路号"), "aliases": ("别名",), "plate": ("车牌", "车牌号"), "driver": ("司机",),
                 "driver_phone": ("司机电话",), "monitors": ("跟车老师", "跟车"), "stop": ("站点",),
                 "am": ("上学时间", "早上时间"), "pm": ("放学时间", "下午时间")}


def import_routes(db: Session, path: str | Path) -> int:
    """One row per stop, in order; route fields may be given on the route's first row only."""
    rows = read_table(path, ROUTE_COLUMNS, required=("route", "stop"))
    problems: list[str] = []
    routes: dict[str, dict[str, object]] = {}
    for row in rows:
        number = route_key(row.get("route"))
        if not number.isdigit():
            problems.append(f"第{row.number}行：线路「{row.get('route')}」不是线路号（例：3 或 3号线）")
            continue
        info = routes.setdefault(number, {"stops": []})
        for key in ("aliases", "plate", "driver", "driver_phone", "monitors"):
            if row.get(key):
                info[key] = ";".join(split_list(row.get(key))) if key in (
                    "aliases", "monitors") else row.get(key)
        times = {key: row.time(key) for key in ("am", "pm")}
        for key, at in times.items():
            if row.get(key) and at is None:
                problems.append(f"第{row.number}行：时间「{row.get(key)}」格式不对（例：07:10）")
        stops = info["stops"]
        assert isinstance(stops, list)
        stops.append((row.get("stop"), *(f"{at:%H:%M}" if at else "" for at in times.values())))
    if problems:
        raise TableError(problems)
    for number, info in routes.items():
        route = db.scalar(select(BusRoute).where(BusRoute.number == number))
        if route is None:
            route = BusRoute(number=number)
            db.add(route)
        for key in ("aliases", "plate", "driver", "driver_phone", "monitors"):
            setattr(route, key, str(info.get(key, "")))
        stops = info["stops"]
        assert isinstance(stops, list)
        route.stops.clear()
        db.flush()  # old stops go before new ones take their (route, seq) places
        route.stops = [BusStop(seq=i, name=name, am_time=am, pm_time=pm) for i, (name, am, pm) in enumerate(stops, 1)]
    db.flush()
    return len(routes)


# -- ledger ---------------------------------------------------------------------------------
TRIP_HEADER = ["日期", "线路", "趟次", "应到", "上车", "下车", "上车报告时间", "下车报告时间", "报告人",
               "警报", "确认", "数据问题"]
LEAVE_HEADER = ["日期", "学生", "班级", "线路", "趟次", "申请人", "申请时间", "状态"]


def bus_ledger(db: Session, first: date, tz: tzinfo,
               after: date | None = None) -> tuple[list[list[object]], list[list[object]]]:
    """The month's 校车台账 (or from `first` to `after`, a term): a row per trip, and the leave records."""
    after = after or month_span(first)[1]
    trips = []
    for t in db.scalars(select(BusTrip).where(BusTrip.day >= first, BusTrip.day < after)
                        .options(joinedload(BusTrip.route), joinedload(BusTrip.boarded_by),
                                 joinedload(BusTrip.alighted_by),
                                 selectinload(BusTrip.alarms).joinedload(BusAlarm.acknowledged_by))
                        .order_by(BusTrip.day, BusTrip.route_id, BusTrip.trip)):  # their people: not one by one
        reporters = "、".join(dict.fromkeys(p.name for p in (t.boarded_by, t.alighted_by) if p))
        alarms = "；".join(f"{local_naive(a.raised_at, tz):%H:%M} 少{a.missing}人，提醒{a.pushes}次" for a in t.alarms)
        acks = "；".join(f"{a.acknowledged_by.name if a.acknowledged_by else '他人'} "
                        f"{local_naive(a.acknowledged_at, tz):%H:%M}" + (f" 情况：{a.note}" if a.note else "")
                        for a in t.alarms if a.acknowledged_at)
        trips.append([t.day, t.route.label, TRIP_NAMES[t.trip], t.expected, t.boarded, t.alighted,
                      local_naive(t.boarded_at, tz), local_naive(t.alighted_at, tz), reporters, alarms, acks,
                      t.data_error])
    leaves = []
    for lv in db.scalars(select(BusLeave).where(BusLeave.day >= first, BusLeave.day < after)
                         .options(joinedload(BusLeave.student), joinedload(BusLeave.requested_by))
                         .order_by(BusLeave.day, BusLeave.id)):
        leaves.append([lv.day, lv.student.name, lv.student.class_name, route_label(lv.student.route),
                       TRIP_LABEL[lv.trips],
                       lv.requested_by.name if lv.requested_by else "", local_naive(lv.created_at, tz),
                       "已销假" if lv.cancelled_at else "有效"])
    return trips, leaves
