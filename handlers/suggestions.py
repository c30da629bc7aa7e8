"""意见箱 (seeds: 设立意见箱，接受师生监督): `意见 <内容>` signed, `匿名意见 <内容>` anonymous, filed as
Y<n> and routed by topic to whoever answers for it (the canteen, the bus manager, the staff of a repair
category, else the admins); `回复 Y<n> …` answers, `我的意见` shows the sender their suggestions and
the answers.

How an anonymous sender reads the answer without the school knowing who they are: the suggestion
stores no person, no openid and no time of day — only the day and `claim`, an HMAC-SHA256 of the
sender's openid under a key derived from HOUQIN_SECRET_KEY. `我的意见` computes the same HMAC of the
asking openid and finds the rows. The answer is not pushed to an anonymous sender (a push row names its
recipient); they read it with 我的意见. The messages that carry an anonymous suggestion, and 我的意见
with its answer, are stored in the message log redacted (bot.inbox: Conversation(private=True)).
Someone holding the database and the key can compute the HMAC of every bound openid and so link each
anonymous suggestion to its sender; without the key they cannot (but see docs in the report: the log
still shows that someone sent a private message on that day)."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from datetime import date, tzinfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from bot.config import Settings
from bot.engine import Context, Conversation, Incoming, Reply
from bot.numbering import allocate_number
from bot.outbox import Outbox, told
from bot.school import admins, people_with_role, setting_person
from bot.text import day_label, month_span, original_tail
from handlers import canteen
from handlers.repair.rules import OTHER_CATEGORY, categorize
from handlers.repair.rules import responsible as repair_responsible
from models import Person, Suggestion, SuggestionReply
from models.voice import ANSWERED, OPEN

MAX_TEXT = 1000
CLAIM_CONTEXT = b"houqin suggestion claim v1"
FILER_ROLES = ("admin", "staff", "teacher", "bus_monitor", "canteen", "parent")
OFFICE_ROLES = ("admin", "staff", "teacher", "bus_monitor", "canteen")
CODE_RE = re.compile(r"[Yy](\d{1,9})(?!\d)\s*[:：,，]?\s*(.*)", re.S)

# topics the school's 分工 names, before the repair categories: (topic, words, who answers)
CANTEEN_TOPIC, BUS_TOPIC, CLEANING_TOPIC, SECURITY_TOPIC = "食堂", "校车", "保洁", "安保"
TOPIC_WORDS: list[tuple[str, tuple[str, ...]]] = [
    (CANTEEN_TOPIC, ("食堂", "饭菜", "伙食", "午餐", "早餐", "点心", "菜品", "饭")),
    (BUS_TOPIC, ("校车", "班车", "接送车", "司机", "跟车")),
    (CLEANING_TOPIC, ("保洁", "卫生", "打扫", "垃圾", "异味", "清洁")),
    (SECURITY_TOPIC, ("保安", "门卫", "安保", "校门", "进出")),
]
GENERAL_TOPIC = "综合"

HELP_SIGNED = "意见 内容 — 向后勤处提意见（实名）"
HELP_ANONYMOUS = "匿名意见 内容 — 匿名提意见（后勤处看不到是谁，你仍可用「我的意见」看回复）"
HELP_MINE = "我的意见 — 查看我提的意见和回复"
HELP_REPLY = "回复 Y编号 内容 — 答复意见箱的意见"
ASK_TEXT = "请直接发送你的意见内容（发送「取消」可退出）。"
ASK_TEXT_ANONYMOUS = "请直接发送你的匿名意见内容（后勤处看不到是谁发的；发送「取消」可退出）。"
FILED = "已收到你的意见 {code}，已转给{who}。答复后会通知你，也可发送「我的意见」查看。"
FILED_ANONYMOUS = ("已匿名收到你的意见 {code}，将在整点与其他匿名意见一起转给{who}（以免从时间上认出你）。"
                   "后勤处看不到是谁发的；答复不会推送给你，请之后发送「我的意见」查看回复。")
TOO_LONG = "意见太长了（最多{n}字），请精简后再发。"
PUSH_NEW = "【意见箱】{code}（{topic}）{who}：{text}\n答复请发送「回复 {code} 内容」。"
PUSH_REPLY = "【意见箱答复】你{day}提的意见 {code}：{text}\n答复（{who}）：{reply}"
ANONYMOUS_NAME = "匿名"
MINE_NONE = "你还没有提过意见。发送「意见 内容」或「匿名意见 内容」提意见。"
MINE_HEAD = "你提的意见："
MINE_ROW = "{code} {day}{anonymous}【{status}】{text}"
MINE_REPLY = "  答复（{who}）：{text}"
STATUS_NAMES = {OPEN: "待答复", ANSWERED: "已答复"}
MINE_ANONYMOUS = "（匿名）"
REPLY_USAGE = "请按格式发送：回复 Y编号 内容，例如：回复 Y3 已安排增加午餐分量，谢谢建议"
REPLY_UNKNOWN = "没有找到意见 {code}。"
REPLY_NOT_YOURS = "意见 {code} 转给的是{who}，只有他们和管理员可以答复。"
REPLIED = "已答复意见 {code}。{told}"
REPLIED_ANONYMOUS = "已答复意见 {code}。提意见的人是匿名的，无法推送；对方发送「我的意见」时会看到答复。"
REPLIED_GONE = "已答复意见 {code}。提意见的人已不在名单中，答复已记录。"
SHORT = 40


class Step:
    TEXT = "text"


signed = Conversation("suggestion", title="意见", keywords=["意见", "提意见"], roles=FILER_ROLES,
                      help=HELP_SIGNED, topic="意见箱")
anonymous = Conversation("anonymous_suggestion", title="匿名意见", keywords=["匿名意见", "匿名建议"],
                         roles=FILER_ROLES, help=HELP_ANONYMOUS, topic="意见箱", private=True)
mine = Conversation("my_suggestions", title="我的意见", keywords=["我的意见", "我的建议"], roles=FILER_ROLES,
                    help=HELP_MINE, topic="意见箱", private=True)
reply = Conversation("suggestion_reply", title="答复意见", keywords=["回复"], roles=OFFICE_ROLES,
                     help=HELP_REPLY, topic="意见箱")


# -- the claim ---------------------------------------------------------------------------------
def claim_of(settings: Settings, openid: str) -> str:
    """The anonymous sender's claim: HMAC-SHA256(openid) under a key derived from HOUQIN_SECRET_KEY."""
    key = hmac.new(settings.secret_key.encode(), CLAIM_CONTEXT, hashlib.sha256).digest()
    return hmac.new(key, openid.encode(), hashlib.sha256).hexdigest()


# -- routing -----------------------------------------------------------------------------------
def route(db: Session, text: str) -> tuple[str, list[Person]]:
    """The topic of a suggestion and who answers for it: the 分工 topics, then the repair categories."""
    for topic, words in TOPIC_WORDS:
        if any(w in text for w in words):
            people: list[Person] = []
            if topic == CANTEEN_TOPIC:
                people = people_with_role(db, "canteen")
            elif topic == BUS_TOPIC:
                manager = setting_person(db, "bus_manager")
                people = [manager] if manager is not None else []
            else:
                people = [p for p in people_with_role(db, "staff") if topic in p.category_list]
            return topic, people or admins(db)
    category = categorize(db, text)
    if category != OTHER_CATEGORY:
        return category, repair_responsible(db, category)
    return GENERAL_TOPIC, admins(db)


def file_suggestion(ctx: Context, text: str, anonymous_: bool) -> Reply:
    if len(text) > MAX_TEXT:
        return Reply(TOO_LONG.format(n=MAX_TEXT), next=Step.TEXT)
    person = ctx.person
    assert person is not None
    topic, people = route(ctx.db, text)
    suggestion = Suggestion(number=allocate_number(ctx.db, Suggestion.number), anonymous=anonymous_, text=text,
                            topic=topic, assignee=people[0] if people else None, filed_on=ctx.local_now.date())
    if anonymous_:
        suggestion.claim = claim_of(ctx.settings, ctx.openid)
    else:
        suggestion.person, suggestion.filed_at = person, ctx.now
    ctx.db.add(suggestion)
    ctx.db.flush()
    names = "、".join(p.name for p in people) or "后勤处"
    if anonymous_:  # told on the hour with the others (scheduler/suggestions.py), not now
        return Reply.end(FILED_ANONYMOUS.format(code=suggestion.code, who=names))
    notify_assignees(ctx.db, ctx.outbox, suggestion, people)
    return Reply.end(FILED.format(code=suggestion.code, who=names))


def notify_assignees(db: Session, outbox: Outbox, suggestion: Suggestion, people: list[Person] | None = None) -> None:
    """Tell whoever answers for the suggestion (its topic's people); it is routed from then on."""
    people = people if people is not None else route(db, suggestion.text)[1]
    who = ANONYMOUS_NAME if suggestion.anonymous else (suggestion.person.name if suggestion.person else "")
    outbox.notify(people, "suggestion_new",
                  PUSH_NEW.format(code=suggestion.code, topic=suggestion.topic, who=who, text=suggestion.text),
                  fields={"code": suggestion.code, "topic": suggestion.topic})
    suggestion.routed = True


def route_anonymous_suggestions(db: Session, outbox: Outbox) -> list[Suggestion]:
    """The anonymous suggestions not yet passed on, told to whoever answers for them, all at once."""
    waiting = list(db.scalars(select(Suggestion).where(Suggestion.routed.is_(False)).order_by(Suggestion.number)))
    for suggestion in waiting:
        notify_assignees(db, outbox, suggestion)
    return waiting


def _text(msg: Incoming) -> str:
    return " ".join(msg.kept_args).strip()


@signed.entry
def start_signed(msg: Incoming, ctx: Context) -> Reply:
    text = _text(msg)
    return file_suggestion(ctx, text, False) if text else Reply(ASK_TEXT, next=Step.TEXT)


@signed.on(Step.TEXT)
def got_signed(msg: Incoming, ctx: Context) -> Reply | None:
    if not msg.text:
        return Reply(ASK_TEXT, next=Step.TEXT)
    return file_suggestion(ctx, msg.kept_text, False)


@anonymous.entry
def start_anonymous(msg: Incoming, ctx: Context) -> Reply:
    text = _text(msg)
    return file_suggestion(ctx, text, True) if text else Reply(ASK_TEXT_ANONYMOUS, next=Step.TEXT)


@anonymous.on(Step.TEXT)
def got_anonymous(msg: Incoming, ctx: Context) -> Reply | None:
    if not msg.text:
        return Reply(ASK_TEXT_ANONYMOUS, next=Step.TEXT)
    return file_suggestion(ctx, msg.kept_text, True)


# -- 我的意见 -------------------------------------------------------------------------------------
def suggestions_of(db: Session, settings: Settings, person_id: int | None, openid: str) -> list[Suggestion]:
    """The sender's suggestions: the signed ones by person, the anonymous ones by the openid's claim."""
    mine_ = [Suggestion.claim == claim_of(settings, openid)]
    if person_id is not None:
        mine_.append(Suggestion.person_id == person_id)
    return list(db.scalars(select(Suggestion).where(or_(*mine_)).order_by(Suggestion.number.desc())
                           .options(selectinload(Suggestion.replies)).limit(10)))


def shorten(text: str, limit: int = SHORT) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


@mine.entry
def show_mine(msg: Incoming, ctx: Context) -> Reply:
    rows = suggestions_of(ctx.db, ctx.settings, ctx.person_id, ctx.openid)
    if not rows:
        return Reply.end(MINE_NONE)
    lines = [MINE_HEAD]
    for s in rows:
        lines.append(MINE_ROW.format(code=s.code, day=day_label(s.filed_on), status=STATUS_NAMES[s.status],
                                     anonymous=MINE_ANONYMOUS if s.anonymous else "", text=shorten(s.text)))
        lines += [MINE_REPLY.format(who=r.name, text=r.text) for r in s.replies]
    return Reply.end("\n".join(lines))


# -- 回复 Y<n> ------------------------------------------------------------------------------------
def answer_suggestion(outbox: Outbox, replier: Person, suggestion: Suggestion, text: str) -> str:
    """Record `replier`'s answer and tell a signed sender; returns what happened (Chinese)."""
    now = outbox.now
    suggestion.replies.append(SuggestionReply(person_id=replier.id, name=replier.name, text=text, at=now))
    suggestion.status = ANSWERED
    if suggestion.anonymous:
        return REPLIED_ANONYMOUS.format(code=suggestion.code)
    if suggestion.person is None:
        return REPLIED_GONE.format(code=suggestion.code)
    notice = outbox.notify(suggestion.person, "suggestion_reply", PUSH_REPLY.format(
        day=day_label(suggestion.filed_on), code=suggestion.code, text=shorten(suggestion.text), who=replier.name,
        reply=text), fields={"code": suggestion.code, "topic": suggestion.topic})
    return REPLIED.format(code=suggestion.code, told=told(notice))


def may_answer(db: Session, person: Person, suggestion: Suggestion) -> bool:
    if "admin" in person.role_set or suggestion.assignee_id == person.id:
        return True
    return any(p.id == person.id for p in route(db, suggestion.text)[1])


@reply.entry
def reply_entry(msg: Incoming, ctx: Context) -> Reply:
    joined = " ".join(msg.args)
    if not CODE_RE.match(joined) and ctx.has_role(*canteen.CANTEEN_SIDE):
        return canteen.answer_feedback(msg, ctx)  # 回复 F<n>: the canteen's answer to its feedback
    match = CODE_RE.fullmatch(joined)
    if match is None or not match[2].strip():
        return Reply.end(REPLY_USAGE)
    person = ctx.person
    assert person is not None
    code = f"Y{int(match[1])}"
    suggestion = ctx.db.scalar(select(Suggestion).where(Suggestion.number == int(match[1])))
    if suggestion is None:
        return Reply.end(REPLY_UNKNOWN.format(code=code))
    if not may_answer(ctx.db, person, suggestion):
        who = "、".join(p.name for p in route(ctx.db, suggestion.text)[1]) or "管理员"
        return Reply.end(REPLY_NOT_YOURS.format(code=code, who=who))
    text = original_tail(" ".join(msg.kept_args), match[2].strip())[:MAX_TEXT]
    return Reply.end(answer_suggestion(ctx.outbox, person, suggestion, text))


# -- the record and the digest -------------------------------------------------------------------
LEDGER_HEADER = ["编号", "日期", "实名/匿名", "提意见人", "主题", "转给", "内容", "状态", "答复人", "答复时间", "答复"]


def suggestions_in_month(db: Session, month: date) -> list[Suggestion]:
    return suggestions_between(db, *month_span(month))


def suggestions_between(db: Session, first: date, after: date) -> list[Suggestion]:
    """The suggestions filed on the days `first <= day < after` (a month, a term: bot/ledgers.py)."""
    return list(db.scalars(select(Suggestion).where(Suggestion.filed_on >= first, Suggestion.filed_on < after)
                           .order_by(Suggestion.number).options(selectinload(Suggestion.replies))))


def suggestion_ledger(rows: Sequence[Suggestion], tz: tzinfo) -> list[list[object]]:
    out: list[list[object]] = []
    for s in rows:
        last = s.replies[-1] if s.replies else None
        out.append([s.code, s.filed_on, "匿名" if s.anonymous else "实名",
                    ANONYMOUS_NAME if s.anonymous else (s.person.name if s.person else ""), s.topic,
                    s.assignee.name if s.assignee else "", s.text, STATUS_NAMES[s.status],
                    last.name if last else "", last.at.astimezone(tz).replace(tzinfo=None) if last else None,
                    "\n".join(r.text for r in s.replies)])
    return out


__all__ = ["anonymous", "mine", "reply", "signed"]
