"""The conversation engine: capabilities declared as data, routed in the order handlers/ lists them.

A capability is a `Conversation`: its keywords, menu keys, QR scenes, roles and help, an entry
function and step functions. Each function takes the incoming message and a Context and returns a
Reply naming the next step (or ending). State lives in `conversation_states`, keyed by openid,
so a conversation survives restarts and is shared by every worker process.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, String, bindparam, delete, func, insert, literal_column, select, update
from sqlalchemy.orm import Session, joinedload, lazyload

from bot.outbox import Outbox
from bot.school import DEFAULT_SETTINGS, get_setting
from bot.text import (
    SEPARATOR_MARKS,
    asks_how,
    is_han,
    normalize,
    one_off,
    reading,
    split_command,
    split_kept,
    strip_separators,
    tidy,
)
from models import ROLE_NAMES, Binding, ConversationState, Person, PersonRole, SchoolSetting

if TYPE_CHECKING:
    from bot.config import Settings

ANYONE: frozenset[str] = frozenset()
NOT_LOADED = object()  # a Context's binding before a step asks for it
CONVERSATION_TIMEOUT = timedelta(minutes=10)

VOICE_TRAILING = "。.!?,"  # what speech recognition appends, after normalize() (！→!, ？→?, ，→,)
VOICE_TRAILING_KEPT = VOICE_TRAILING + "！？，"  # the same, as written
CANCEL_WORDS = {"取消", "cancel", "退出"}
HELP_WORDS = {"帮助", "?", "help", "菜单帮助"}
HELP_MENU_KEY = "HELP"
CANCELLED = "已取消「{title}」。"
NOTHING_TO_CANCEL = "当前没有进行中的操作。"
NOT_UNDERSTOOD = "没有听懂「{text}」。发送「帮助」查看你可以使用的命令。"
NOT_UNDERSTOOD_HINTS = "没有听懂「{text}」。你可以{hints}；发送「帮助」查看全部。"
DID_YOU_MEAN = "你是想「{word}」吗？{hint}。"
INSTEAD = "你可以{hint}。"
HELP_MORE = "更多命令按主题：{topics}（如发送「帮助 {example}」）。"
HELP_TOPIC = "「{topic}」你可以发送："
HELP_ALL_WORD = "全部"
HELP_NO_TOPIC = "没有「{word}」这个主题。可以查看：{topics}。"
FEATURED = 5  # the commands shown first in 帮助
NOT_BOUND = "抱歉，「{title}」仅限{roles}使用，需要先绑定身份。请发送「绑定 绑定码」（绑定码由学校后勤处提供）。"
WRONG_ROLE = "抱歉，「{title}」仅限{roles}使用，你的身份是{mine}。"
HELP_HEADER = "你可以发送："
HELP_UNBOUND = "你还没有绑定身份。发送「绑定 绑定码」绑定后可使用更多功能。"
HELP_FOOTER = "发送「取消」可随时结束当前操作。"
IMAGE_UNUSED = "收到图片。{hint}"
VOICE_UNRECOGNISED = "没有识别出这段语音的内容，请再说一遍，或直接发送文字。"
UNSUPPORTED = "暂时只能处理文字、图片、语音和位置消息。发送「帮助」查看可用命令。"


@dataclass
class Incoming:
    """One message or event from WeChat, normalised."""

    openid: str
    account: str
    msg_type: str  # text, image, voice, video, shortvideo, location, link, file, event, ...
    create_time: int
    event: str = ""  # lower-case event name for msg_type == "event"
    text: str = ""  # normalised text (voice: the recognition), for matching
    original: str = ""  # the same text as the user wrote it (white space tidied); see `kept_text`
    event_key: str = ""
    scene: str = ""  # parametric QR scene, e.g. "room:12"
    msg_id: str = ""
    media_id: str = ""
    latitude: float | None = None
    longitude: float | None = None
    label: str = ""
    raw: dict[str, Any] = field(default_factory=dict)
    # set by the engine when a private capability (an anonymous suggestion, a survey answer) takes the
    # message: the inbox then stores that it arrived, not what it said nor what it was answered
    private: bool = False

    @classmethod
    def from_wechat(cls, data: dict[str, Any]) -> Incoming:
        msg_type = str(data.get("MsgType", "")).strip().lower()
        event = str(data.get("Event", "")).strip().lower() if msg_type == "event" else ""
        key = str(data.get("EventKey", "") or "")
        scene = ""
        if event == "subscribe" and key.startswith("qrscene_"):
            scene = key.removeprefix("qrscene_")
        elif event == "scan":
            scene = key
        text = ""
        if msg_type == "text":
            text = str(data.get("Content", ""))
        elif msg_type == "voice":
            text = str(data.get("Recognition", "") or "")
        lat = lon = None
        label = ""
        location = data.get("SendLocationInfo") if event == "location_select" else data
        if isinstance(location, dict):
            if "Location_X" in location:
                lat, lon, label = _float(location.get("Location_X")), _float(location.get("Location_Y")), str(
                    location.get("Label", "") or "")
            elif "Latitude" in location:
                lat, lon = _float(location.get("Latitude")), _float(location.get("Longitude"))
        try:
            create_time = int(str(data.get("CreateTime", "0")))
        except ValueError:
            create_time = 0
        return cls(
            openid=str(data.get("FromUserName", "")),
            account=str(data.get("ToUserName", "")),
            msg_type=msg_type,
            create_time=create_time,
            event=event,
            text=normalize(text).rstrip(VOICE_TRAILING) if msg_type == "voice" else normalize(text),
            original=tidy(text).rstrip(VOICE_TRAILING_KEPT) if msg_type == "voice" else tidy(text),
            event_key=key,
            scene=scene,
            msg_id=str(data.get("MsgId", "") or data.get("MsgID", "") or ""),
            media_id=str(data.get("MediaId", "") or ""),
            latitude=lat,
            longitude=lon,
            label=label,
            raw=data,
        )

    @property
    def dedup_key(self) -> str:
        """What makes WeChat's retries of one message recognisable: its sender and MsgId, or for an event the
        sender, CreateTime, event and key (plus the MsgID that job-finished events carry)."""
        if self.msg_id and self.msg_type != "event":
            key = f"msg:{self.openid}:{self.msg_id}"  # MsgIds are not unique across senders
        else:
            key = f"evt:{self.openid}:{self.create_time}:{self.event}:{self.msg_id}:{self.event_key}"
        return key if len(key) <= 200 else key[:150] + ":" + hashlib.sha1(key.encode()).hexdigest()

    @property
    def is_location(self) -> bool:
        return self.latitude is not None and self.msg_type in ("location", "event")

    @property
    def command(self) -> str:
        return split_command(self.text)[0] if self.text else ""

    @property
    def args(self) -> list[str]:
        return split_command(self.text)[1] if self.text else []

    @property
    def kept_text(self) -> str:
        """The text in the user's own characters (full-width punctuation and all): what a step stores,
        echoes, pushes or exports. Match on `text`, keep `kept_text`."""
        return self.original or self.text

    @property
    def kept_args(self) -> list[str]:
        """`args` in the user's own characters (`args` itself, should the two ever split differently)."""
        args = self.args
        kept = split_kept(self.kept_text)[1] if self.text else []
        return kept if len(kept) == len(args) else args

    def split_glued(self, matched: str) -> None:
        """Take `matched`, the text with its glued keyword split off ("报修 三(2)班"), splitting the
        original alike."""
        keyword = matched.split(" ", 1)[0]
        for end in range(1, len(self.original) + 1):
            if normalize(self.original[:end]).lower() == keyword:
                self.original = f"{self.original[:end]} {strip_separators(self.original[end:])}"
                break
        self.text = matched


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@dataclass
class Reply:
    """What a step returns: the text to answer, and the next step (None ends the conversation)."""

    text: str
    next: str | None = None
    data: dict[str, Any] | None = None

    @classmethod
    def end(cls, text: str) -> Reply:
        return cls(text)

    @classmethod
    def silent(cls) -> Reply:
        return cls("")


@dataclass
class State:
    """Where a sender is in a conversation: a row of `conversation_states`."""

    conversation: str
    step: str
    data: dict[str, Any]
    expires_at: datetime


@dataclass
class Sender:
    """Who wrote, read as the message is stored (`SENDER_COLUMNS`): enough to route and check roles
    without loading the binding and person as ORM objects, which most messages never need."""

    openid: str
    known: bool = False  # a bindings row exists
    person_id: int | None = None
    roles: frozenset[str] = frozenset()
    following: bool = True  # subscribed and reachable
    state: State | None = None  # a live conversation
    state_stored: bool = False  # a conversation_states row exists (live or expired)
    # ROUTING_SETTINGS as stored when the message was (None: unset), read with it; empty: not read
    settings: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def from_row(cls, openid: str, row: Any, now: datetime) -> Sender:
        """From a row carrying SENDER_COLUMNS."""
        known = row.sender_subscribed is not None
        sender = cls(openid, known=known, person_id=row.sender_person_id,
                     roles=frozenset((row.sender_roles or "").split()),
                     following=bool(row.sender_subscribed and row.sender_reachable) if known else True,
                     state_stored=row.sender_conversation is not None,
                     settings={key: getattr(row, "setting_" + key) for key in ROUTING_SETTINGS})
        if row.sender_conversation is not None and row.sender_expires_at > now:
            sender.state = State(row.sender_conversation, row.sender_step, dict(row.sender_data or {}),
                                 row.sender_expires_at)
        return sender


# The sender's binding with its person, but not the person's roles and bindings (selectin wherever a
# Person is loaded): the roles came with the message (Sender.roles), and a step that does want them, or
# the person's other bindings, loads them when it asks.
_SENDER_BINDING = [joinedload(Binding.person).options(lazyload(Person.roles), lazyload(Person.bindings))]

_BINDINGS, _ROLES, _STATES = Binding.__table__, PersonRole.__table__, ConversationState.__table__
_SENDER = bindparam("sender", type_=String)


def _of_sender(column: Any) -> Any:
    """`column` of the sender's row in its table (bindings or conversation_states), as a scalar subquery."""
    return select(column).where(column.table.c.openid == _SENDER).scalar_subquery().label("sender_" + column.name)


# Settings that deciding whether a sender may use a capability asks on any message: the bus manager named
# in settings may acknowledge bus alarms, so a bound teacher's 帮助 asks whether that is them. Read with
# the message (`Context.setting`), they cost no session and no query of their own.
ROUTING_SETTINGS = ("bus_manager",)
_SETTINGS = SchoolSetting.__table__

# The sender's binding, roles and conversation state, and the ROUTING_SETTINGS, as scalar subqueries on
# the bind parameter "sender": the inbox returns them from the INSERT that stores the message, so that
# storing and knowing who wrote is one statement (RETURNING takes subqueries on SQLite and PostgreSQL alike).
SENDER_COLUMNS = (
    _of_sender(_BINDINGS.c.person_id), _of_sender(_BINDINGS.c.subscribed), _of_sender(_BINDINGS.c.reachable),
    # the separator as literal SQL: a str would be a parameter rendered anew on every execution
    select(func.aggregate_strings(_ROLES.c.role, literal_column("' '")))  # type: ignore[arg-type]
    .where(_ROLES.c.person_id == select(_BINDINGS.c.person_id).where(_BINDINGS.c.openid == _SENDER).scalar_subquery())
    .scalar_subquery().label("sender_roles"),
    _of_sender(_STATES.c.conversation), _of_sender(_STATES.c.step), _of_sender(_STATES.c.data),
    _of_sender(_STATES.c.expires_at),
    *(select(_SETTINGS.c.value).where(_SETTINGS.c.key == literal_column(f"'{key}'")).scalar_subquery()
      .label("setting_" + key) for key in ROUTING_SETTINGS),
)
_INSERT_STATE = insert(ConversationState)
_UPDATE_STATE = update(ConversationState).where(ConversationState.openid == bindparam("key"))
_DELETE_STATE = delete(ConversationState).where(ConversationState.openid == bindparam("key"))


@dataclass
class Context:
    """What a step may use: the request's session, the sender, the clock, the outbox.

    The session, the sender's binding (with the person) and the outbox are made when a step first
    asks for them: answering 帮助 or routing a keyword needs only what the Sender holds.
    """

    conn: Connection  # the request's transaction; `db` joins it
    sender: Sender
    now: datetime
    settings: Settings
    open_session: Callable[[], Session]
    data: dict[str, Any] = field(default_factory=dict)
    _session: Session | None = field(default=None, init=False, repr=False)
    _binding: Binding | None | object = field(default=NOT_LOADED, init=False, repr=False)
    _outbox: Outbox | None = field(default=None, init=False, repr=False)

    @property
    def openid(self) -> str:
        return self.sender.openid

    @property
    def db(self) -> Session:
        if self._session is None:
            self._session = self.open_session()
        return self._session

    @property
    def binding(self) -> Binding | None:
        if self._binding is NOT_LOADED:
            self._binding = (self.db.get(Binding, self.openid, options=_SENDER_BINDING)
                             if self.sender.known else None)
        assert self._binding is None or isinstance(self._binding, Binding)
        return self._binding

    @binding.setter
    def binding(self, value: Binding | None) -> None:
        self._binding = value

    @property
    def outbox(self) -> Outbox:
        if self._outbox is None:
            self._outbox = Outbox(self.db, self.settings, self.now)
        return self._outbox

    @property
    def person(self) -> Person | None:
        return self.binding.person if self.binding is not None else None

    @property
    def person_id(self) -> int | None:
        """The sender's person's id (read without loading the binding, until a step has)."""
        if self._binding is NOT_LOADED:
            return self.sender.person_id
        return self.person.id if self.person is not None else None

    @property
    def bound(self) -> bool:
        """The sender is bound to a person (read without loading the binding, until a step has)."""
        return self.person_id is not None

    @property
    def roles(self) -> set[str]:
        if self._binding is NOT_LOADED:
            return set(self.sender.roles)
        return self.person.role_set if self.person is not None else set()

    def setting(self, key: str) -> str:
        """The school's setting (its default when unset): one of ROUTING_SETTINGS as read with the message
        while no step has opened the session, else as the session reads it (bot.school.get_setting)."""
        if self._session is None and key in self.sender.settings:
            value = self.sender.settings[key]
            return DEFAULT_SETTINGS[key] if value is None else value
        return get_setting(self.db, key)

    @property
    def local_now(self) -> datetime:
        return self.now.astimezone(self.settings.tz)

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles & set(roles))


Handler = Callable[[Incoming, Context], Reply | None]
H = TypeVar("H", bound=Handler)


def role_names(roles: Iterable[str]) -> str:
    return "、".join(ROLE_NAMES.get(r, r) for r in sorted(roles, key=lambda r: list(ROLE_NAMES).index(r)
                                                         if r in ROLE_NAMES else 99))


class Conversation:
    """A capability, declared once at the top of its module."""

    def __init__(
        self,
        name: str,
        *,
        title: str,
        keywords: Sequence[str] = (),
        menu_keys: Sequence[str] = (),
        scenes: Sequence[str] = (),
        roles: Iterable[str] = ANYONE,
        help: str = "",
        timeout: timedelta = CONVERSATION_TIMEOUT,
        permits: Callable[[Context], bool] | None = None,
        refusal: str = "",
        gives_way: bool = False,
        cancel_words: Iterable[str] = (),
        topic: str = "",
        rank: int = 0,
        unbound_rank: int = 0,
        hint: str = "",
        cues: Iterable[str] = (),
        photo_hint: str = "",
        private: bool = False,
        accepts: Callable[[str], bool] | None = None,
        sample: str = "",
        slips: bool = True,
    ) -> None:
        self.name = name
        self.title = title
        self.keywords = tuple(normalize(k).lower() for k in keywords)  # matched case-insensitively
        self._glued_keywords = sorted((k for k in self.keywords if len(k) >= 2), key=len, reverse=True)
        self.menu_keys = tuple(menu_keys)
        self.scenes = tuple(scenes)
        self.roles = frozenset(roles)
        self.help = help
        self.timeout = timeout
        self.permits = permits  # admits someone the roles do not (e.g. the bus manager named in settings)
        self.refusal = refusal  # the polite refusal, when the roles alone do not say who may
        # in progress, a text that is some capability's command goes to that capability, not to the
        # step (a survey pushed to parents must not swallow their 菜单)
        self.gives_way = gives_way
        # in progress, these end it like 取消 ("算了", "不报了"); elsewhere they mean nothing special
        self.cancel_words = frozenset(normalize(w).lower() for w in cancel_words)
        # how help and suggestions present it: the topic it is listed under (帮助 报修), its place among
        # the most useful commands shown first (1 = first; 0 = not among them), and the one-line
        # suggestion given when a sender needs pointing to it (derived from the help when not given)
        self.topic = topic
        self.rank = rank
        self.unbound_rank = unbound_rank  # its place for a follower not yet bound (绑定 comes first there)
        self.hint = hint or _hint_from_help(help)
        # words that say a sentence may be for this capability: its "text"/"voice" event handler (which
        # understands sentences with no command word) is only asked when one of them is in the text
        self.cues = tuple(normalize(c).lower() for c in cues)
        self._cue_pattern = re.compile("|".join(map(re.escape, self.cues))) if self.cues else None
        # the characters of each of its words, for finding the capability a text is nearest to
        self.word_chars = tuple(frozenset(w) for w in (*self.keywords, *self.cues) if len(w) >= 2)
        self.photo_hint = photo_hint  # what a photo sent out of the blue should be sent with
        self.private = private  # its messages and replies are kept out of the message log (bot.inbox)
        # a command word shared with a later capability (完成 T3 / 完成 R3): this one takes only the texts
        # whose arguments `accepts` recognises; the others go on to the later one
        self.accepts = accepts
        self.sample = sample  # a text that reaches it, when its keyword alone goes elsewhere (完成 T1)
        # its command words are also recognised when written with another character of the same reading
        # (保修 → 报修); False where a common word reads like one (要是 reads like 钥匙)
        self.slips = slips
        self.cancel_answers: dict[str, Handler] = {}
        self.entry_handler: Handler | None = None
        self.steps: dict[str, Handler] = {}
        self.events: dict[str, Handler] = {}

    def __repr__(self) -> str:
        return f"Conversation({self.name!r})"

    # -- declaration decorators ----------------------------------------------------------------
    def entry(self, fn: H) -> H:
        self.entry_handler = fn
        return fn

    def on(self, step: str) -> Callable[[H], H]:
        def register(fn: H) -> H:
            self.steps[str(step)] = fn
            return fn

        return register

    def on_cancel(self, step: str) -> Callable[[H], H]:
        """What to answer when the conversation is cancelled at `step`, instead of CANCELLED (say, when
        something was already done there). The conversation ends either way."""

        def register(fn: H) -> H:
            self.cancel_answers[str(step)] = fn
            return fn

        return register

    def on_event(self, *names: str) -> Callable[[H], H]:
        """Handle an event or message kind with no conversation in progress: "subscribe",
        "unsubscribe", "image", "location", ... A handler returning None passes it on."""

        def register(fn: H) -> H:
            for name in names:
                self.events[name] = fn
            return fn

        return register

    # -- questions the dispatcher asks -----------------------------------------------------------
    def allows(self, roles: set[str]) -> bool:
        return not self.roles or bool(self.roles & roles)

    def match_text(self, text: str, glued: bool = False) -> str | None:
        """The text with its keyword split off as a word, if it starts with one of ours.

        "报修 三(2)班" matches 报修; so does "绑定ABC234" (a keyword of two or more characters glued
        to its argument), returned as "绑定 ABC234" so that steps see the usual command and args.
        """
        if not glued:
            matched = text if text.split(" ", 1)[0].lower() in self.keywords else None  # text is normalised
            return matched if matched is None or self._accepted(matched) else None
        for k in self._glued_keywords:
            if len(text) > len(k) and text[:len(k)].lower() == k and not asks_how(text[len(k):]):  # 报修怎么弄: asked
                matched = f"{k} {strip_separators(text[len(k):])}"
                return matched if self._accepted(matched) else None
        return None

    def _accepted(self, matched: str) -> bool:
        return self.accepts is None or self.accepts(matched.split(" ", 1)[1] if " " in matched else "")

    def matches_scene(self, scene: str) -> bool:
        return scene.split(":", 1)[0] in self.scenes

    def cued(self, text: str) -> bool:
        """Whether a sentence may be for this capability: it has no cues (it looks at everything), or
        the text holds one of them."""
        return self._cue_pattern is None or self._cue_pattern.search(text.lower()) is not None


def open_conversation(db: Session, people: Iterable[Person], conversation: str, step: str, data: dict[str, Any],
                      expires_at: datetime, now: datetime) -> int:
    """Put each person's WeChat into `conversation` at `step`, so that a plain reply to a push (a survey's
    question) answers it. Someone in the middle of another conversation is left alone (they can start it
    with its keyword later). Returns how many WeChats were opened."""
    opened = 0
    for person in people:
        for openid in person.openids:
            state = db.get(ConversationState, openid)
            if state is not None and state.expires_at > now:
                continue
            if state is None:
                state = ConversationState(openid=openid)
                db.add(state)
            state.conversation, state.step, state.data = conversation, step, dict(data)
            state.expires_at = expires_at
            opened += 1
    return opened


def _hint_from_help(help: str) -> str:
    """"报修 [地点 描述] — 报修…" → "发送「报修 [地点 描述]」报修…": a help line as a suggestion."""
    command, sep, what = help.partition(" — ")
    return f"发送「{command.split('；')[0].strip()}」{what.split('；')[0]}" if sep else help


class Engine:
    """Routes an Incoming to the capability that owns it, in the order given."""

    def __init__(self, capabilities: Sequence[Conversation]) -> None:
        self.capabilities = list(capabilities)
        self._keyword_sounds: dict[tuple[int, tuple[str, ...]], list[tuple[Conversation, str]]] | None = None
        self._command_words: tuple[re.Pattern[str], dict[str, Conversation]] | None = None
        # character → the (capability, word) pairs having it: how near a text is to each capability's words
        self._word_chars: dict[str, list[tuple[str, int]]] = {}
        for cap in self.capabilities:
            for i, word in enumerate(cap.word_chars):
                for ch in word:
                    self._word_chars.setdefault(ch, []).append((cap.name, i))
        names = [c.name for c in self.capabilities]
        if len(names) != len(set(names)):
            raise ValueError(f"capability names must be unique: {names}")

    def by_name(self, name: str) -> Conversation | None:
        return next((c for c in self.capabilities if c.name == name), None)

    def is_command(self, text: str) -> bool:
        """`text` starts with some capability's keyword (as a word)."""
        return bool(text) and any(c.match_text(text) is not None for c in self.capabilities
                                  if c.entry_handler is not None)

    @staticmethod
    def permitted(cap: Conversation, ctx: Context) -> bool:
        """The sender's roles allow the capability, or its `permits` admits them."""
        return cap.allows(ctx.roles) or (cap.permits is not None and ctx.bound and cap.permits(ctx))

    def usable(self, ctx: Context) -> list[Conversation]:
        """The capabilities the sender may use and that say how (help), in the engine's order."""
        bound = ctx.bound
        return [cap for cap in self.capabilities
                if cap.help and (bound or not cap.roles)
                and (cap.allows(ctx.roles) or (bound and cap.permits is not None and cap.permits(ctx)))]

    def help_text(self, ctx: Context, topic: str = "") -> str:
        """帮助: the sender's most useful commands, then the topics to ask about (帮助 报修); `topic`: one
        topic in full, or 全部 for everything the sender may use."""
        usable = self.usable(ctx)
        # the topics, the one with the sender's most useful command first
        ranked = sorted((cap for cap in usable if cap.topic), key=lambda c: c.rank or FEATURED * 10)
        topics = list(dict.fromkeys(cap.topic for cap in ranked))
        if topic and topic != HELP_ALL_WORD:
            chosen = sorted((cap for cap in usable if cap.topic == topic or topic in cap.keywords),
                            key=lambda c: c.accepts is not None)  # 帮助 完成: the word's own capability first
            if not chosen:
                return HELP_NO_TOPIC.format(word=topic, topics="、".join([*topics, HELP_ALL_WORD]))
            lines = [HELP_TOPIC.format(topic=chosen[0].topic or topic) + HELP_HEADER.removeprefix("你可以发送"),
                     *(cap.help for cap in self.capabilities if cap.topic == chosen[0].topic and cap in usable)]
            if not chosen[0].topic:
                lines[1:] = [cap.help for cap in chosen]
            return "\n".join([*lines, HELP_FOOTER])
        lines = [HELP_HEADER]
        featured = sorted((cap for cap in usable if cap.rank), key=lambda c: c.rank)[:FEATURED]
        if topic == HELP_ALL_WORD or not featured:
            lines += [cap.help for cap in usable]
        else:
            lines += [cap.help for cap in usable if cap in featured]  # in the engine's order
            rest = [cap for cap in usable if cap not in featured]
            if any(not cap.topic for cap in rest):
                lines += [cap.help for cap in rest if not cap.topic]
            if topics:
                lines.append(HELP_MORE.format(topics="、".join([*topics, HELP_ALL_WORD]), example=topics[0]))
        if not ctx.bound:
            lines.append(HELP_UNBOUND)
        lines.append(HELP_FOOTER)
        return "\n".join(lines)

    def suggestion(self, ctx: Context, text: str = "", topic: str = "") -> Conversation | None:
        """The capability to point the sender to: of those they may use in `topic` (if given), the one whose
        words share the most characters with `text`, else their most useful one."""
        # by roles alone: asking a capability's `permits` may cost a query, and a suggestion is only a pointer
        roles, bound = ctx.roles, ctx.bound
        usable = [cap for cap in self.capabilities if cap.hint and cap.help and (bound or not cap.roles)
                  and cap.allows(roles)]
        shared: dict[tuple[str, int], int] = {}  # (capability, word) → characters it shares with the text
        for ch in set(text):
            for key in self._word_chars.get(ch, ()):
                shared[key] = shared.get(key, 0) + 1
        best_word: dict[str, int] = {}
        for (name, _), n in shared.items():
            best_word[name] = max(n, best_word.get(name, 0))

        def overlap(cap: Conversation) -> int:
            return best_word.get(cap.name, 0)

        if topic:
            same = [cap for cap in usable if cap.topic == topic]
            if same:
                return max(same, key=lambda c: (overlap(c), -(c.rank or FEATURED * 10)))
        if text:
            scored = [(overlap(cap), -i, cap) for i, cap in enumerate(usable)]
            best = max(scored, key=lambda s: s[:2], default=None)
            if best is not None and best[0] >= 2:
                return best[2]
        def place(cap: Conversation) -> int:
            return (cap.unbound_rank or cap.rank) if not bound else cap.rank

        featured = sorted((cap for cap in usable if place(cap)), key=place)
        return featured[0] if featured else (usable[0] if usable else None)

    # -- state ---------------------------------------------------------------------------------
    @staticmethod
    def _save_state(ctx: Context, state: State) -> None:
        values = {"conversation": state.conversation, "step": state.step, "data": state.data,
                  "expires_at": state.expires_at}
        # the row read with the message may have gone since (another message of theirs ended it)
        if not ctx.sender.state_stored or ctx.conn.execute(_UPDATE_STATE, {"key": ctx.openid, **values}).rowcount == 0:
            ctx.conn.execute(_INSERT_STATE, {"openid": ctx.openid, **values})
            ctx.sender.state_stored = True
        ctx.sender.state = state

    @staticmethod
    def _clear_state(ctx: Context) -> None:
        if ctx.sender.state_stored:
            ctx.conn.execute(_DELETE_STATE, {"key": ctx.openid})
            ctx.sender.state_stored = False
        ctx.sender.state = None

    def _run(self, cap: Conversation, fn: Handler, msg: Incoming, ctx: Context, owns_state: bool) -> Reply | None:
        """Call a handler and record where the conversation goes next.

        Entries and steps own the sender's state: ending there clears it. Event handlers (a
        periodic LOCATION report, say) leave a conversation in progress alone unless they start one.
        """
        reply = fn(msg, ctx)
        if reply is None:
            return None
        if reply.next is not None:
            self._save_state(ctx, State(cap.name, str(reply.next), {**ctx.data, **(reply.data or {})},
                                        ctx.now + cap.timeout))
        elif owns_state and ctx.sender.state is not None:
            self._clear_state(ctx)
        return reply

    def _refusal(self, cap: Conversation, ctx: Context) -> Reply | None:
        if self.permitted(cap, ctx):
            return None
        if not ctx.bound:
            return Reply.end(NOT_BOUND.format(title=cap.title, roles=role_names(cap.roles)))
        refusal = cap.refusal or WRONG_ROLE.format(title=cap.title, roles=role_names(cap.roles),
                                                   mine=role_names(ctx.roles) or "未分配")
        instead = self.suggestion(ctx, " ".join(cap.keywords), topic=cap.topic)  # the same topic's first
        return Reply.end(refusal + (INSTEAD.format(hint=instead.hint) if instead is not None else ""))

    def _enter(self, cap: Conversation, msg: Incoming, ctx: Context) -> Reply:
        refusal = self._refusal(cap, ctx)
        if refusal is not None:
            return refusal
        assert cap.entry_handler is not None, f"{cap.name} has no entry"
        msg.private = msg.private or cap.private
        ctx.data = {}
        reply = self._run(cap, cap.entry_handler, msg, ctx, owns_state=True)
        return reply if reply is not None else Reply.silent()

    # -- dispatch ------------------------------------------------------------------------------
    def dispatch(self, msg: Incoming, ctx: Context) -> Reply:
        """Answer `msg` from `ctx.sender`, in `ctx.conn`'s transaction."""
        if ctx.sender.state is None and ctx.sender.state_stored:
            self._clear_state(ctx)  # expired
        state = ctx.sender.state
        text = msg.text
        current = self.by_name(state.conversation) if state is not None else None
        if text and (text.lower() in CANCEL_WORDS or (current is not None and text.lower() in current.cancel_words)):
            if state is None:
                return Reply.end(NOTHING_TO_CANCEL)
            return self._cancel(current, state, msg, ctx)
        if (text and (text.lower() in HELP_WORDS or text.lower().rstrip(SEPARATOR_MARKS) in HELP_WORDS)) or (msg.event == "click" and msg.event_key == HELP_MENU_KEY):
            return Reply(self.help_text(ctx))
        if text and " " in text and text.split(" ", 1)[0].lower() in HELP_WORDS:  # 帮助 报修, mid-dialog too
            return Reply(self.help_text(ctx, text.split(" ", 1)[1]))

        # a conversation in progress gets the next text, image or location
        if state is not None and msg.msg_type in ("text", "voice", "image", "location"):
            cap = self.by_name(state.conversation)
            step = cap.steps.get(state.step) if cap else None
            if cap is not None and step is not None and not (cap.gives_way and self.is_command(text)):
                ctx.data = dict(state.data)
                was_private, msg.private = msg.private, msg.private or cap.private  # a failing step's too
                reply = self._run(cap, step, msg, ctx, owns_state=True)
                if reply is not None:
                    return reply
                msg.private = was_private  # the step passed it on

        if text:
            for glued in (False, True):  # every exact keyword before any glued one
                for cap in self.capabilities:
                    matched = cap.match_text(text, glued) if cap.entry_handler is not None else None
                    if matched is not None:
                        msg.split_glued(matched)
                        return self._enter(cap, msg, ctx)
            slip = self._sounds_like_command(msg, ctx)
            if slip is not None:
                return self._enter(slip, msg, ctx)
        if msg.event == "click":
            for cap in self.capabilities:
                if msg.event_key in cap.menu_keys:
                    return self._enter(cap, msg, ctx)
        if msg.scene:
            for cap in self.capabilities:
                if cap.matches_scene(msg.scene):
                    return self._enter(cap, msg, ctx)
        kind = msg.event or ("location" if msg.is_location else msg.msg_type)
        for cap in self.capabilities:
            handler = cap.events.get(kind)
            if handler is not None and cap.allows(ctx.roles) and (not text or cap.cued(text)):
                ctx.data = {}
                reply = self._run(cap, handler, msg, ctx, owns_state=False)
                if reply is not None:
                    return reply
        if text:
            near = self._near_miss(msg, ctx)
            if near is not None:
                return near
        return self._fallback(msg, ctx)

    def _sounds_like_command(self, msg: Incoming, ctx: Context) -> Conversation | None:
        """The capability the sender may use whose command word the text starts with as an input method
        slips: other characters that read the same (保修, 报秀 → 报修). The text is rewritten to the command's."""
        text = msg.text
        if not text or not is_han(text[0]):
            return None
        if self._keyword_sounds is None:  # by length and reading, made on first use (it loads pypinyin)
            self._keyword_sounds = {}
            for cap in self.capabilities:
                for k in cap.keywords if cap.entry_handler is not None and cap.accepts is None and cap.slips else ():
                    if len(k) >= 2 and all(is_han(ch) for ch in k):
                        self._keyword_sounds.setdefault((len(k), reading(k)), []).append((cap, k))
        for length in sorted({length for length, _ in self._keyword_sounds}, reverse=True):
            prefix = text[:length]
            if len(prefix) < length or not all(is_han(ch) for ch in prefix):
                continue
            for cap, k in self._keyword_sounds.get((length, reading(prefix)), []):
                if k != prefix and self.permitted(cap, ctx):
                    kept = msg.kept_text
                    msg.text = f"{k} {strip_separators(text[length:])}".strip()
                    msg.original = f"{k} {strip_separators(kept[length:])}".strip()
                    return cap
        return None

    def _near_miss(self, msg: Incoming, ctx: Context) -> Reply | None:
        """A command word one character off (报表: answered "你是想「报修」吗？"), or asked about (怎么报修:
        the same question, with the command's help); a command the sender may not use: the refusal."""
        text = msg.text.lower()
        head = text.split(" ", 1)[0]
        if self._command_words is None:  # every command word of two characters or more, longest first
            owners: dict[str, Conversation] = {}
            for cap in self.capabilities:
                for k in cap.keywords if cap.entry_handler is not None and cap.accepts is None else ():
                    if len(k) >= 2:
                        owners.setdefault(k, cap)
            self._command_words = (re.compile("|".join(map(re.escape, sorted(owners, key=len, reverse=True)))),
                                   owners)
        pattern, owners = self._command_words
        inside = pattern.search(text)
        found = inside.group(0) if inside is not None else next(
            (k for k in owners if len(k) == len(head) and one_off(head, k)), None)
        if found is None:
            return None
        cap = owners[found]
        if not self.permitted(cap, ctx):
            return self._refusal(cap, ctx)
        return Reply.end(DID_YOU_MEAN.format(word=found, hint=cap.hint or cap.title))

    def _cancel(self, cap: Conversation | None, state: State, msg: Incoming, ctx: Context) -> Reply:
        self._clear_state(ctx)
        answer = cap.cancel_answers.get(state.step) if cap is not None else None
        if answer is not None:
            ctx.data = dict(state.data)
            reply = answer(msg, ctx)
            if reply is not None:
                return Reply.end(reply.text)
        return Reply.end(CANCELLED.format(title=cap.title if cap else state.conversation))

    def _fallback(self, msg: Incoming, ctx: Context) -> Reply:
        if msg.text:
            shown = msg.text if len(msg.text) <= 20 else msg.text[:20] + "…"
            nearest = self.suggestion(ctx, msg.text)
            if nearest is None:
                return Reply.end(NOT_UNDERSTOOD.format(text=shown))
            return Reply.end(NOT_UNDERSTOOD_HINTS.format(text=shown, hints=nearest.hint))
        if msg.msg_type == "image":  # pointed to a capability that takes photos, if the sender may use one
            takes = min((cap for cap in self.capabilities if cap.photo_hint and self.permitted(cap, ctx)),
                        key=lambda c: c.rank or FEATURED * 10, default=None)
            if takes is not None:
                return Reply.end(IMAGE_UNUSED.format(hint=takes.photo_hint))
            nearest = self.suggestion(ctx)
            return Reply.end(IMAGE_UNUSED.format(hint=INSTEAD.format(hint=nearest.hint) if nearest else ""))
        if msg.msg_type == "voice":
            return Reply.end(VOICE_UNRECOGNISED)
        if msg.msg_type in ("event", "text", "location"):
            return Reply.silent()  # events nobody handles, an empty text, an unused location: "success"
        return Reply.end(UNSUPPORTED)  # video, link, file, mini-program card, and types yet to come
