"""Who is who: following the account, binding with a code, 解绑, 我, 重发绑定码; and the people/students imports.

Operators create people and students (import, console or CLI); each person gets a one-time bind
code and each student a parent code that any of the student's parents may use until it expires
(the parents already bound are told when another one binds). A new code for either (`houqin codes
reissue`, or 重发绑定码 from an admin) revokes the old one.

Guessing is held back twice: 5 wrong codes from one follower lock them out for 10 minutes, and
GLOBAL_FAILURE_LIMIT wrong codes from everyone within one window (an hour) stop all binds until the
window ends, the admins told once. A used or revoked code is answered exactly like an unknown one.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from sqlalchemy import distinct, func, select, update
from sqlalchemy.orm import Session

from bot.engine import Context, Conversation, Incoming, Reply, role_names
from bot.numbering import dialect_insert
from bot.outbox import settle_template_job
from bot.people import describe, selector
from bot.school import admins
from bot.tables import Row, TableError, read_table
from bot.text import normalize, route_key, split_list
from models import (
    ROLE_NAMES,
    ROLES,
    BindAttempt,
    BindCode,
    Binding,
    BindWindow,
    BusRoute,
    ParentLink,
    Person,
    PersonRole,
    Student,
    utcnow,
)
from models.bus import route_label

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L
CODE_LENGTH = 6
CODE_LIFETIME = timedelta(days=14)
CODE_NOISE = re.compile(r"[\s:;,.\-_]+")  # what people type around or inside a code
LOCKOUT_ATTEMPTS = 5
LOCKOUT_WINDOW = timedelta(minutes=10)
LOCKOUT_PERIOD = timedelta(minutes=10)
GLOBAL_FAILURE_LIMIT = 50  # wrong codes from everyone in one window; then binds stop until it ends
GLOBAL_WINDOW = timedelta(hours=1)  # fixed windows: 10:00-11:00, 11:00-12:00 (UTC hours)
WINDOW_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
GUARD_KIND = "bind_guard"
PARENT_BOUND_KIND = "parent_bound"
CONFIRM_UNBIND_WORD = "确认解绑"

WELCOME = ("欢迎关注后勤助手！这里可以报修、校车点名、值日签到、评价食堂、查看每周菜单。\n"
           "请发送「绑定 绑定码」绑定身份（绑定码由学校后勤处提供），发送「帮助」查看命令。")
WELCOME_BACK = "欢迎回来，{name}！发送「帮助」查看你可以使用的命令。"
ASK_CODE = "请发送「绑定 绑定码」，例如：绑定 AB3D5F。绑定码由学校后勤处提供。"
BAD_CODE = "绑定码「{code}」无效。请核对后重新发送（绑定码为6位字母和数字）。"
EXPIRED_CODE = "绑定码「{code}」已过期，请联系后勤处重新获取。"
LOCKED = "绑定码错误次数过多，请{minutes}分钟后再试。"
PAUSED = "近期错误的绑定码过多，为保护大家的账号，绑定暂停，请{minutes}分钟后再试；急需绑定请联系后勤处。"
GUARD_ALERT = ("【绑定码疑似被猜测】{start}起的一小时内，已有{count}次错误的绑定码（来自{senders}个微信），"
               "绑定已暂停到{until}。如不是大批家长正在绑定，请留意是否有人在猜测绑定码。")
PARENT_JOINED = ("【家长绑定提醒】又一位家长（{name}）刚刚用{student}的家长绑定码关联了{student}（{class_name}）。"
                 "如非本人家属，请联系学校。")
BOUND = "绑定成功！你好，{name}（{roles}）。发送「帮助」查看你可以使用的命令。"
ALREADY_BOUND = "你已绑定为{name}。如需更换身份，请先发送「解绑」。"
PARENT_BOUND = "绑定成功！你已作为家长关联学生：{student}（{class_name}）。"
PARENT_ALREADY = "你已关联学生{student}，无需重复绑定。"
UNBOUND = "已解绑。你将不再收到{name}的推送，发送「绑定 绑定码」可重新绑定。"
CONFIRM_UNBIND = ("确定要解绑「{name}」吗？解绑后将不再收到推送。"
                  "确定请发送「确认解绑」，发送其他内容取消。")
UNBIND_KEPT = "已取消解绑，你仍绑定为{name}。"
WELCOME_BACK_PARENT = "绑定成功！欢迎回来，{name}，你已关联学生：{student}（{class_name}）。"
NOT_BOUND_YET = "你还没有绑定身份。发送「绑定 绑定码」进行绑定。"
PARENT_NAME = "{student}家长"
WHOAMI = "姓名：{name}\n身份：{roles}"

HELP_BIND = "绑定 绑定码 — 绑定身份（绑定码向班主任或学校后勤处领取）；解绑；我 — 查看我的身份"
HELP_REISSUE = "重发绑定码 姓名 — 为人员或学生家长生成新的绑定码（旧码作废）"
ASK_REISSUE_NAME = "请发送「重发绑定码 姓名」，姓名为人员或学生的姓名。"
NOBODY_NAMED = "没有找到「{name}」（人员或学生）。请核对姓名。"
WHICH_ONE = "有{count}个「{name}」，请回复序号选择：\n{choices}\n发送「取消」放弃。"
PICK_AGAIN = "请回复序号 1-{count}，或发送「取消」放弃。"
REISSUED = "已为{who}生成新的绑定码：{code}（{until}前有效），旧绑定码已作废。"
REISSUED_BOUND = "{name}原来绑定的{count}个微信已解绑（如手机丢失，它不会再收到推送）。"
REISSUED_PARENTS = "已关联的家长不受影响。"

follow = Conversation("follow", title="关注")
binding = Conversation("binding", title="绑定", keywords=["绑定", "bind"], menu_keys=["BIND"], scenes=["bind"],
                       help=HELP_BIND, topic="身份", rank=6, unbound_rank=1)
unbind = Conversation("unbind", title="解绑", keywords=["解绑", "unbind", CONFIRM_UNBIND_WORD])
whoami = Conversation("whoami", title="我", keywords=["我", "whoami", "我是谁"])
reissue = Conversation("reissue_code", title="重发绑定码", keywords=["重发绑定码"], roles={"admin"}, help=HELP_REISSUE,
                       topic="身份", rank=6)


# -- following --------------------------------------------------------------------------------
def _binding_row(ctx: Context) -> Binding:
    if ctx.binding is None:
        ctx.binding = Binding(openid=ctx.openid, subscribed=True)
        ctx.db.add(ctx.binding)
    return ctx.binding


@follow.on_event("subscribe")
def subscribed(msg: Incoming, ctx: Context) -> Reply:
    row = _binding_row(ctx)
    if not (row.subscribed and row.reachable):  # usually set already (bot.inbox: writing means following)
        row.subscribed = row.reachable = True
    person = ctx.person
    return Reply.end(WELCOME_BACK.format(name=person.name) if person else WELCOME)


@follow.on_event("unsubscribe")
def unsubscribed(msg: Incoming, ctx: Context) -> Reply:
    if ctx.binding is not None:
        ctx.binding.subscribed = False  # no more pushes; the person and their records stay
    return Reply.silent()


@follow.on_event("templatesendjobfinish")
def template_job_finished(msg: Incoming, ctx: Context) -> Reply:
    """WeChat's report on a template message we sent this follower (not a message from them)."""
    settle_template_job(ctx.db, ctx.settings, msg.openid, msg.msg_id, str(msg.raw.get("Status", "")), ctx.now)
    return Reply.silent()


# -- binding ----------------------------------------------------------------------------------
def _locked_until(ctx: Context) -> datetime | None:
    """The end of the sender's lockout, if any: 5 wrong codes within 10 minutes lock them out for
    10 minutes counted from the 5th (attempts are not recorded while locked out)."""
    times = list(ctx.db.scalars(
        select(BindAttempt.at).where(BindAttempt.openid == ctx.openid,
                                     BindAttempt.at > ctx.now - LOCKOUT_WINDOW - LOCKOUT_PERIOD)
        .order_by(BindAttempt.at)
    ))
    until = None
    for i in range(LOCKOUT_ATTEMPTS - 1, len(times)):
        if times[i] - times[i - LOCKOUT_ATTEMPTS + 1] < LOCKOUT_WINDOW:
            until = times[i] + LOCKOUT_PERIOD
    return until if until is not None and until > ctx.now else None


def _window_start(now: datetime) -> datetime:
    return WINDOW_EPOCH + (now - WINDOW_EPOCH) // GLOBAL_WINDOW * GLOBAL_WINDOW


def _paused_until(ctx: Context) -> datetime | None:
    """The end of the current window if everyone's wrong codes in it reached GLOBAL_FAILURE_LIMIT.

    Takes the window's row (creating it) with a write, so it stays locked until this bind's
    transaction ends: on PostgreSQL a concurrent bind waits here and then sees every wrong code
    counted before it; on SQLite writers are serialized anyway. No guess is checked past the limit."""
    start = _window_start(ctx.now)
    insert = dialect_insert(ctx.db)(BindWindow).values(started_at=start, failures=0)
    failures = ctx.db.execute(insert.on_conflict_do_update(
        index_elements=[BindWindow.started_at], set_={"failures": BindWindow.failures},
    ).returning(BindWindow.failures)).scalar_one()
    return start + GLOBAL_WINDOW if failures >= GLOBAL_FAILURE_LIMIT else None


def _wrong(ctx: Context, code: str, answer: str) -> str:
    """Record a wrong code for the sender's lockout and the window's count; the code that reaches the
    limit tells the admins (once per window: later ones are refused before they are counted)."""
    ctx.db.add(BindAttempt(openid=ctx.openid, code=code[:64], at=ctx.now))
    start = _window_start(ctx.now)
    failures = ctx.db.execute(update(BindWindow).where(BindWindow.started_at == start)
                              .values(failures=BindWindow.failures + 1).returning(BindWindow.failures)
                              .execution_options(synchronize_session=False)).scalar_one()
    if failures == GLOBAL_FAILURE_LIMIT:
        ctx.db.flush()
        senders = ctx.db.scalar(select(func.count(distinct(BindAttempt.openid))).where(BindAttempt.at >= start))
        tz = ctx.settings.tz
        ctx.outbox.notify(admins(ctx.db), GUARD_KIND, GUARD_ALERT.format(
            start=f"{start.astimezone(tz):%H:%M}", count=failures, senders=senders,
            until=f"{(start + GLOBAL_WINDOW).astimezone(tz):%H:%M}"))
    return answer


def _minutes_left(until: datetime, now: datetime) -> int:
    return max(1, int((until - now).total_seconds() + 59) // 60)


@binding.entry
def bind(msg: Incoming, ctx: Context) -> Reply:
    welcome = ""
    if msg.event == "subscribe":  # scanned a bind:<code> QR code to follow the account
        welcome = subscribed(msg, ctx).text + "\n\n"
    return Reply.end(welcome + _check_and_bind(msg, ctx))


def _check_and_bind(msg: Incoming, ctx: Context) -> str:
    raw = msg.scene.split(":", 1)[1] if msg.scene else " ".join(msg.args)
    code = CODE_NOISE.sub("", raw).upper()  # 绑定：ab3d5f, 绑定 AB3 D5F
    if not code:
        return ASK_CODE
    until = _locked_until(ctx)
    if until is not None:
        return LOCKED.format(minutes=_minutes_left(until, ctx.now))
    until = _paused_until(ctx)
    if until is not None:
        return PAUSED.format(minutes=_minutes_left(until, ctx.now))
    found = ctx.db.scalar(select(BindCode).where(BindCode.code == code)) if re.fullmatch(r"[A-Z0-9]{6}", code) else None
    if found is not None and found.revoked_at is not None:
        found = None  # replaced by a reissued code: as unknown as a code never issued
    if found is not None and found.kind == "person" and (found.used_at is not None or found.person is None) and (
            ctx.person is None or found.used_by != ctx.openid):
        found = None  # used, unless by this very follower still bound to it: answered like an unknown code
    if found is None:
        return _wrong(ctx, code, BAD_CODE.format(code=code))
    if found.expires_at <= ctx.now:
        return _wrong(ctx, code, EXPIRED_CODE.format(code=code))
    return _bind_student(ctx, found) if found.kind == "student" else _bind_person(ctx, found)


def _bind_person(ctx: Context, code: BindCode) -> str:
    """Bind the sender to the code's person. A parent made by a child's code (陈小明家长) who now
    binds their own person code becomes that person: their children go with them."""
    person = code.person
    assert person is not None
    stand_in = ctx.person if ctx.person is not None and _made_by_parent_code(ctx.db, ctx.person) else None
    if ctx.person is not None and stand_in is None:
        return ALREADY_BOUND.format(name=ctx.person.name)
    if stand_in is not None:
        _merge_children(ctx.db, stand_in, person)
    row = _binding_row(ctx)
    row.person, row.bound_at, row.subscribed = person, ctx.now, True
    code.used_at, code.used_by = ctx.now, ctx.openid
    return BOUND.format(name=person.name, roles=role_names(person.role_set) or "未分配")


def _release(row: Binding) -> None:
    """End a follower's binding, remembering whom it was bound to."""
    row.previous_person_id = row.person_id
    row.person_id = None
    row.person = None


def _made_by_parent_code(db: Session, person: Person) -> bool:
    """A parent the bot made when an unbound follower used a child's code: parent role only, no phone,
    and never given a person code of their own (imported people always are)."""
    return (person.role_set == {"parent"} and not person.phone
            and db.scalar(select(func.count()).select_from(BindCode).where(BindCode.person_id == person.id)) == 0)


def _merge_children(db: Session, source: Person, target: Person) -> None:
    """Move `source`'s links to students onto `target` (skipping the ones it already has)."""
    db.flush()
    have = set(db.scalars(select(ParentLink.student_id).where(ParentLink.person_id == target.id)))
    for link in db.scalars(select(ParentLink).where(ParentLink.person_id == source.id)):
        if link.student_id in have:
            db.delete(link)
        else:
            link.person = target
    if "parent" not in target.role_set:
        target.roles.append(PersonRole(role="parent"))


def _bind_student(ctx: Context, code: BindCode) -> str:
    """Link the sender to the code's student as a parent. An unbound sender becomes a new parent
    (陈小明家长), unless they were bound before (解绑) to a person already this student's parent:
    then they are that person again. The parents already linked are told."""
    student = code.student
    assert student is not None
    row = _binding_row(ctx)
    person = ctx.person
    welcome_back = False
    if person is None:
        person = _returning_parent(ctx.db, row, student)
        welcome_back = person is not None
        if person is None:
            person = Person(name=_parent_name(ctx.db, student), roles=[PersonRole(role="parent")])
            ctx.db.add(person)
        row.person, row.bound_at, row.subscribed = person, ctx.now, True
    if "parent" not in person.role_set:
        person.roles.append(PersonRole(role="parent"))
    class_name = student.class_name or "未分班"
    if person.id is not None and ctx.db.scalar(select(ParentLink).where(
            ParentLink.person_id == person.id, ParentLink.student_id == student.id)) is not None:
        if welcome_back:
            return WELCOME_BACK_PARENT.format(name=person.name, student=student.name, class_name=class_name)
        return PARENT_ALREADY.format(student=student.name)
    others = [link.person for link in student.parents if link.person.openids]
    ctx.db.add(ParentLink(person=person, student=student))
    code.used_at, code.used_by = code.used_at or ctx.now, code.used_by or ctx.openid
    ctx.outbox.notify(others, PARENT_BOUND_KIND,
                      PARENT_JOINED.format(name=person.name, student=student.name, class_name=class_name),
                      fields={"student": student.name, "person": person.name})
    return PARENT_BOUND.format(student=student.name, class_name=class_name)


def _returning_parent(db: Session, row: Binding, student: Student) -> Person | None:
    """The person this follower was bound to before 解绑, if they are already `student`'s parent."""
    if row.previous_person_id is None:
        return None
    return db.scalar(select(Person).join(ParentLink, ParentLink.person_id == Person.id).where(
        Person.id == row.previous_person_id, ParentLink.student_id == student.id))


def _parent_name(db: Session, student: Student) -> str:
    """A name for a parent who bound with a parent code: 陈小明家长, then 陈小明家长2, ... (people are
    unique by name + phone, and these have no phone)."""
    base = PARENT_NAME.format(student=student.name)
    taken = set(db.scalars(select(Person.name).where(Person.name.startswith(base, autoescape=True),
                                                     Person.phone == "")))
    n = 1
    while (name := base if n == 1 else f"{base}{n}") in taken:
        n += 1
    return name


@unbind.entry
def ask_unbind(msg: Incoming, ctx: Context) -> Reply:
    """解绑 (or a 确认解绑 with nothing pending) asks first: a slip of the thumb must not unbind."""
    person = ctx.person
    if person is None:
        return Reply.end(NOT_BOUND_YET)
    return Reply(CONFIRM_UNBIND.format(name=person.name), next="confirm")


@unbind.on("confirm")
def do_unbind(msg: Incoming, ctx: Context) -> Reply:
    person = ctx.person
    if person is None or ctx.binding is None:
        return Reply.end(NOT_BOUND_YET)
    if msg.text != CONFIRM_UNBIND_WORD:
        return Reply.end(UNBIND_KEPT.format(name=person.name))
    _release(ctx.binding)
    return Reply.end(UNBOUND.format(name=person.name))


@whoami.entry
def show_me(msg: Incoming, ctx: Context) -> Reply:
    person = ctx.person
    if person is None:
        return Reply.end(NOT_BOUND_YET)
    lines = [WHOAMI.format(name=person.name, roles=role_names(person.role_set) or "未分配")]
    if person.class_name:
        lines.append(f"班级：{person.class_name}")
    if person.category_list:
        lines.append(f"负责类别：{'、'.join(person.category_list)}")
    students = list(ctx.db.scalars(select(Student).join(ParentLink).where(ParentLink.person_id == person.id)
                                   .order_by(Student.name)))
    if students:
        lines.append("绑定的学生：" + "；".join(
            f"{s.name}（{s.class_name or '未分班'}{'，' + s.route + '号线' if s.route else ''}）" for s in students))
    return Reply.end("\n".join(lines))


# -- codes ------------------------------------------------------------------------------------
def new_code(db: Session) -> str:
    """A code no other code of this school has; in a county (bot.county) a school's session also
    claims it county-wide (`claim_code` in its info), so no two schools ever hold the same code."""
    claim = db.info.get("claim_code")
    while True:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        if db.scalar(select(func.count()).select_from(BindCode).where(BindCode.code == code)) == 0 and (
                claim is None or claim(code)):
            return code


def issue_code(db: Session, now: datetime, person: Person | None = None, student: Student | None = None) -> BindCode:
    code = BindCode(code=new_code(db), kind="student" if student is not None else "person",
                    person=person, student=student, expires_at=now + CODE_LIFETIME, created_at=now)
    db.add(code)
    return code


def outstanding_codes(db: Session, now: datetime) -> list[dict[str, Any]]:
    """Codes still usable: unused person codes and parent codes, unexpired and not revoked."""
    rows = db.scalars(select(BindCode).where(BindCode.expires_at > now, BindCode.revoked_at.is_(None))
                      .order_by(BindCode.id))
    result = []
    for code in rows:
        if code.kind == "person":
            if code.used_at is not None or code.person is None:
                continue
            name, roles = code.person.name, sorted(code.person.role_set, key=ROLES.index)
        else:
            if code.student is None:
                continue
            name, roles = code.student.name, ["parent"]
        result.append({"name": name, "kind": code.kind, "code": code.code, "roles": roles,
                       "expires_at": code.expires_at.isoformat()})
    return result


def code_holders(db: Session, name: str) -> list[Person | Student]:
    """Whoever a code can be reissued for under `name`: the people, then the students, so named."""
    people: list[Person | Student] = list(db.scalars(select(Person).where(Person.name == name).order_by(Person.id)))
    return people + list(db.scalars(select(Student).where(Student.name == name).order_by(Student.id)))


def describe_holder(holder: Person | Student) -> str:
    """A name told apart from its namesakes: 张丽（教师，三(2)班，手机13800000011） or 陈小明（学生，三(2)班）."""
    if isinstance(holder, Student):
        return f"{holder.name}（学生，{holder.class_name or '未分班'}）"
    parts = [role_names(holder.role_set) or "未分配", holder.class_name,
             f"手机{holder.phone}" if holder.phone else "未登记手机"]
    return f"{holder.name}（{'，'.join(p for p in parts if p)}）"


def reissue_code(db: Session, now: datetime, holder: Person | Student, tz: tzinfo) -> str:
    """A new code for `holder`, revoking every code they had; returns what to tell the operator. It
    works whatever became of the old one: used and 解绑, on a lost phone, or expired. A person's
    WeChat bindings end at once (a lost phone must stop receiving pushes); a student's parents stay."""
    db.flush()
    column = BindCode.student_id if isinstance(holder, Student) else BindCode.person_id
    for old in db.scalars(select(BindCode).where(column == holder.id, BindCode.revoked_at.is_(None))):
        old.revoked_at = now
    if isinstance(holder, Student):
        code, who, note = issue_code(db, now, student=holder), f"{describe_holder(holder)}的家长", REISSUED_PARENTS
    else:
        code, who = issue_code(db, now, person=holder), describe_holder(holder)
        bound = list(holder.bindings)
        for row in bound:
            _release(row)
        note = REISSUED_BOUND.format(name=holder.name, count=len(bound)) if bound else ""
    return REISSUED.format(who=who, code=code.code,
                           until=f"{code.expires_at.astimezone(tz):%Y-%m-%d %H:%M}") + note


def deactivate(db: Session, now: datetime, person: Person) -> list[str]:
    """A person leaves: their roles end, their bind codes are revoked and their WeChat bindings end; the
    person stays, with every ticket, check-in and feedback they left. Returns the roles they had."""
    db.flush()
    had = sorted(person.role_set)
    for old in db.scalars(select(BindCode).where(BindCode.person_id == person.id, BindCode.revoked_at.is_(None))):
        old.revoked_at = now
    for row in list(person.bindings):
        _release(row)
    person.roles = []
    person.deactivated_at = now
    return had


@reissue.entry
def ask_reissue(msg: Incoming, ctx: Context) -> Reply:
    name = " ".join(msg.kept_args)
    if not name:
        return Reply.end(ASK_REISSUE_NAME)
    holders = code_holders(ctx.db, name)
    if not holders:
        return Reply.end(NOBODY_NAMED.format(name=name))
    if len(holders) == 1:
        return Reply.end(reissue_code(ctx.db, ctx.now, holders[0], ctx.settings.tz))
    choices = "\n".join(f"{i}. {describe_holder(h)}" for i, h in enumerate(holders, start=1))
    return Reply(WHICH_ONE.format(count=len(holders), name=name, choices=choices), next="pick",
                 data={"name": name, "holders": [[type(h).__name__, h.id] for h in holders]})


@reissue.on("pick")
def pick_holder(msg: Incoming, ctx: Context) -> Reply:
    holders = ctx.data["holders"]
    text = msg.text.strip().removesuffix(".")
    if not text.isdigit() or not 1 <= int(text) <= len(holders):
        return Reply(PICK_AGAIN.format(count=len(holders)), next="pick")
    kind, holder_id = holders[int(text) - 1]
    holder: Person | Student | None = (ctx.db.get(Student, holder_id) if kind == "Student"
                                       else ctx.db.get(Person, holder_id))
    if holder is None:
        return Reply.end(NOBODY_NAMED.format(name=ctx.data["name"]))
    return Reply.end(reissue_code(ctx.db, ctx.now, holder, ctx.settings.tz))


# -- imports ----------------------------------------------------------------------------------
ROLE_WORDS = {**{r: r for r in ROLES}, **{v: k for k, v in ROLE_NAMES.items()},
              "后勤主任": "admin", "教师": "teacher", "老师": "teacher", "班主任": "teacher"}
PEOPLE_COLUMNS = {"name": ("姓名",), "roles": ("角色", "身份"), "phone": ("手机", "电话", "手机号"),
                  "class": ("班级",), "route": ("线路",), "categories": ("负责类别", "类别")}
STUDENT_COLUMNS = {"name": ("姓名", "学生姓名"), "class": ("班级",), "route": ("线路", "校车线路"),
                   "stop": ("站点", "上车站点")}


NAMESAKE = "第{row}行：{name}与{others}同名，已分开登记；指名时请写「{pick}」"
NAMESAKE_UNTOLD = "第{row}行：{name}与{others}同名，班级和手机号都无法区分二人：请填写手机号或班级"


ADDED, CHANGED, UNCHANGED = "added", "changed", "unchanged"  # a row's fate in an import


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    warnings: list[str] = field(default_factory=list)  # imported, but worth the operator's eye (namesakes)
    # each row's fate: (row number, name, ADDED | CHANGED | UNCHANGED), for the console's preview
    outcomes: list[tuple[int, str, str]] = field(default_factory=list)
    changes: dict[int, str] = field(default_factory=dict)  # row number → what a CHANGED row changes, "旧→新"

    def __str__(self) -> str:
        return f"新增 {self.created}，更新 {self.updated}，未变 {self.unchanged}"


def parse_roles(text: str) -> tuple[list[str], list[str]]:
    roles, unknown = [], []
    for word in split_list(text):
        if not word:
            continue
        role = ROLE_WORDS.get(word.lower(), ROLE_WORDS.get(word))
        if role is None:
            unknown.append(word)
        elif role not in roles:
            roles.append(role)
    return roles, unknown


def import_people(db: Session, path: str | Path, now: datetime | None = None) -> ImportResult:
    """People by name + phone; any bad row stops the whole import with every problem listed."""
    now = now or utcnow()
    rows = read_table(path, PEOPLE_COLUMNS, required=("name", "roles"))
    problems, parsed = [], []
    seen: dict[tuple[str, str], int] = {}
    for row in rows:
        name, phone = row.get("name"), row.get("phone").replace(" ", "").replace("-", "")
        roles, unknown = parse_roles(row.get("roles"))
        if not name:
            problems.append(f"第{row.number}行：姓名为空")
        if unknown:
            problems.append(f"第{row.number}行：不认识的角色「{'、'.join(unknown)}」"
                            f"（可用：{'、'.join(ROLE_NAMES.values())} 或 {', '.join(ROLES)}）")
        elif not roles:
            problems.append(f"第{row.number}行：角色为空")
        if phone and not re.fullmatch(r"\+?\d{7,15}", phone):
            problems.append(f"第{row.number}行：手机号「{row.get('phone')}」格式不对")
        if (name, phone) in seen:
            problems.append(f"第{row.number}行：与第{seen[(name, phone)]}行重复（同名同手机）")
        seen[(name, phone)] = row.number
        categories = ";".join(split_list(row.get("categories")))
        parsed.append((name, phone, roles, row.get("class"), row.get("route"), categories))
    warnings = _namesakes(db, [(row.number, *fields[:2], fields[3]) for row, fields in zip(rows, parsed, strict=True)],
                          problems)
    if problems:
        raise TableError(problems)
    result = ImportResult(warnings=warnings)
    for row, (name, phone, roles, class_name, route, categories) in zip(rows, parsed, strict=True):
        person = db.scalar(select(Person).where(Person.name == name, Person.phone == phone))
        if person is None:
            person = Person(name=name, phone=phone, class_name=class_name, route=route, categories=categories,
                            roles=[PersonRole(role=r) for r in roles], created_at=now)
            db.add(person)
            issue_code(db, now, person=person)
            result.created += 1
            result.outcomes.append((row.number, name, ADDED))
            continue
        changed = False
        for attr, value in (("class_name", class_name), ("route", route), ("categories", categories)):
            if getattr(person, attr) != value:
                setattr(person, attr, value)
                changed = True
        if person.role_set != set(roles):
            person.roles = [r for r in person.roles if r.role in roles] + [
                PersonRole(role=r) for r in roles if r not in person.role_set]
            changed = True
        result.updated += changed
        result.unchanged += not changed
        result.outcomes.append((row.number, name, CHANGED if changed else UNCHANGED))
    db.flush()
    return result


def _namesakes(db: Session, rows: list[tuple[int, str, str, str]], problems: list[str]) -> list[str]:
    """A warning for each new person (row number, name, phone, class) who shares a name with someone
    already registered or elsewhere in the file, saying how to name them; a problem when neither the
    class nor the phone tells them apart (commands could never pick them)."""
    known = {(p.name, p.phone): p for p in db.scalars(select(Person).where(Person.name.in_({r[1] for r in rows})))}
    people = dict(known)
    for _, name, phone, class_name in rows:
        people.setdefault((name, phone), Person(name=name, phone=phone, class_name=class_name))
    warnings = []
    for number, name, phone, _ in rows:
        if (name, phone) in known or not name:
            continue
        person = people[(name, phone)]
        namesakes = [p for (n, _), p in people.items() if n == name]
        if len(namesakes) < 2:
            continue
        others = "、".join(describe(p) for p in namesakes if p is not person)
        pick = selector(person, namesakes)
        if pick is None or any(selector(p, namesakes) is None for p in namesakes):
            problems.append(NAMESAKE_UNTOLD.format(row=number, name=describe(person), others=others))
        else:
            warnings.append(NAMESAKE.format(row=number, name=describe(person), others=others, pick=f"{name} {pick}"))
    return warnings


def _route_and_stop(routes: list[BusRoute], row: Row, problems: list[str]) -> str:
    """The number of the registered route a student row names (by number or alias), its stop checked
    against that route's stops; "" when none is given. Problems name the row and the known ones."""
    if not row.get("route"):
        if row.get("stop"):
            problems.append(f"第{row.number}行：填写了站点「{row.get('stop')}」但没有填写线路")
        return ""
    key = route_key(row.get("route"))
    route = next((r for r in routes if key in (r.number, *(route_key(a) for a in split_list(r.aliases)))), None)
    if route is None:
        known = "、".join(r.label for r in routes) or "无（先运行 houqin routes import）"
        problems.append(f"第{row.number}行：线路「{row.get('route')}」不存在（已有线路：{known}）")
        return ""
    stops = [s.name for s in route.stops]
    if row.get("stop") and normalize(row.get("stop")) not in {normalize(s) for s in stops}:
        problems.append(f"第{row.number}行：站点「{row.get('stop')}」不在{route.label}上"
                        f"（{route.label}的站点：{'、'.join(stops) or '无'}）")
    return route.number


def import_students(db: Session, path: str | Path, now: datetime | None = None) -> ImportResult:
    """Students by name + class, each with a parent code; a route and stop must be registered ones."""
    now = now or utcnow()
    rows = read_table(path, STUDENT_COLUMNS, required=("name", "class"))
    routes = list(db.scalars(select(BusRoute).where(BusRoute.stopped_at.is_(None)).order_by(BusRoute.id)))
    problems, parsed = [], []
    seen: dict[tuple[str, str], int] = {}
    for row in rows:
        name, class_name = row.get("name"), row.get("class")
        if not name:
            problems.append(f"第{row.number}行：姓名为空")
        if not class_name:
            problems.append(f"第{row.number}行：班级为空")
        route = _route_and_stop(routes, row, problems)
        if (name, class_name) in seen:
            problems.append(f"第{row.number}行：与第{seen[(name, class_name)]}行重复（同名同班）")
        seen[(name, class_name)] = row.number
        parsed.append((row.number, name, class_name, route, row.get("stop")))
    if problems:
        raise TableError(problems)
    result = ImportResult()
    for number, name, class_name, route, stop in parsed:
        student = db.scalar(select(Student).where(Student.name == name, Student.class_name == class_name))
        who = f"{class_name}{name}"
        if student is None:
            student = Student(name=name, class_name=class_name, route=route, stop=stop, created_at=now)
            db.add(student)
            issue_code(db, now, student=student)
            result.created += 1
            result.outcomes.append((number, who, ADDED))
        elif (student.route, student.stop) != (route, stop):
            result.changes[number] = "；".join(
                f"{label}：{old or '（空）'}→{new or '（空）'}" for label, old, new in (
                    ("线路", route_label(student.route), route_label(route)), ("站点", student.stop, stop)) if old != new)
            student.route, student.stop = route, stop
            result.updated += 1
            result.outcomes.append((number, who, CHANGED))
        else:
            result.unchanged += 1
            result.outcomes.append((number, who, UNCHANGED))
    db.flush()
    return result


__all__ = ["TableError", "binding", "code_holders", "describe_holder", "follow", "import_people", "import_students",
           "issue_code", "outstanding_codes", "reissue", "reissue_code", "unbind", "whoami"]
