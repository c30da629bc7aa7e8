"""A month of a 2,000-student school: what the console's pages and the ledgers are measured on.

    from bench.big_school import build_school
    with factory() as db, db.begin():
        counts = build_school(db, now)          # now: the month's last school day, 16:00 school time

On top of the demo school (bot/demo: rooms, assets, routes, posts, the duty roster, the calendar, menus)
it adds, deterministically (a seeded random): 48 classes (一年级 to 六年级, 8 each) of ~42 students
each with a parent code and one bound, subscribed parent; 120 teachers and 10 staff, bound; then for
every school day of `now`'s month: ~30 repair tickets (reported, accepted, done, rated; some hazards,
reopened or withdrawn, with their events), bus trips (every route, both trips) with the odd alarm,
leave requests, duty shifts with check-ins (and the odd missed one), ~150 canteen ratings, menus
published, surveys, 陪餐; and pushes: a daily notice to every parent (2,000 deliveries), repair pushes
to staff and reporters, most sent, some failed or undeliverable. Rows are added through the models with
explicit numbers (R<n>, F<n>): later `allocate_number` calls continue after them.

tests/test_big_school.py builds a smaller one (`students=`) and checks the counts; bench/console_pages.py
times every console page on the full one.
"""

from __future__ import annotations

import random
import sys
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from bot.demo import load_demo  # noqa: E402
from bot.school import Calendar, duty_slots  # noqa: E402
from bot.text import month_span  # noqa: E402
from models import (  # noqa: E402
    Asset,
    BindCode,
    Binding,
    BusLeave,
    BusRoute,
    BusTrip,
    CanteenFeedback,
    Delivery,
    DutyCheckin,
    DutyRoster,
    DutyShift,
    ParentLink,
    Person,
    PersonRole,
    Push,
    RepairTicket,
    Room,
    Student,
    TicketEvent,
)
from models.bus import BusAlarm  # noqa: E402
from models.canteen import AccompaniedMeal, SurveyResponse  # noqa: E402

GRADES = "一二三四五六"
CLASSES_PER_GRADE = 8
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "子涵欣怡梓萱诗涵一诺浩宇宇轩子轩雨泽浩然俊杰思远晨曦佳怡梦琪明轩若汐嘉怡睿泽文博天佑安琪紫涵雅琪梓涵语桐"
FAULTS = [("投影仪不亮", "电教"), ("灯管闪烁", "水电"), ("水龙头漏水", "水电"), ("窗户关不上", "门窗"),
          ("门锁坏了", "门窗"), ("课桌腿松动", "桌椅"), ("椅子断了", "桌椅"), ("空调不制冷", "水电"),
          ("电脑开不了机", "电教"), ("插座没电", "水电"), ("黑板松动", "其他"), ("窗帘掉了", "其他")]
HAZARDS = ["楼梯扶手松动", "消防通道堆放杂物", "灭火器过期", "操场地面破损", "围墙裂缝", "电线裸露"]
COMMENTS = ["今天的青菜很新鲜", "汤太咸了", "米饭有点硬", "红烧肉好吃", "菜有点凉", "分量足", "孩子说很好吃",
            "鱼有刺要注意", "", "", "", ""]
SCHOOL_TZ_OFFSET = timedelta(hours=8)


def _name(rng: random.Random, taken: set[str]) -> str:
    while True:
        given = GIVEN[rng.randrange(0, len(GIVEN) - 1, 2):][:2] if rng.random() < 0.6 else rng.choice(GIVEN)
        name = rng.choice(SURNAMES) + given
        if name not in taken:
            taken.add(name)
            return name


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    """A school-local (UTC+8) wall-clock time as the UTC moment stored."""
    return (datetime.combine(day, time(hour, minute)) - SCHOOL_TZ_OFFSET).replace(tzinfo=UTC)


def _person(db: Session, name: str, *roles: str, class_name: str = "", categories: str = "") -> Person:
    person = Person(name=name, class_name=class_name, categories=categories)
    person.roles = [PersonRole(role=r) for r in roles]
    db.add(person)
    return person


def build_school(db: Session, now: datetime, students: int = 2000, seed: int = 16, busy: float = 1.0) -> Counter[str]:
    """Add the school and its month (up to `now`) in the caller's transaction; returns the row counts.
    `busy` scales the day's tickets, ratings and pushes (1: 30, 150 and 40 a day)."""
    rng = random.Random(seed)
    counts: Counter[str] = Counter()
    load_demo(db, now)
    db.flush()
    taken = set(db.scalars(select(Person.name))) | set(db.scalars(select(Student.name)))
    routes = list(db.scalars(select(BusRoute).order_by(BusRoute.number)))
    classes = [f"{g}({n})班" for g in GRADES for n in range(1, CLASSES_PER_GRADE + 1)]
    openids = iter(range(1, 10**7))

    def bind(person: Person, at: datetime) -> None:
        db.add(Binding(openid=f"oBig{next(openids):07d}", person=person, subscribed=True, bound_at=at))

    # people: teachers (a class teacher per class and more), staff, parents bound to their child
    start = _at(month_span(now.date())[0], 8)
    teachers = [_person(db, _name(rng, taken), "teacher", class_name=classes[i] if i < len(classes) else "")
                for i in range(120)]
    staff = [_person(db, _name(rng, taken), "staff", categories=cat)
             for cat in ("水电;门窗", "电教", "桌椅;其他", "安全;消防", "水电", "电教", "门窗", "桌椅", "其他", "安全")]
    for p in teachers + staff:
        bind(p, start)
    kids: list[Student] = []
    parents: list[Person] = []
    for i in range(students):
        route = routes[i % len(routes)].number if routes and i % 3 == 0 else ""
        kid = Student(name=_name(rng, taken), class_name=classes[i % len(classes)], route=route)
        parent = _person(db, kid.name[0] + "家长" + str(i), "parent")
        db.add_all([kid, ParentLink(person=parent, student=kid)])
        db.add(BindCode(code=f"B{i:05d}", kind="student", student=kid, expires_at=now + timedelta(days=14),
                        created_at=start))
        bind(parent, start)
        kids.append(kid)
        parents.append(parent)
    db.flush()
    counts.update(students=len(kids), parents=len(parents), teachers=len(teachers), staff=len(staff))

    ridership = Counter(k.route for k in kids)
    calendar = Calendar(db)
    first = month_span(now.date())[0]
    days = [d for d in calendar.school_days(first, now.date())]
    rooms = list(db.scalars(select(Room)))
    assets = list(db.scalars(select(Asset)))
    slots = duty_slots(db)
    roster = {(r.weekday, r.slot, r.post_id): r.person_id for r in db.scalars(select(DutyRoster))}
    number = int(db.scalar(select(RepairTicket.number).order_by(RepairTicket.number.desc()).limit(1)) or 0)
    feedback_number = 0
    for day in days:
        # repairs
        for _ in range(round(30 * busy)):
            number += 1
            reporter = rng.choice(teachers)
            hazard = rng.random() < 0.08
            fault, category = (rng.choice(HAZARDS), "安全") if hazard else rng.choice(FAULTS)
            room = rng.choice(rooms) if rooms else None
            filed = _at(day, rng.randint(7, 16), rng.randint(0, 59))
            worker = next((s for s in staff if category in s.categories), staff[0])
            ticket = RepairTicket(number=number, reporter=reporter, room=room, place=room.name if room else "操场",
                                  asset=rng.choice(assets) if assets and rng.random() < 0.2 else None,
                                  category=category, description=fault, hazard=hazard, filed_at=filed,
                                  status="open")
            fate = rng.random()
            if fate > 0.1:
                ticket.status, ticket.assignee, ticket.accepted_at = "accepted", worker, filed + timedelta(hours=1)
            if fate > 0.25 and filed + timedelta(hours=5) < now:
                ticket.status, ticket.done_at, ticket.note = "done", filed + timedelta(hours=5), "已修好"
            if fate > 0.4 and filed + timedelta(hours=6) < now:
                ticket.status, ticket.closed_at, ticket.rating = "closed", filed + timedelta(hours=6), rng.randint(3, 5)
                ticket.reopen_count = 1 if rng.random() < 0.05 else 0
            if fate < 0.03:
                ticket.status = "withdrawn"
                db.add(TicketEvent(ticket=ticket, kind="withdrawal", person=reporter, text="已自行处理",
                                   created_at=filed + timedelta(minutes=30)))
            if rng.random() < 0.1:
                db.add(TicketEvent(ticket=ticket, kind="follow_up", person=rng.choice(teachers), text="还是坏的",
                                   created_at=filed + timedelta(minutes=20)))
            db.add(ticket)
            counts["tickets"] += 1
        # the bus: both trips of every route; one alarm a week
        for route in routes:
            riders = ridership[route.number]
            for trip, hour in (("am", 7), ("pm", 16)):
                boarded = riders - rng.choice((0, 0, 0, 1))
                alighted = boarded - (1 if rng.random() < 0.02 else 0)
                row = BusTrip(route=route, day=day, trip=trip, expected=riders, boarded=boarded,
                              boarded_at=_at(day, hour, 30), alighted=alighted, alighted_at=_at(day, hour + 1, 5))
                db.add(row)
                counts["trips"] += 1
                if alighted < boarded:
                    db.add(BusAlarm(trip=row, missing=boarded - alighted, raised_at=_at(day, hour + 1, 5),
                                    acknowledged_at=_at(day, hour + 1, 15), note="已查车厢"))
        for kid in rng.sample([k for k in kids if k.route], 3):
            db.add(BusLeave(student=kid, day=day, trips="all", created_at=_at(day, 6, 30)))
        # duty: every roster entry of the weekday is a shift; most checked in
        for (weekday, slot, post_id), person_id in roster.items():
            if weekday != day.weekday():
                continue
            shift = DutyShift(day=day, slot=slot, post_id=post_id, person_id=person_id)
            db.add(shift)
            counts["shifts"] += 1
            start_at = next((s.start for s in slots if s.name == slot), time(12))
            if rng.random() < 0.93:
                db.add(DutyCheckin(shift=shift, person_id=person_id, method="qr", verified=True,
                                   at=_at(day, start_at.hour, start_at.minute)))
        # the canteen: ratings from parents and teachers, a 陪餐, a few survey answers
        for _ in range(round(150 * busy)):
            feedback_number += 1
            giver = rng.choice(parents) if rng.random() < 0.8 else rng.choice(teachers)
            rating = rng.choices((1, 2, 3, 4, 5), (1, 2, 5, 10, 12))[0]
            db.add(CanteenFeedback(number=feedback_number, person=giver, role=giver.roles[0].role, day=day,
                                   rating=rating, comment=rng.choice(COMMENTS), given_at=_at(day, 12, rng.randint(10, 59))))
            counts["feedback"] += 1
        db.add(AccompaniedMeal(day=day, meal="午餐", person=teachers[0], note="", at=_at(day, 12, 30)))
        # pushes: a notice to every parent, repair pushes, most sent
        notice = Push(kind="safety_topic", text=f"{day:%m月%d日} 安全提示：放学路上注意交通安全。", created_at=_at(day, 7, 40))
        db.add(notice)
        db.flush()
        rows = []
        for parent in parents:
            status = "sent" if rng.random() < 0.97 else rng.choice(("failed", "undeliverable"))
            rows.append(dict(push_id=notice.id, person_id=parent.id, openid=f"oParent{parent.id}", status=status,
                             channel="template", attempts=1, sent_at=_at(day, 7, 41) if status == "sent" else None,
                             next_attempt_at=_at(day, 7, 41),
                             last_error=None if status == "sent" else "43004 用户未关注"))
        db.execute(insert(Delivery), rows)  # 2,000 rows a day: in one statement, not one object each
        counts["deliveries"] += len(rows)
        for _ in range(round(40 * busy)):
            push = Push(kind="repair_new", text="【报修】新的报修单", created_at=_at(day, rng.randint(7, 16)))
            db.add(push)
            db.add(Delivery(push=push, person_id=rng.choice(staff).id, openid="oStaff", status="sent", channel="custom",
                            attempts=1, sent_at=push.created_at, next_attempt_at=push.created_at))
            counts["deliveries"] += 1
        counts["pushes"] += 1 + round(40 * busy)
        db.flush()
    for i, giver in enumerate(rng.sample(parents, min(300, len(parents)))):
        db.add(SurveyResponse(person=giver, role="parent", kind="monthly", period=f"{first:%Y-%m}",
                              taste=rng.randint(2, 5), hygiene=rng.randint(3, 5), portion=rng.randint(3, 5),
                              service=rng.randint(3, 5), comment="", at=_at(days[min(i % len(days), len(days) - 1)], 17)))
        counts["surveys"] += 1
    db.flush()
    counts["days"] = len(days)
    return counts
