"""Notices with confirmation (通知 N<n>, 回执): one engine the office, the console's 推送 and the county
bureau all call — `send_notice(db, outbox, sender, audience, title, body, confirm=True)`.

A notice goes to a group (全体家长, a class's parents, 教师, 后勤, 全体教职工, or one person) as one push
with a detail page; parents' pushes wait out the quiet hours like every parent push (bot.outbox). A
recipient confirms by replying 收到 (the latest open notice) or 收到 N<n>; the sender sees who has and has
not (通知 N<n>, `houqin notices show N<n>`), reminds the rest once (通知 N<n> 提醒, `houqin notices remind`),
and the confirmations are the record (`houqin export notices`). Drill notices to parents use it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from bot.engine import Context, Conversation, Incoming, Reply
from bot.numbering import allocate_number
from bot.outbox import Notice as OutboxNotice
from bot.outbox import Outbox, new_page_token, page_url, told
from bot.people import PersonNotFound, resolve_person
from bot.school import people_with_role
from models import Delivery, Notice, NoticeRecipient, ParentLink, Person, Push, Student

OFFICE = "后勤处"
NOTICE_KIND = "notice"
STAFF_ROLES = ("admin", "staff", "teacher", "bus_monitor", "canteen")
SENDER_ROLES = {"admin", "staff"}
VIA_REPLY, VIA_PAGE = "微信回复", "详情页"

# audiences, as an operator writes them
ALL_PARENTS = ("全体家长", "家长", "所有家长")
TEACHERS = ("教师", "全体教师", "老师")
STAFF = ("后勤", "后勤人员", "后勤处")
EVERY_STAFF = ("全体教职工", "教职工")
ADMINS = ("管理员", "学校管理员")  # the bureau's 通知 to a school's admins
CLASS_PARENTS = re.compile(r"(.+班)(?:的)?家长")

HELP_CONFIRM = "收到 [N编号] — 确认收到通知（回执）"
HELP_STATUS = "通知 [N编号] [提醒] — 查看通知的确认情况；加「提醒」提醒未确认的人"
PUSH_TEXT = "【{sender}通知】{title}\n{body}"
PUSH_CONFIRM_MANY = "\n请回复「收到 {code}」确认（回执）。"
REMIND_TEXT = "【提醒】请确认通知 {code}「{title}」：回复「收到 {code}」。\n{body}"
CONFIRMED = "已确认收到通知 {code}「{title}」。谢谢！"
ALREADY = "通知 {code}「{title}」你已于 {at} 确认过。"
STILL_OPEN = "你还有 {n} 条通知未确认：{codes}（回复「收到 N编号」逐条确认）。"
NOT_YOURS = "没有找到发给你的通知 {code}。"
NOTHING_OPEN = "你没有需要确认的通知。"
STATUS_HEAD = "通知 {code}「{title}」（{audience}，{when}，{sender}）：已确认 {done}/{total}"
STATUS_NO_CONFIRM = "通知 {code}「{title}」（{audience}，{when}，{sender}）：不需回执，已发送 {total} 人"
STATUS_UNCONFIRMED = "未确认：{names}"
STATUS_UNREACHED = "无法送达：{names}"
STATUS_MORE = "等 {n} 人"
STATUS_REMIND = "发送「通知 {code} 提醒」提醒未确认的人（仅一次）。"
STATUS_REMINDED = "已于 {at} 提醒过未确认的人。"
LIST_HEAD = "最近的通知："
LIST_ROW = "{code} {title}（{audience}）已确认 {done}/{total}"
LIST_NONE = "还没有发过通知。"
STATUS_USAGE = "请按格式发送：通知 N编号，或 通知 N编号 提醒"
UNKNOWN_NOTICE = "没有找到通知 {code}。"
NOT_SENDER = "通知 {code} 不是你发的，只有发送人和管理员可以查看确认情况。"
REMINDED = "已提醒 {n} 位未确认的人：{told}"
REMIND_ONCE = "通知 {code} 已于 {at} 提醒过一次，不再重复提醒。请电话联系仍未确认的人。"
REMIND_NOBODY = "通知 {code} 所有人都已确认，无需提醒。"
REMIND_NO_CONFIRM = "通知 {code} 不需回执，无需提醒。"
BAD_AUDIENCE = "没有「{audience}」这个发送对象。可以写：全体家长、三(2)班家长、教师、后勤、管理员、全体教职工，或一个人的姓名。"
EMPTY_AUDIENCE = "「{audience}」目前没有人。"
SHOWN_NAMES = 30
WORDS_SEEN = ("收到", "已收到", "确认收到", "已阅", "已读", "收到了", "已确认")
CONFIRM_FILLERS = "好的您你老师谢啊呀哈哦的了呢吧 ,.!?~、，。！？～:：[]强👍👌🙏"
CODE_RE = re.compile(r"[Nn]\s*(\d{1,9})")

confirm = Conversation("notice_confirm", title="通知回执", roles={*STAFF_ROLES, "parent"}, help=HELP_CONFIRM,
                       cues=("收到", "已阅", "已读", "已确认"), topic="通知")
status = Conversation("notice_status", title="通知确认情况", keywords=["通知"], roles=SENDER_ROLES,
                      help=HELP_STATUS, topic="通知")


# -- audiences ---------------------------------------------------------------------------------
@dataclass
class Audience:
    """Whom a notice goes to: a label for the record and the people."""

    label: str
    people: list[Person]
    details: dict[int, str] = field(default_factory=dict)  # a parent's child and class


class AudienceError(ValueError):
    """An audience that names nobody; the message is Chinese."""


def _parents(db: Session, class_name: str | None = None) -> Audience:
    query = (select(Person, Student).join(ParentLink, ParentLink.person_id == Person.id)
             .join(Student, ParentLink.student_id == Student.id).order_by(Student.class_name, Student.name))
    if class_name is not None:
        query = query.where(Student.class_name == class_name)
    people: dict[int, Person] = {}
    details: dict[int, list[str]] = {}
    for person, student in db.execute(query).unique():
        people.setdefault(person.id, person)
        details.setdefault(person.id, []).append(f"{student.class_name}{student.name}家长")
    if class_name is None:  # parents not yet linked to a child still hear the school
        for person in people_with_role(db, "parent"):
            people.setdefault(person.id, person)
    return Audience(f"{class_name}家长" if class_name else ALL_PARENTS[0], list(people.values()),
                    {pid: "、".join(d) for pid, d in details.items()})


def resolve_audience(db: Session, spec: str) -> Audience:
    """全体家长 / 三(2)班家长 / 教师 / 后勤 / 全体教职工 / a person's name (姓名 班级 among namesakes)."""
    spec = spec.strip()
    if spec in ALL_PARENTS:
        audience = _parents(db)
    elif (match := CLASS_PARENTS.fullmatch(spec)) is not None:
        audience = _parents(db, match[1])
    elif spec in TEACHERS:
        audience = Audience(TEACHERS[0], people_with_role(db, "teacher"))
    elif spec in STAFF:
        audience = Audience(STAFF[0], people_with_role(db, "staff"))
    elif spec in ADMINS:
        audience = Audience(ADMINS[0], people_with_role(db, "admin"))
    elif spec in EVERY_STAFF:
        audience = Audience(EVERY_STAFF[0], people_with_role(db, *STAFF_ROLES))
    else:
        try:
            person = resolve_person(db, spec)
        except PersonNotFound as exc:
            raise AudienceError(BAD_AUDIENCE.format(audience=spec)) from exc
        audience = Audience(person.name, [person])
    if not audience.people:
        raise AudienceError(EMPTY_AUDIENCE.format(audience=audience.label))
    return audience


# -- sending -----------------------------------------------------------------------------------
@dataclass
class Sent:
    notice: Notice
    told: str  # what the reply or the console says: 已通知…；…无法送达


def send_notice(db: Session, outbox: Outbox, sender: Person | None, audience: Audience | str, title: str,
                body: str, confirm: bool = True, *, kind: str = NOTICE_KIND, sender_name: str = "",
                fields: Mapping[str, object] | None = None, safety: bool = False) -> Sent:
    """Send notice N<n> to `audience` (an Audience or its words) as one push with a detail page, and
    record each recipient for their 回执. Raises AudienceError for an audience naming nobody."""
    if isinstance(audience, str):
        audience = resolve_audience(db, audience)
    notice = Notice(number=allocate_number(db, Notice.number), kind=kind, title=title.strip(), body=body.strip(),
                    audience=audience.label, confirm=confirm, sender=sender,
                    sender_name=sender_name or (sender.name if sender is not None else OFFICE),
                    created_at=outbox.now)
    db.add(notice)
    text = PUSH_TEXT.format(sender=sender_name if sender_name and sender_name != OFFICE else "",
                            title=notice.title, body=notice.body).rstrip()
    if confirm:
        text += PUSH_CONFIRM_MANY.format(code=notice.code)
    rows = [NoticeRecipient(person=person, name=person.name, detail=audience.details.get(person.id, ""))
            for person in audience.people]
    notice.recipients.extend(rows)
    db.flush()
    result = _push_each(db, outbox, notice, rows, text, safety=safety, fields=fields)
    db.flush()
    return Sent(notice, told(result))


def _push_each(db: Session, outbox: Outbox, notice: Notice, rows: Sequence[NoticeRecipient], text: str,
               safety: bool = False, fields: Mapping[str, object] | None = None) -> OutboxNotice:
    """One push per recipient, so that its page (/p/<token>) is theirs and can take their 回执. The outbox
    judges everyone's channels in one call; its push is then split, a copy (and page) per recipient."""
    people = [r.person for r in rows if r.person is not None]
    result = outbox.notify(people, notice.kind, text, safety=safety, fields=fields)
    if result.push is None:
        return result
    unreached = {p.id for p, _ in result.unreached}
    first = result.push
    db.flush()
    by_person: dict[int | None, list[int]] = {}
    for delivery in first.deliveries:
        by_person.setdefault(delivery.person_id, []).append(delivery.id)
    moves: list[tuple[Push, list[int]]] = []
    for index, row in enumerate(r for r in rows if r.person is not None):
        row.reached = row.person_id not in unreached
        if index == 0:
            push = first
        else:
            push = Push(kind=first.kind, text=first.text, safety=first.safety, token=new_page_token(),
                        created_at=first.created_at, fields=dict(first.fields or {}))
            db.add(push)
            moves.append((push, by_person.get(row.person_id, [])))
        push.subject, push.subject_id = NOTICE_SUBJECT, row.id
        push.url = page_url(outbox.settings, push)
    db.flush()
    for push, ids in moves:  # the deliveries move to their recipient's own push
        if ids:
            db.execute(update(Delivery).where(Delivery.id.in_(ids)).values(push_id=push.id)
                       .execution_options(synchronize_session=False))
    db.expire(first, ["deliveries"])
    if notice.push_id is None:
        notice.push_id = first.id
    return result


NOTICE_SUBJECT = "notice"  # a notice push's page shows the notice and takes the 回执 (bot.push_page)


def find_notice(db: Session, code: str) -> Notice | None:
    match = CODE_RE.fullmatch(code.strip())
    if match is None:
        return None
    return db.scalar(select(Notice).where(Notice.number == int(match[1]))
                     .options(selectinload(Notice.recipients)))


def open_notices(db: Session, person_id: int) -> list[tuple[NoticeRecipient, Notice]]:
    """The person's notices awaiting their 回执, newest first."""
    rows = db.execute(select(NoticeRecipient, Notice).join(Notice, NoticeRecipient.notice_id == Notice.id)
                      .where(NoticeRecipient.person_id == person_id, NoticeRecipient.confirmed_at.is_(None),
                             Notice.confirm.is_(True)).order_by(Notice.number.desc()))
    return [(r, n) for r, n in rows]


def confirm_notice(db: Session, person: Person, now: datetime, code: str = "", via: str = VIA_REPLY
                   ) -> tuple[Notice | None, str]:
    """Record the person's 回执 for notice `code` (or their latest open one): (the notice, what to answer)."""
    if code:
        notice = find_notice(db, code)
        row = next((r for r in notice.recipients if r.person_id == person.id), None) if notice else None
        if notice is None or row is None:
            return None, NOT_YOURS.format(code=code.upper().replace(" ", ""))
        if row.confirmed_at is not None:
            return notice, ALREADY.format(code=notice.code, title=notice.title, at=f"{row.confirmed_at:%m-%d %H:%M}")
    else:
        waiting = open_notices(db, person.id)
        if not waiting:
            return None, NOTHING_OPEN
        row, notice = waiting[0]
    row.confirmed_at, row.confirmed_via = now, via
    answer = CONFIRMED.format(code=notice.code, title=notice.title)
    rest = open_notices(db, person.id)
    if rest:
        answer += STILL_OPEN.format(n=len(rest), codes="、".join(n.code for _, n in rest[:5]))
    return notice, answer


# -- 收到 -----------------------------------------------------------------------------------------
def _is_confirmation(text: str) -> str | None:
    """"收到", "收到！", "好的，收到", "收到 N3", "已阅" → the code given ("" for none); None otherwise."""
    code = ""
    match = CODE_RE.search(text)
    if match is not None:
        code = f"N{match[1]}"
        text = text[:match.start()] + text[match.end():]
    if not any(w in text for w in WORDS_SEEN):
        return None
    rest = text
    for word in sorted(WORDS_SEEN, key=len, reverse=True):
        rest = rest.replace(word, "")
    return code if not rest.strip(CONFIRM_FILLERS) else None


@confirm.on_event("text", "voice")
def got_confirmation(msg: Incoming, ctx: Context) -> Reply | None:
    """收到 with a notice open (or naming one) confirms it; without, it is a courtesy (handlers.courtesy)."""
    code = _is_confirmation(msg.text.lower())
    person = ctx.person
    if code is None or person is None:
        return None
    if not code and not open_notices(ctx.db, person.id):
        return None
    _, answer = confirm_notice(ctx.db, person, ctx.now, code.upper())
    return Reply.end(answer)


# -- 通知 N<n> [提醒] ------------------------------------------------------------------------------
@dataclass
class Status:
    notice: Notice
    confirmed: list[NoticeRecipient]
    unconfirmed: list[NoticeRecipient]
    unreached: list[NoticeRecipient]


def notice_status(notice: Notice) -> Status:
    rows = list(notice.recipients)
    return Status(notice, [r for r in rows if r.confirmed_at is not None],
                  [r for r in rows if r.confirmed_at is None], [r for r in rows if not r.reached])


def _names(rows: Sequence[NoticeRecipient]) -> str:
    names = [r.name + (f"（{r.detail}）" if r.detail else "") for r in rows[:SHOWN_NAMES]]
    more = STATUS_MORE.format(n=len(rows)) if len(rows) > SHOWN_NAMES else ""
    return "、".join(names) + more


def status_text(notice: Notice, tz: tzinfo) -> str:
    st = notice_status(notice)
    when = f"{notice.created_at.astimezone(tz):%m-%d %H:%M}"
    fields = {"code": notice.code, "title": notice.title, "audience": notice.audience, "when": when,
              "sender": notice.sender_name, "total": len(notice.recipients)}
    if not notice.confirm:
        return STATUS_NO_CONFIRM.format(**fields)
    lines = [STATUS_HEAD.format(**fields, done=len(st.confirmed))]
    if st.unconfirmed:
        lines.append(STATUS_UNCONFIRMED.format(names=_names(st.unconfirmed)))
    if st.unreached:
        lines.append(STATUS_UNREACHED.format(names=_names(st.unreached)))
    if st.unconfirmed:
        lines.append(STATUS_REMINDED.format(at=f"{notice.reminded_at.astimezone(tz):%m-%d %H:%M}")
                     if notice.reminded_at else STATUS_REMIND.format(code=notice.code))
    return "\n".join(lines)


def remind_unconfirmed(db: Session, outbox: Outbox, notice: Notice) -> str:
    """提醒未确认: once per notice, to everyone who has not confirmed. Returns what happened (Chinese)."""
    tz = outbox.settings.tz
    if not notice.confirm:
        return REMIND_NO_CONFIRM.format(code=notice.code)
    if notice.reminded_at is not None:
        return REMIND_ONCE.format(code=notice.code, at=f"{notice.reminded_at.astimezone(tz):%m-%d %H:%M}")
    waiting = [r for r in notice.recipients if r.confirmed_at is None and r.person is not None]
    if not waiting:
        return REMIND_NOBODY.format(code=notice.code)
    notice.reminded_at = outbox.now
    for row in waiting:
        row.reminded_at = outbox.now
    result = _push_each(db, outbox, notice, waiting,
                        REMIND_TEXT.format(code=notice.code, title=notice.title, body=notice.body))
    return REMINDED.format(n=len(waiting), told=told(result))


def confirm_from_page(db: Session, row: NoticeRecipient, now: datetime) -> bool:
    """The recipient pressed 确认收到 on their push's page; False if they had confirmed already."""
    if row.confirmed_at is not None or not row.notice.confirm:
        return False
    row.confirmed_at, row.confirmed_via = now, VIA_PAGE
    return True


def may_see(notice: Notice, person: Person) -> bool:
    return notice.sender_id == person.id or "admin" in person.role_set


@status.entry
def show_status(msg: Incoming, ctx: Context) -> Reply:
    person = ctx.person
    assert person is not None
    args = msg.args
    if not args:
        query = select(Notice).order_by(Notice.number.desc()).limit(5).options(selectinload(Notice.recipients))
        if "admin" not in person.role_set:
            query = query.where(Notice.sender_id == person.id)
        notices = list(ctx.db.scalars(query))
        if not notices:
            return Reply.end(LIST_NONE)
        rows = [LIST_ROW.format(code=n.code, title=n.title, audience=n.audience, total=len(n.recipients),
                                done=sum(r.confirmed_at is not None for r in n.recipients)) for n in notices]
        return Reply.end("\n".join([LIST_HEAD, *rows, STATUS_USAGE]))
    notice = find_notice(ctx.db, args[0])
    if notice is None:
        return Reply.end(UNKNOWN_NOTICE.format(code=args[0]) if CODE_RE.fullmatch(args[0]) else STATUS_USAGE)
    if not may_see(notice, person):
        return Reply.end(NOT_SENDER.format(code=notice.code))
    if len(args) > 1:
        if args[1] not in ("提醒", "提醒未确认"):
            return Reply.end(STATUS_USAGE)
        return Reply.end(remind_unconfirmed(ctx.db, ctx.outbox, notice))
    return Reply.end(status_text(notice, ctx.settings.tz))


# -- the record --------------------------------------------------------------------------------
LEDGER_HEADER = ["通知编号", "标题", "发送对象", "发送人", "发送时间", "需回执", "接收人", "家长/班级",
                 "送达", "确认时间", "确认方式", "提醒时间"]


def notices_between(db: Session, first: date, after: date, tz: tzinfo) -> list[Notice]:
    """The notices sent on the school days `first <= day < after` (a month, a term: bot/ledgers.py)."""
    start = datetime.combine(first, datetime.min.time(), tzinfo=tz)
    end = datetime.combine(after, datetime.min.time(), tzinfo=tz)
    return list(db.scalars(select(Notice).where(Notice.created_at >= start, Notice.created_at < end)
                           .order_by(Notice.number).options(selectinload(Notice.recipients))))


def notice_ledger(notices: Iterable[Notice], tz: tzinfo) -> list[list[object]]:
    """One row per recipient of each notice: the 回执 record."""

    def local(at: datetime | None) -> datetime | None:
        return at.astimezone(tz).replace(tzinfo=None) if at is not None else None

    return [[n.code, n.title, n.audience, n.sender_name, local(n.created_at), "是" if n.confirm else "否",
             r.name, r.detail, "是" if r.reached else "否", local(r.confirmed_at), r.confirmed_via,
             local(r.reminded_at)]
            for n in notices for r in n.recipients]


__all__ = ["confirm", "send_notice", "status"]
