"""The conversation engine: capabilities declared as data, routed in the order handlers/ lists them.

A capability is a `Conversation`: its keywords, menu keys, QR scenes, roles and help, an entry
function and step functions. Each function takes the incoming message and a Context and returns a
Reply naming the next step (or ending). State lives in `conversation_states`, keyed by openid,
so a conversation survives restarts and is shared by every worker process.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.orm import Session

from bot.text import normalize, split_command
from models import ROLE_NAMES, Binding, ConversationState, Person

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.outbox import Outbox

ANYONE: frozenset[str] = frozenset()
NOT_LOADED = object()
CONVERSATION_TIMEOUT = timedelta(minutes=10)

VOICE_TRAILING = "。.!?,"  # what speech recognition appends, after normalize() (！→!, ？→?, ，→,)
CANCEL_WORDS = {"取消", "cancel", "退出"}
HELP_WORDS = {"帮助", "?", "help", "菜单帮助"}
HELP_MENU_KEY = "HELP"
CANCELLED = "已取消「{title}」。"
NOTHING_TO_CANCEL = "当前没有进行中的操作。"
NOT_UNDERSTOOD = "没有听懂「{text}」。发送「帮助」查看你可以使用的命令。"
NOT_BOUND = "抱歉，「{title}」仅限{roles}使用，需要先绑定身份。请发送「绑定 绑定码」（绑定码由学校后勤处提供）。"
WRONG_ROLE = "抱歉，「{title}」仅限{roles}使用，你的身份是{mine}。"
HELP_HEADER = "你可以发送："
HELP_UNBOUND = "你还没有绑定身份。发送「绑定 绑定码」绑定后可使用更多功能。"
HELP_FOOTER = "发送「取消」可随时结束当前操作。"
IMAGE_UNUSED = "收到图片。如需报修，请先发送「报修」，再按提示上传照片。"
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
    text: str = ""  # normalised text (voice: the recognition)
    event_key: str = ""
    scene: str = ""  # parametric QR scene, e.g. "room:12"
    msg_id: str = ""
    media_id: str = ""
    latitude: float | None = None
    longitude: float | None = None
    label: str = ""
    raw: dict[str, Any] = field(default_factory=dict)

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
        """What makes WeChat's retries of one message recognisable: its MsgId, or for an event the
        sender, CreateTime, event and key (plus the MsgID that job-finished events carry)."""
        if self.msg_id and self.msg_type != "event":
            key = f"msg:{self.msg_id}"
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
class Context:
    """What a step may use: the request's session, the sender, the clock, the outbox."""

    db: Session
    openid: str
    binding: Binding | None
    now: datetime
    settings: Settings
    outbox: Outbox
    capabilities: Sequence[Conversation] = ()
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def person(self) -> Person | None:
        return self.binding.person if self.binding is not None else None

    @property
    def roles(self) -> set[str]:
        return self.person.role_set if self.person is not None else set()

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
            return text if text.split(" ", 1)[0].lower() in self.keywords else None  # text is normalised
        for k in self._glued_keywords:
            if len(text) > len(k) and text[:len(k)].lower() == k:
                return f"{k} {text[len(k):].strip()}"
        return None

    def matches_scene(self, scene: str) -> bool:
        return scene.split(":", 1)[0] in self.scenes


class Engine:
    """Routes an Incoming to the capability that owns it, in the order given."""

    def __init__(self, capabilities: Sequence[Conversation]) -> None:
        self.capabilities = list(capabilities)
        names = [c.name for c in self.capabilities]
        if len(names) != len(set(names)):
            raise ValueError(f"capability names must be unique: {names}")

    def by_name(self, name: str) -> Conversation | None:
        return next((c for c in self.capabilities if c.name == name), None)

    @staticmethod
    def permitted(cap: Conversation, ctx: Context) -> bool:
        """The sender's roles allow the capability, or its `permits` admits them."""
        return cap.allows(ctx.roles) or (cap.permits is not None and ctx.person is not None and cap.permits(ctx))

    def help_text(self, roles: set[str], bound: bool, ctx: Context | None = None) -> str:
        """The help of every capability the sender may use (with `ctx`, `permits` counts too)."""
        lines = [HELP_HEADER]
        for cap in self.capabilities:
            allowed = self.permitted(cap, ctx) if ctx is not None else cap.allows(roles)
            if cap.help and allowed and (bound or not cap.roles):
                lines.append(cap.help)
        if not bound:
            lines.append(HELP_UNBOUND)
        lines.append(HELP_FOOTER)
        return "\n".join(lines)

    # -- state ---------------------------------------------------------------------------------
    @staticmethod
    def _state(ctx: Context, loaded: ConversationState | None | object) -> ConversationState | None:
        state = ctx.db.get(ConversationState, ctx.openid) if loaded is NOT_LOADED else loaded
        assert state is None or isinstance(state, ConversationState)
        if state is not None and state.expires_at <= ctx.now:
            ctx.db.delete(state)
            return None
        return state

    @staticmethod
    def _run(cap: Conversation, fn: Handler, msg: Incoming, ctx: Context,
             state: ConversationState | None, owns_state: bool) -> Reply | None:
        """Call a handler and record where the conversation goes next.

        Entries and steps own the sender's state: ending there clears it. Event handlers (a
        periodic LOCATION report, say) leave a conversation in progress alone unless they start one.
        """
        reply = fn(msg, ctx)
        if reply is None:
            return None
        if reply.next is not None:
            if state is None:
                state = ConversationState(openid=ctx.openid)
                ctx.db.add(state)
            state.conversation, state.step = cap.name, str(reply.next)
            state.data = {**ctx.data, **(reply.data or {})}
            state.expires_at = ctx.now + cap.timeout
        elif owns_state and state is not None:
            ctx.db.delete(state)
        return reply

    def _refusal(self, cap: Conversation, ctx: Context) -> Reply | None:
        if self.permitted(cap, ctx):
            return None
        if ctx.person is None:
            return Reply.end(NOT_BOUND.format(title=cap.title, roles=role_names(cap.roles)))
        if cap.refusal:
            return Reply.end(cap.refusal)
        return Reply.end(WRONG_ROLE.format(title=cap.title, roles=role_names(cap.roles),
                                           mine=role_names(ctx.roles) or "未分配"))

    def _enter(self, cap: Conversation, msg: Incoming, ctx: Context, state: ConversationState | None) -> Reply:
        refusal = self._refusal(cap, ctx)
        if refusal is not None:
            return refusal
        assert cap.entry_handler is not None, f"{cap.name} has no entry"
        ctx.data = {}
        reply = self._run(cap, cap.entry_handler, msg, ctx, state, owns_state=True)
        return reply if reply is not None else Reply.silent()

    # -- dispatch ------------------------------------------------------------------------------
    def dispatch(self, msg: Incoming, ctx: Context, loaded: ConversationState | None | object = NOT_LOADED) -> Reply:
        """Answer `msg`. `loaded` is the sender's conversation state if the caller loaded it already
        (the inbox does, with the binding, in one query); NOT_LOADED makes the engine look it up."""
        ctx.capabilities = self.capabilities
        state = self._state(ctx, loaded)
        text = msg.text
        if text and text.lower() in CANCEL_WORDS:
            if state is None:
                return Reply.end(NOTHING_TO_CANCEL)
            cap = self.by_name(state.conversation)
            ctx.db.delete(state)
            return Reply.end(CANCELLED.format(title=cap.title if cap else state.conversation))
        if (text and text.lower() in HELP_WORDS) or (msg.event == "click" and msg.event_key == HELP_MENU_KEY):
            return Reply(self.help_text(ctx.roles, ctx.person is not None, ctx))

        # a conversation in progress gets the next text, image or location
        if state is not None and msg.msg_type in ("text", "voice", "image", "location"):
            cap = self.by_name(state.conversation)
            step = cap.steps.get(state.step) if cap else None
            if cap is not None and step is not None:
                ctx.data = dict(state.data)
                reply = self._run(cap, step, msg, ctx, state, owns_state=True)
                if reply is not None:
                    return reply

        if text:
            for glued in (False, True):  # every exact keyword before any glued one
                for cap in self.capabilities:
                    matched = cap.match_text(text, glued) if cap.entry_handler is not None else None
                    if matched is not None:
                        msg.text = matched
                        return self._enter(cap, msg, ctx, state)
        if msg.event == "click":
            for cap in self.capabilities:
                if msg.event_key in cap.menu_keys:
                    return self._enter(cap, msg, ctx, state)
        if msg.scene:
            for cap in self.capabilities:
                if cap.matches_scene(msg.scene):
                    return self._enter(cap, msg, ctx, state)
        kind = msg.event or ("location" if msg.is_location else msg.msg_type)
        for cap in self.capabilities:
            handler = cap.events.get(kind)
            if handler is not None and cap.allows(ctx.roles):
                ctx.data = {}
                reply = self._run(cap, handler, msg, ctx, state, owns_state=False)
                if reply is not None:
                    return reply
        return self._fallback(msg, ctx)

    @staticmethod
    def _fallback(msg: Incoming, ctx: Context) -> Reply:
        if msg.text:
            shown = msg.text if len(msg.text) <= 20 else msg.text[:20] + "…"
            return Reply.end(NOT_UNDERSTOOD.format(text=shown))
        if msg.msg_type == "image":
            return Reply.end(IMAGE_UNUSED)
        if msg.msg_type == "voice":
            return Reply.end(VOICE_UNRECOGNISED)
        if msg.msg_type in ("video", "shortvideo", "link", "file"):
            return Reply.end(UNSUPPORTED)
        return Reply.silent()  # events nobody handles: "success"
