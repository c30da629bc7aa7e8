"""Who is who: following the account, binding with a code, 解绑, 我; and the people/students imports.

Operators create people and students (import, console or CLI); each person gets a one-time bind
code and each student a parent code that any of the student's parents may use until it expires.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.engine import Context, Conversation, Incoming, Reply, role_names
from bot.outbox import settle_template_job
from bot.tables import TableError, read_table
from bot.text import route_key, split_list
from models import (
    ROLE_NAMES,
    ROLES,
    BindAttempt,
    BindCode,
    Binding,
    ParentLink,
    Person,
    PersonRole,
    Student,
    utcnow,
)

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L
CODE_LENGTH = 6
CODE_LIFETIME = timedelta(days=14)
CODE_NOISE = re.compile(r"[\s:;,.\-_]+")  # what people type around or inside a code
LOCKOUT_ATTEMPTS = 5
LOCKOUT_WINDOW = timedelta(minutes=10)
LOCKOUT_PERIOD = timedelta(minutes=10)

WELCOME = ("欢迎关注后勤助手！这里可以报修、校车点名、值日签到、评价食堂、查看每周菜单。\n"
           "请发送「绑定 绑定码」绑定身份（绑定码由学校后勤处提供），发送「帮助」查看命令。")
WELCOME_BACK = "欢迎回来，{name}！发送「帮助」查看你可以使用的命令。"
ASK_CODE = "请发送「绑定 绑定码」，例如：绑定 AB3D5F。绑定码由学校后勤处提供。"
BAD_CODE = "绑定码「{code}」无效。请核对后重新发送（绑定码为6位字母和数字）。"
EXPIRED_CODE = "绑定码「{code}」已过期，请联系后勤处重新获取。"
USED_CODE = "绑定码「{code}」已被使用。如有疑问请联系后勤处。"
LOCKED = "绑定码错误次数过多，请{minutes}分钟后再试。"
BOUND = "绑定成功！你好，{name}（{roles}）。发送「帮助」查看你可以使用的命令。"
ALREADY_BOUND = "你已绑定为{name}。如需更换身份，请先发送「解绑」。"
PARENT_BOUND = "绑定成功！你已作为家长关联学生：{student}（{class_name}）。"
PARENT_ALREADY = "你已关联学生{student}，无需重复绑定。"
UNBOUND = "已解绑。你将不再收到{name}的推送，发送「绑定 绑定码」可重新绑定。"
NOT_BOUND_YET = "你还没有绑定身份。发送「绑定 绑定码」进行绑定。"
PARENT_NAME = "{student}家长"
WHOAMI = "姓名：{name}\n身份：{roles}"

HELP_BIND = "绑定 绑定码 — 绑定身份；解绑；我 — 查看我的身份"

follow = Conversation("follow", title="关注")
binding = Conversation("binding", title="绑定", keywords=["绑定", "bind"], scenes=["bind"], help=HELP_BIND,
                       topic="身份", rank=6)
unbind = Conversation("unbind", title="解绑", keywords=["解绑", "unbind"])
whoami = Conversation("whoami", title="我", keywords=["我", "whoami", "我是谁"])


# -- following --------------------------------------------------------------------------------
def _binding_row(ctx: Context) -> Binding:
    if ctx.binding is None:
        ctx.binding = Binding(openid=ctx.openid, subscribed=True)
        ctx.db.add(ctx.binding)
    return ctx.binding


@follow.on_event("subscribe")
def subscribed(msg: Incoming, ctx: Context) -> Reply:
    row = _binding_row(ctx)
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


def _wrong(ctx: Context, code: str, answer: str) -> str:
    ctx.db.add(BindAttempt(openid=ctx.openid, code=code[:64], at=ctx.now))
    return answer


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
        minutes = max(1, int((until - ctx.now).total_seconds() + 59) // 60)
        return LOCKED.format(minutes=minutes)
    found = ctx.db.scalar(select(BindCode).where(BindCode.code == code)) if re.fullmatch(r"[A-Z0-9]{6}", code) else None
    if found is None:
        return _wrong(ctx, code, BAD_CODE.format(code=code))
    if found.expires_at <= ctx.now:
        return _wrong(ctx, code, EXPIRED_CODE.format(code=code))
    if found.kind == "person" and (found.used_at is not None or found.person is None) and ctx.person is None:
        return _wrong(ctx, code, USED_CODE.format(code=code))
    return _bind_student(ctx, found) if found.kind == "student" else _bind_person(ctx, found)


def _bind_person(ctx: Context, code: BindCode) -> str:
    if ctx.person is not None:
        return ALREADY_BOUND.format(name=ctx.person.name)
    assert code.person is not None
    row = _binding_row(ctx)
    row.person, row.bound_at, row.subscribed = code.person, ctx.now, True
    code.used_at, code.used_by = ctx.now, ctx.openid
    return BOUND.format(name=code.person.name, roles=role_names(code.person.role_set) or "未分配")


def _bind_student(ctx: Context, code: BindCode) -> str:
    student = code.student
    assert student is not None
    row = _binding_row(ctx)
    person = ctx.person
    if person is None:
        person = Person(name=_parent_name(ctx.db, student), roles=[PersonRole(role="parent")])
        ctx.db.add(person)
        row.person, row.bound_at, row.subscribed = person, ctx.now, True
    elif "parent" not in person.role_set:
        person.roles.append(PersonRole(role="parent"))
    if person.id is not None and ctx.db.scalar(select(ParentLink).where(
            ParentLink.person_id == person.id, ParentLink.student_id == student.id)) is not None:
        return PARENT_ALREADY.format(student=student.name)
    ctx.db.add(ParentLink(person=person, student=student))
    code.used_at, code.used_by = code.used_at or ctx.now, code.used_by or ctx.openid
    return PARENT_BOUND.format(student=student.name, class_name=student.class_name or "未分班")


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
def do_unbind(msg: Incoming, ctx: Context) -> Reply:
    person = ctx.person
    if person is None or ctx.binding is None:
        return Reply.end(NOT_BOUND_YET)
    ctx.binding.person_id = None
    ctx.binding.person = None
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
    while True:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        if db.scalar(select(func.count()).select_from(BindCode).where(BindCode.code == code)) == 0:
            return code


def issue_code(db: Session, now: datetime, person: Person | None = None, student: Student | None = None) -> BindCode:
    code = BindCode(code=new_code(db), kind="student" if student is not None else "person",
                    person=person, student=student, expires_at=now + CODE_LIFETIME, created_at=now)
    db.add(code)
    return code


def outstanding_codes(db: Session, now: datetime) -> list[dict[str, Any]]:
    """Codes still usable: person codes not used by an unbound person, and unexpired parent codes."""
    rows = db.scalars(select(BindCode).where(BindCode.expires_at > now).order_by(BindCode.id))
    result = []
    for code in rows:
        if code.kind == "person":
            if code.used_at is not None or code.person is None or code.person.openids:
                continue
            name, roles = code.person.name, sorted(code.person.role_set, key=ROLES.index)
        else:
            if code.student is None:
                continue
            name, roles = code.student.name, ["parent"]
        result.append({"name": name, "kind": code.kind, "code": code.code, "roles": roles,
                       "expires_at": code.expires_at.isoformat()})
    return result


# -- imports ----------------------------------------------------------------------------------
ROLE_WORDS = {**{r: r for r in ROLES}, **{v: k for k, v in ROLE_NAMES.items()},
              "后勤主任": "admin", "教师": "teacher", "老师": "teacher", "班主任": "teacher"}
PEOPLE_COLUMNS = {"name": ("姓名",), "roles": ("角色", "身份"), "phone": ("手机", "电话", "手机号"),
                  "class": ("班级",), "route": ("线路",), "categories": ("负责类别", "类别")}
STUDENT_COLUMNS = {"name": ("姓名", "学生姓名"), "class": ("班级",), "route": ("线路", "校车线路"),
                   "stop": ("站点", "上车站点")}


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0

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
    if problems:
        raise TableError(problems)
    result = ImportResult()
    for name, phone, roles, class_name, route, categories in parsed:
        person = db.scalar(select(Person).where(Person.name == name, Person.phone == phone))
        if person is None:
            person = Person(name=name, phone=phone, class_name=class_name, route=route, categories=categories,
                            roles=[PersonRole(role=r) for r in roles], created_at=now)
            db.add(person)
            issue_code(db, now, person=person)
            result.created += 1
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
    db.flush()
    return result


def import_students(db: Session, path: str | Path, now: datetime | None = None) -> ImportResult:
    """Students by name + class, each with a parent code."""
    now = now or utcnow()
    rows = read_table(path, STUDENT_COLUMNS, required=("name", "class"))
    problems, parsed = [], []
    seen: dict[tuple[str, str], int] = {}
    for row in rows:
        name, class_name = row.get("name"), row.get("class")
        if not name:
            problems.append(f"第{row.number}行：姓名为空")
        if not class_name:
            problems.append(f"第{row.number}行：班级为空")
        route = route_key(row.get("route")) if row.get("route") else ""
        if (name, class_name) in seen:
            problems.append(f"第{row.number}行：与第{seen[(name, class_name)]}行重复（同名同班）")
        seen[(name, class_name)] = row.number
        parsed.append((name, class_name, route, row.get("stop")))
    if problems:
        raise TableError(problems)
    result = ImportResult()
    for name, class_name, route, stop in parsed:
        student = db.scalar(select(Student).where(Student.name == name, Student.class_name == class_name))
        if student is None:
            student = Student(name=name, class_name=class_name, route=route, stop=stop, created_at=now)
            db.add(student)
            issue_code(db, now, student=student)
            result.created += 1
        elif (student.route, student.stop) != (route, stop):
            student.route, student.stop = route, stop
            result.updated += 1
        else:
            result.unchanged += 1
    db.flush()
    return result


__all__ = ["TableError", "binding", "follow", "import_people", "import_students", "issue_code",
           "outstanding_codes", "unbind", "whoami"]
