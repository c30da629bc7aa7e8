"""The understanding corpus (issue 14): realistic messages from the demo school's people, each driven
through the real webhook and judged from what it recorded and what it answered.

    from tests.corpus.judge import accuracy, failures_table, run_corpus, tally
    results = run_corpus()                          # every case of messages.json (README.md: the format)
    accuracy(results), tally(results, lambda r: r.case.role), failures_table(results)

One app and one SQLite database for the whole run (what is judged is understanding, which does not
depend on the backend): the demo school is loaded and every sender bound
(through the webhook, with their bind codes) once, that database is kept as a golden copy, and each
case starts from it (the file copied back; the engine's connections dropped first). A case may have
preceding turns (other senders too, at other times); then its message goes in as signed, encrypted
safe-mode XML from the simulator's `WeChatUser`, with the clock fixed at the case's time.

Each case is classified:
- right: the expected capability was reached with the expected fields (a ticket at the right place
  with the right description, a leave for the right child and day, a headcount of the right route,
  direction and count, ...), or for answer-only capabilities the reply says what it must;
- question: nothing was recorded and the reply is a helpful question or points to the right command
  (要报修吗？/ 你是想「报修」吗？/ 「请假 …」), where the case allows one (`"ask": true`);
- wrong: anything else;
- wrong_ticket: a repair ticket was filed (or a report added to one) that the message did not ask
  for, or at the wrong place or with the wrong description. The aim is none.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import shutil
import sqlite3
import tempfile
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect

from bot import create_app
from bot.config import Settings
from bot.db import upgrade
from bot.demo import load_demo
from bot.places import place_key
from bot.services import Services
from bot.text import normalize
from bot.wechat.simulator import WeChatUser
from models import (
    AccompaniedMeal,
    BindCode,
    Binding,
    BusAlarm,
    BusLeave,
    BusRoute,
    BusSubscription,
    BusTrip,
    CanteenFeedback,
    CanteenReply,
    ConversationState,
    Drill,
    DutyCheckin,
    DutyPost,
    DutyShift,
    DutySwap,
    FireCheck,
    InboundMessage,
    MenuWeek,
    Person,
    RepairTicket,
    Room,
    Student,
    SurveyResponse,
    TicketEvent,
)
from models.repair import FOLLOW_UP

HERE = Path(__file__).resolve().parent
MESSAGES = HERE / "messages.json"
TZ = ZoneInfo("Asia/Shanghai")
DEFAULT_AT = "2026-11-24 10:00"  # a Tuesday in term, school time: this week's menu is published
NOT_UNDERSTOOD = "没有听懂"
ECHO = re.compile(r"没有听懂「.*?」|「[^」]*」仅限")  # the message echoed back; a refusal's own title
APOLOGY = "系统出了点问题"
RIGHT, QUESTION, WRONG, WRONG_TICKET = "right", "question", "wrong", "wrong_ticket"
VERDICT_NAMES = {RIGHT: "对", QUESTION: "有用的追问", WRONG: "错", WRONG_TICKET: "错误报修单"}
SETUP_FAILED = (NOT_UNDERSTOOD, APOLOGY, "仅限", "不对", "没有找到", "请按格式")  # a preceding turn that did not work
COURTESY_MAX = 120  # characters: a courteous reply is short

# Who sends: the demo school's people (bot/demo/people.csv), bound with their own codes, and parents
# who bound with a student's parent code (named as the bot names them), and a follower not yet bound.
ROLE_OF = {"周春明": "admin", "程财宝": "staff", "殷奇": "staff", "宦欢": "canteen", "张丽": "teacher",
           "王强": "teacher", "李娜": "bus_monitor", "陈建国": "parent", "刘欣怡家长": "parent",
           "孙悦家长": "parent", "新用户": "unbound"}
PARENT_CODES = {"刘欣怡家长": "刘欣怡", "孙悦家长": "孙悦"}  # bound with the student's parent code
UNBOUND = "新用户"
CAPABILITY_LABELS = {"repair": "报修", "patrol": "巡查隐患", "my_repairs": "我的报修/查单", "repair_work": "接单/完成/转派",
                     "repair_rating": "维修评价", "bus": "校车人数", "bus_ack": "校车警报确认", "leave": "校车请假",
                     "canteen": "食堂评价", "canteen_view": "食堂汇总/回复", "menu": "菜单", "duty": "值日签到/代班",
                     "fire_check": "消防自检", "drill": "演练", "courtesy": "客气话", "help": "帮助",
                     "identity": "绑定/身份", "photo": "图片", "other": "闲聊与无关消息"}
ROLE_LABELS = {"teacher": "教师", "parent": "家长", "staff": "后勤", "bus_monitor": "跟车老师", "canteen": "食堂",
               "admin": "管理员", "unbound": "未绑定"}

# What a helpful question or pointer looks like, per capability: the reply names the command
# (「报修…」), asks (要报修吗？/ 你是想「报修」吗？) or gives the capability's own usage.
ASK_MARKERS: dict[str, tuple[str, ...]] = {
    "repair": ("要报修吗", "是想「报修", "「报修", "报修地点"),
    "patrol": ("「巡查", "巡查 地点"),
    "bus": ("是想「校车", "「校车", "校车 线路", "没有找到线路"),
    "bus_ack": ("「确认",),
    "leave": ("要请假吗", "是想「请假", "「请假", "请假 孩子姓名"),
    "canteen": ("是想「食堂", "「食堂", "食堂 1-5", "回复 1-5", "请回复 1"),
    "canteen_view": ("「食堂评价",),
    "duty": ("是想「签到", "「签到", "签到 岗位"),
    "menu": ("是想「菜单", "「菜单", "「今天吃什么", "「下周菜单"),
    "my_repairs": ("「我的报修",),
    "repair_work": ("「接单", "「完成", "「转派"),
    "repair_rating": ("1-5", "1 到 5", "1到5"),
    "help": ("「帮助",),
    "identity": ("「绑定",),
}

# A question that names the capability's word and asks (…吗？, 回复「是」…) is helpful too, however it is put.
CAPABILITY_WORDS = {"repair": "报修", "patrol": "巡查", "bus": "校车", "bus_ack": "确认", "leave": "请假",
                    "canteen": "食堂", "duty": "签到", "menu": "菜单", "my_repairs": "报修", "repair_work": "R1",
                    "repair_rating": "评"}
ASKING = ("吗？", "吗?", "回复「是」")

# The capability a record kind belongs to, for cases that do not name one.
KIND_CAPABILITY = {"ticket": "repair", "hazard": "patrol", "leave": "leave", "unleave": "leave", "count": "bus",
                   "ack": "bus_ack", "feedback": "canteen", "checkin": "duty", "rate": "repair_rating",
                   "status": "repair_work", "survey": "canteen", "subscribe": "bus", "dialog": "repair"}


# -- the cases --------------------------------------------------------------------------------------
@dataclass
class Turn:
    sender: str
    text: str = ""
    kind: str = "text"  # text | voice | image | click | subscribe
    at: str = ""

    @classmethod
    def parse(cls, raw: Any, default_sender: str, default_at: str) -> Turn:
        if isinstance(raw, str):
            return cls(default_sender, raw, at=default_at)
        kind = next((k for k in ("voice", "image", "click", "subscribe") if k in raw), "text")
        text = raw.get("say", raw.get(kind, "")) if kind != "image" else ""
        return cls(raw.get("as", default_sender), str(text or ""), kind, raw.get("at", default_at))


@dataclass
class Case:
    id: str
    sender: str
    message: Turn
    want: dict[str, Any]
    capability: str
    ask: bool = False
    ask_markers: tuple[str, ...] = ()
    before: list[Turn] = field(default_factory=list)
    note: str = ""

    @property
    def role(self) -> str:
        return ROLE_OF.get(self.sender, "unbound")

    @property
    def kind(self) -> str:
        return next(iter(self.want))

    def expected(self) -> str:
        """What the case expects, in a line, for the failure table and the report."""
        body = self.want[self.kind]
        text = f"{self.kind} {json.dumps(body, ensure_ascii=False)}" if body not in (True, {}) else self.kind
        return text + (" (或追问)" if self.ask else "")


CASE_KEYS = {"id", "as", "say", "voice", "image", "click", "subscribe", "at", "before", "before_at", "want", "ask", "cap",
             "note"}


def load_cases(path: Path = MESSAGES) -> list[Case]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    cases, seen = [], set()
    for item in raw["cases"]:
        at = item.get("at", DEFAULT_AT)
        sender = item["as"]
        if sender not in ROLE_OF:
            raise ValueError(f"{item['id']}: unknown sender {sender!r}")
        unknown = set(item) - CASE_KEYS
        if unknown:
            raise ValueError(f"{item['id']}: unknown keys {sorted(unknown)}")
        if item["id"] in seen:
            raise ValueError(f"duplicate case id {item['id']}")
        seen.add(item["id"])
        want = item["want"]
        if len(want) != 1:
            raise ValueError(f"{item['id']}: want names one expectation, got {list(want)}")
        kind = next(iter(want))
        capability = item.get("cap") or KIND_CAPABILITY.get(kind)
        if capability is None:
            raise ValueError(f"{item['id']}: a {kind!r} expectation needs a cap")
        message = Turn.parse({k: v for k, v in item.items() if k in ("say", "voice", "image", "click", "subscribe")},
                             sender, at)
        message.sender, message.at = sender, at
        ask = item.get("ask", False)
        markers = tuple(ask) if isinstance(ask, list) else ASK_MARKERS.get(capability, ())
        cases.append(Case(item["id"], sender, message, want, capability, bool(ask), markers,
                          [Turn.parse(t, sender, item.get("before_at", at)) for t in item.get("before", [])],
                          item.get("note", "")))
    return cases


# -- what a message did -----------------------------------------------------------------------------
Row = tuple[Any, ...]


def _queries() -> dict[str, Any]:
    """What `_records` reads, by kind: every row a message may record or change."""
    room, reporter, assignee = Room.__table__.alias(), Person.__table__.alias(), Person.__table__.alias()
    tickets = RepairTicket.__table__
    return {
        "ticket": select(tickets.c.number, tickets.c.place, func.coalesce(room.c.name, ""), tickets.c.description,
                         tickets.c.hazard, tickets.c.status, tickets.c.rating, func.coalesce(assignee.c.name, ""),
                         func.coalesce(reporter.c.name, ""))
        .select_from(tickets.outerjoin(room, room.c.id == tickets.c.room_id)
                     .outerjoin(assignee, assignee.c.id == tickets.c.assignee_id)
                     .outerjoin(reporter, reporter.c.id == tickets.c.reporter_id)),
        # a report added to an existing ticket (a duplicate); withdrawals and the like show on the ticket
        "event": select(TicketEvent.id, RepairTicket.number, TicketEvent.kind, TicketEvent.text)
        .join(RepairTicket, RepairTicket.id == TicketEvent.ticket_id).where(TicketEvent.kind == FOLLOW_UP),
        "leave": select(BusLeave.id, Student.name, BusLeave.day, BusLeave.trips, BusLeave.cancelled_at.isnot(None))
        .join(Student, Student.id == BusLeave.student_id),
        "count": select(BusTrip.id, BusRoute.number, BusTrip.trip, BusTrip.boarded, BusTrip.alighted)
        .join(BusRoute, BusRoute.id == BusTrip.route_id),
        "alarm": select(BusAlarm.id, BusAlarm.acknowledged_at.isnot(None), BusAlarm.note),
        "feedback": select(CanteenFeedback.number, CanteenFeedback.rating, CanteenFeedback.comment),
        "canteen_reply": select(CanteenReply.id, CanteenReply.text),
        "checkin": select(DutyCheckin.id, DutyPost.name, DutyCheckin.method, Person.name)
        .join(DutyShift, DutyShift.id == DutyCheckin.shift_id).join(DutyPost, DutyPost.id == DutyShift.post_id)
        .join(Person, Person.id == DutyCheckin.person_id),
        "swap": select(DutySwap.id, DutySwap.accepted_at.isnot(None), DutySwap.declined_at.isnot(None)),
        "survey": select(SurveyResponse.id, SurveyResponse.kind),
        "subscribe": select(BusSubscription.person_id),
        "fire": select(FireCheck.month, FireCheck.done_at.isnot(None)),
        "drill": select(Drill.id, Drill.logged_at.isnot(None)),
        "meal": select(AccompaniedMeal.id),
        "menu": select(MenuWeek.id, MenuWeek.status),
        "binding": select(Binding.openid, Binding.person_id).where(Binding.person_id.isnot(None)),
        "state": select(ConversationState.openid, ConversationState.conversation, ConversationState.step,
                        ConversationState.expires_at),
        "failed": select(InboundMessage.id).where(InboundMessage.status == "failed"),
    }


# compiled once to SQLite's SQL: `_records` runs twice per case, on the driver's own connection
RECORD_SQL = {kind: str(query.compile(dialect=sqlite_dialect(), compile_kwargs={"literal_binds": True}))
              for kind, query in _queries().items()}


def _records(conn: sqlite3.Connection, now: datetime) -> dict[str, set[Row]]:
    """Every row a message may record or change, as comparable tuples by kind."""
    found = {kind: {tuple(r) for r in conn.execute(sql)} for kind, sql in RECORD_SQL.items()}
    found["ticket"] = {(*t[:4], bool(t[4]), *t[5:]) for t in found["ticket"]}
    found["alarm"] = {(i, bool(acked), note) for i, acked, note in found["alarm"]}
    found["leave"] = {(i, name, str(day), trips, bool(cancelled)) for i, name, day, trips, cancelled in found["leave"]}
    found["state"] = {(o, c, st) for o, c, st, expires in found["state"]
                      if datetime.fromisoformat(str(expires)).replace(tzinfo=UTC) > now}
    return found


@dataclass
class Effects:
    new: dict[str, list[Row]]  # rows the message added or changed, by kind
    new_tickets: list[Row]  # tickets it filed (numbers that did not exist)
    changed_tickets: list[Row]  # tickets it changed (status, rating, assignee)
    state: tuple[str, str] | None  # the sender's conversation after it, if one is in progress

    @property
    def recorded(self) -> list[str]:
        """The kinds of rows it recorded, leaving out conversation state."""
        return [k for k, rows in self.new.items() if rows and k not in ("state",)]

    def describe(self) -> str:
        parts = []
        for t in self.new_tickets:
            parts.append(f"报修单 R{t[0]} 地点「{t[1]}」描述「{t[3]}」" + ("（隐患）" if t[4] else ""))
        for t in self.changed_tickets:
            parts.append(f"R{t[0]} → {t[5]}" + (f" 评分{t[6]}" if t[6] else ""))
        for kind in ("event", "leave", "count", "alarm", "feedback", "canteen_reply", "checkin", "swap", "survey",
                     "subscribe", "fire", "drill", "meal", "menu", "binding", "failed"):
            for row in self.new.get(kind, []):
                parts.append(f"{kind} {row[1:] if len(row) > 1 else row}")
        if self.state:
            parts.append(f"对话 {self.state[0]}/{self.state[1]}")
        return "；".join(parts)


def diff(before: dict[str, set[Row]], after: dict[str, set[Row]], openid: str) -> Effects:
    new = {k: sorted(after[k] - before.get(k, set()), key=str) for k in after}
    numbers = {t[0] for t in before["ticket"]}
    state = next(((c, s) for o, c, s in after["state"] if o == openid), None)
    return Effects(new, [t for t in new["ticket"] if t[0] not in numbers],
                   [t for t in new["ticket"] if t[0] in numbers], state)


# -- judging ----------------------------------------------------------------------------------------
@dataclass
class Result:
    case: Case
    verdict: str
    reply: str
    effects: Effects
    why: str = ""

    @property
    def accurate(self) -> bool:
        return self.verdict in (RIGHT, QUESTION)

    def describe(self) -> str:
        return (f"[{VERDICT_NAMES[self.verdict]}] {self.case.id} {self.case.sender}：{said(self.case)}\n"
                f"    期望：{self.case.expected()}\n    实际：{self.got()}")

    def got(self) -> str:
        done = self.effects.describe()
        reply = self.reply.replace("\n", " / ")
        reply = reply if len(reply) <= 90 else reply[:90] + "…"
        return (f"{done}；" if done else "") + f"回复「{reply}」" + (f"（{self.why}）" if self.why else "")


def _text_ok(reply: str, spec: dict[str, Any]) -> str:
    """Why the reply does not say what `spec` asks (has: every one, any: at least one, not: none), or ""."""
    for word in _words(spec.get("has")):
        if word not in reply:
            return f"回复缺少「{word}」"
    options = _words(spec.get("any"))
    if options and not any(w in reply for w in options):
        return f"回复不含「{'」「'.join(options)}」之一"
    for word in _words(spec.get("not")):
        if word in reply:
            return f"回复不应含「{word}」"
    return ""


def _words(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _ticket_ok(ticket: Row, spec: dict[str, Any], hazard: bool) -> str:
    number, place, room, description, is_hazard = ticket[:5]
    want_place = spec.get("place")
    if want_place and room != want_place and place_key(place) != place_key(want_place):
        return f"地点应为「{want_place}」"
    desc = normalize(description)
    if "desc" in spec and desc.strip() != normalize(spec["desc"]):
        return f"描述应为「{spec['desc']}」"
    for word in _words(spec.get("has")):
        if normalize(word) not in desc:
            return f"描述应含「{word}」"
    for word in _words(spec.get("not")):
        if normalize(word) in desc:
            return f"描述不应含「{word}」"
    if bool(is_hazard) != hazard:
        return "应为安全隐患" if hazard else "不应为安全隐患"
    return ""


def judge(case: Case, reply: str, fx: Effects) -> Result:
    kind, spec = case.kind, case.want[case.kind]
    spec = spec if isinstance(spec, dict) else {}

    def result(verdict: str, why: str = "") -> Result:
        return Result(case, verdict, reply, fx, why)

    if fx.new.get("failed") or APOLOGY in reply:
        return result(WRONG, "处理出错")
    # a ticket filed, or a report added to one, that the case did not ask for
    ticketing = kind in ("ticket", "hazard")
    if fx.new_tickets or fx.new.get("event"):
        if not ticketing:
            return result(WRONG_TICKET, "不该报修")
        if fx.new.get("event") and not fx.new_tickets:
            return result(WRONG_TICKET, "并入了已有报修单")
        if len(fx.new_tickets) > 1:
            return result(WRONG_TICKET, "报了多张单")
        why = _ticket_ok(fx.new_tickets[0], spec, kind == "hazard")
        if why:
            return result(WRONG_TICKET, why)
    verdict = _right(case, kind, spec, reply, fx)
    if not verdict:
        return result(RIGHT)
    if case.ask and not fx.recorded and _helpful(case, reply):
        return result(QUESTION)
    return result(WRONG, verdict)


def echoes(case: Case, reply: str) -> bool:
    """The reply quotes the whole message back (「谢谢」), as a not-understood answer does however it is worded."""
    text, reply = normalize(case.message.text), normalize(reply)
    if len(text) < 2 or f"「{text}」仅限" in reply:  # a refusal names the command it refuses
        return False
    return f"「{text}」" in reply or (len(text) > 20 and f"「{text[:20]}" in reply)  # long ones are cut short


def _helpful(case: Case, reply: str) -> bool:
    """The reply asks or points the way: the case's markers, or a question naming the capability. The
    message echoed in "没有听懂「…」" does not count, nor the title in a refusal (「食堂评价汇总」仅限…)."""
    pointed = ECHO.sub("", reply)
    word = CAPABILITY_WORDS.get(case.capability)
    return any(m in pointed for m in case.ask_markers) or bool(
        word and word in pointed and any(a in pointed for a in ASKING))


def _right(case: Case, kind: str, spec: dict[str, Any], reply: str, fx: Effects) -> str:
    """Why the case is not answered right, or "" when it is."""
    recorded = set(fx.recorded)
    if kind not in ("reply", "courtesy", "nothing", "dialog") and NOT_UNDERSTOOD in reply:
        return "没有听懂"
    if kind in ("ticket", "hazard"):
        if not fx.new_tickets:
            return "没有报修单"
        return _text_ok(reply, spec.get("reply", {}))
    if kind == "dialog":
        if recorded:
            return f"不应记录：{'、'.join(sorted(recorded))}"
        if fx.state is None or fx.state[0] != spec.get("conversation", case.capability) or (
                "step" in spec and fx.state[1] != spec["step"]):
            return "没有开始对应的对话"
        return _text_ok(reply, spec)
    may = set(_words(spec.get("may")))  # records that may come with an answer (a thank-you taken as a rating)
    recorded -= may
    if kind in ("reply", "courtesy", "nothing"):
        if recorded:
            return f"不应记录：{'、'.join(sorted(recorded))}"
        if not reply.strip():
            return "没有回复"
        if kind != "nothing" and echoes(case, reply):
            return "回复只复述了原话（没有听懂）"
        spec = {**spec, "not": [*_words(spec.get("not")), *([] if NOT_UNDERSTOOD in _words(spec.get("has"))
                                                          else [NOT_UNDERSTOOD] if kind != "nothing" else [])]}
        if kind == "courtesy":
            if len(reply) > COURTESY_MAX:
                return "客气话的回复太长"
            spec["not"] = [*spec["not"], "仅限"]
        return _text_ok(reply, spec)
    rows = fx.new.get(_ROW_KIND.get(kind, kind), [])
    if kind in ("rate", "status"):
        rows = fx.changed_tickets
    matching = [r for r in rows if _row_matches(kind, r, spec)]
    if not matching:
        return f"没有符合的{kind}记录" if not rows else f"{kind}记录不符：{rows[0][1:]}"
    others = recorded - {_ROW_KIND.get(kind, kind)} - _ALSO.get(kind, set())
    if others:
        return f"多记录了：{'、'.join(sorted(others))}"
    return _text_ok(reply, spec.get("reply", {}))


_ROW_KIND = {"unleave": "leave", "ack": "alarm"}
_ALSO = {"count": {"alarm"}, "rate": {"ticket"}, "status": {"ticket"}}  # what may come with the expected record
_DIRECTIONS = {"上车": 3, "下车": 4}


def _row_matches(kind: str, row: Row, spec: dict[str, Any]) -> bool:
    if kind in ("leave", "unleave"):
        _, student, day, trips, cancelled = row
        return (student == spec.get("student", student) and day == spec.get("day", day)
                and trips == spec.get("trips", trips) and cancelled == (kind == "unleave"))
    if kind == "count":
        _, route, trip, *_ = row
        return (route == str(spec["route"]) and trip == spec.get("trip", trip)
                and row[_DIRECTIONS[spec["dir"]]] == spec["n"])
    if kind == "ack":
        return bool(row[1]) and all(normalize(w) in normalize(row[2]) for w in _words(spec.get("note")))
    if kind == "feedback":
        _, rating, comment = row
        return rating == spec.get("rating", rating) and all(w in comment for w in _words(spec.get("has")))
    if kind == "checkin":
        return row[1] == spec.get("post", row[1])
    if kind == "rate":
        return row[6] == spec["rating"]
    if kind == "status":
        return row[0] == spec["ticket"] and row[5] == spec["is"]
    return True


# -- the run ----------------------------------------------------------------------------------------
def school_time(local: str) -> datetime:
    return datetime.strptime(local, "%Y-%m-%d %H:%M").replace(tzinfo=TZ).astimezone(UTC)


class FixedClock:
    def __init__(self) -> None:
        self.now = school_time(DEFAULT_AT)

    def __call__(self) -> datetime:
        return self.now

    def set(self, local: str) -> None:
        self.now = school_time(local)


def openid_of(name: str) -> str:
    return "o" + uuid.uuid5(uuid.NAMESPACE_DNS, "corpus:" + name).hex[:27]


class School:
    """The demo school behind the real webhook, every sender bound; `reset()` brings it back."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.db_file = folder / "houqin.db"
        self.golden = folder / "golden.db"
        self.clock = FixedClock()
        self.settings = Settings(
            wechat_token="corpusToken42", wechat_appid="wxcorpus01234567", wechat_secret="corpus-secret",
            secret_key=secrets.token_urlsafe(32), database_url=f"sqlite:///{self.db_file}",
            wechat_aes_key=base64.b64encode(secrets.token_bytes(32)).decode()[:43],
            wechat_api_base="http://127.0.0.1:9", instance_dir=folder / "instance")
        self.services = Services.from_settings(self.settings)
        self.services.clock = self.clock
        upgrade(self.services.db_engine)
        with self.services.factory() as db, db.begin():
            load_demo(db, self.clock())
        client = create_app(services=self.services).test_client()

        def post(url: str, body: bytes) -> tuple[int, bytes]:
            res = client.post(url, data=body, content_type="text/xml")
            return res.status_code, res.data

        self.users = {name: WeChatUser(openid_of(name), token=self.settings.wechat_token,
                                       appid=self.settings.wechat_appid, aes_key=self.settings.wechat_aes_key,
                                       transport=post) for name in ROLE_OF}
        for name in ROLE_OF:
            if name != UNBOUND:
                reply = self.users[name].say(f"绑定 {self._code(name)}").text
                if "绑定成功" not in reply:
                    raise RuntimeError(f"binding {name}: {reply}")
        from bot.text import warm_segmenter

        warm_segmenter()
        self._keep()

    def _code(self, name: str) -> str:
        with self.services.factory() as db:
            student = PARENT_CODES.get(name)
            query = (select(BindCode.code).join(Student).where(Student.name == student) if student else
                     select(BindCode.code).join(Person).where(Person.name == name))
            code = db.scalar(query.order_by(BindCode.id.desc()))
        assert code is not None, f"no bind code for {name}"
        return code

    def _keep(self) -> None:
        self.services.db_engine.dispose()
        shutil.copyfile(self.db_file, self.golden)

    def reset(self) -> None:
        self.services.db_engine.dispose()
        for suffix in ("-wal", "-shm"):
            Path(f"{self.db_file}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(self.golden, self.db_file)

    def send(self, turn: Turn) -> str:
        self.clock.set(turn.at)
        user = self.users[turn.sender]
        if turn.kind == "voice":
            return user.voice(turn.text).text
        if turn.kind == "image":
            return user.image().text
        if turn.kind == "click":
            return user.click(turn.text).text
        if turn.kind == "subscribe":
            return user.subscribe(turn.text).text
        return user.say(turn.text).text

    def records(self) -> dict[str, set[Row]]:
        conn = sqlite3.connect(self.db_file)
        try:
            return _records(conn, self.clock())
        finally:
            conn.close()

    def run(self, case: Case) -> Result:
        self.reset()
        for turn in case.before:
            answer = self.send(turn)
            if any(word in answer for word in SETUP_FAILED):  # the case's own fault, not the bot's
                raise RuntimeError(f"{case.id}: the turn {turn.text!r} before the message got {answer!r}")
        self.clock.set(case.message.at)
        before = self.records()
        reply = self.send(case.message)
        return judge(case, reply, diff(before, self.records(), openid_of(case.sender)))

    def close(self) -> None:
        self.services.db_engine.dispose()


@contextmanager
def school() -> Iterator[School]:
    folder = Path(tempfile.mkdtemp(prefix="houqin-corpus-"))
    try:
        built = School(folder)
        try:
            yield built
        finally:
            built.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_corpus(cases: list[Case] | None = None, progress: Callable[[Result], None] | None = None) -> list[Result]:
    cases = cases if cases is not None else load_cases()
    results = []
    with school() as s:
        for case in cases:
            result = s.run(case)
            results.append(result)
            if progress:
                progress(result)
    return results


# -- figures --------------------------------------------------------------------------------------
@dataclass
class Tally:
    counts: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def accurate(self) -> int:
        return self.counts[RIGHT] + self.counts[QUESTION]

    @property
    def accuracy(self) -> float:
        return self.accurate / self.total if self.total else 0.0


def tally(results: list[Result], key: Callable[[Result], str] | None = None) -> dict[str, Tally]:
    groups: dict[str, Tally] = defaultdict(Tally)
    for r in results:
        groups[key(r) if key else "all"].counts[r.verdict] += 1
    return dict(groups)


def accuracy(results: list[Result]) -> float:
    return tally(results)["all"].accuracy if results else 0.0


def failures_table(results: list[Result]) -> str:
    """The cases not answered right or with a helpful question, as a plain-text table."""
    return "\n".join(r.describe() for r in results if not r.accurate)


def said(case: Case) -> str:
    m = case.message
    return {"voice": f"（语音）{m.text}", "image": "（图片）", "click": f"（菜单 {m.text}）",
            "subscribe": "（关注）"}.get(m.kind, m.text)

