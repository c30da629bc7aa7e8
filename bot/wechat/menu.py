"""The official account's menus: one per role combination, matched by a user tag, and a default menu.

The CLICK keys are the ones the capabilities answer (SPEC: REPAIR, MY_REPAIRS, CHECKIN, MENU, CANTEEN,
HELP, and BIND for followers not yet bound). A follower sees only the entries some capability answers
for their roles (`Conversation.allows`), so a parent is never offered 报修 or 值日; WeChat allows 3
buttons of up to 5 entries each.

How WeChat shows them: the default menu (`menu/create`) is what a follower sees unless a conditional
menu (`menu/addconditional`, matchrule `tag_id`) matches one of their user tags; conditional menus are
tried newest first and the first match wins. So a person with several roles (a teacher who is also a
bus monitor) must not carry one tag per role: the newest matching menu would hide the other role's
entries. Instead there is ONE TAG PER DISTINCT MENU, named after the menu's content: every role
combination maps to exactly one menu (the union of what its roles may use), and every bound follower
carries exactly one Houqin tag. That keeps within WeChat's limits by construction (100 tags per
account: the six roles give 64 combinations but only a handful of distinct menus; 20 tags per follower:
Houqin uses one), and the order of the conditional menus does not matter.

Keeping tags in step with roles: binding, unbinding, following again and any change of a person's
roles (the imports, the console, a parent code) mark the follower's binding due in the same
transaction (`watch_roles`, mapper events set up by Services), and the menu worker (`MenuWorker`, run by
`houqin worker` beside the push worker) tags and untags in batches of 50, with a lease and backoff like
the push worker's. `houqin wechat-menu --upload` creates the tags, uploads the menus, records them
(`WeChatMenu`) and tags every bound follower.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from itertools import combinations
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, delete, event, func, inspect, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.config import Settings
from bot.engine import HELP_MENU_KEY, Conversation, role_names
from bot.wechat.gateway import ApiError, WeChatApi
from bot.worker import drain_rounds, run_rounds
from models import ROLES, Binding, Person, PersonRole, WeChatMenu, utcnow

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

TAG_PREFIX = "houqin-"  # the tags Houqin owns; WeChat allows 30 bytes
BATCH = 50  # openids per batchtagging / batchuntagging call (WeChat's limit)
CLAIM = 200  # bindings a worker round takes
LEASE = timedelta(seconds=60)
TOP_NAME_BYTES = 16
NO_ROLE = "无角色"
NOT_UPLOADED = "菜单尚未上传（houqin wechat-menu --upload）"
GAVE_UP = "{error}（已重试{attempts}次，放弃）"
TAGGED = "已为 {count} 位已绑定的关注者设置角色菜单。"
WAITING = "另有 {count} 位待设置（houqin worker 会继续重试）。"
UNTAGGED = "{count} 位未能设置："
SHOWN = 10


@dataclass(frozen=True)
class Entry:
    """One menu entry: shown to a follower whom some capability answering `key` allows (HELP: anyone);
    `unbound` entries only to followers not yet bound."""

    name: str
    key: str
    type: str = "click"
    unbound: bool = False

    def button(self) -> dict[str, str]:
        return {"type": self.type, "name": self.name, "key": self.key}


LAYOUT: list[tuple[str, list[Entry]]] = [
    ("报修", [Entry("我要报修", "REPAIR"), Entry("我的报修", "MY_REPAIRS")]),
    ("值日", [Entry("值日签到", "CHECKIN"), Entry("发送位置签到", "CHECKIN", type="location_select")]),
    ("食堂·帮助", [Entry("本周菜单", "MENU"), Entry("评价食堂", "CANTEEN"), Entry("绑定身份", "BIND", unbound=True),
                   Entry("使用帮助", HELP_MENU_KEY)]),
]


def menu_for(capabilities: Sequence[Conversation], roles: Iterable[str] | None) -> dict[str, Any]:
    """The menu of a follower with these roles (None: not bound). With three entries or fewer they are
    the three top buttons; otherwise one button per group (a group of one is its entry)."""
    bound = roles is not None
    held = set(roles or ())
    answered = {HELP_MENU_KEY} | {k for c in capabilities if c.allows(held) for k in c.menu_keys}
    groups = [(name, [e for e in entries if e.key in answered and not (e.unbound and bound)])
              for name, entries in LAYOUT]
    kept = [e for _, entries in groups for e in entries]
    if len(kept) <= 3 and all(len(e.name.encode()) <= TOP_NAME_BYTES for e in kept):
        return {"button": [e.button() for e in kept]}
    buttons: list[dict[str, Any]] = []
    for name, entries in groups:
        if len(entries) == 1:
            buttons.append(entries[0].button())
        elif entries:
            buttons.append({"name": name, "sub_button": [e.button() for e in entries]})
    return {"button": buttons}


def tag_of(menu: dict[str, Any]) -> str:
    """The tag a menu is matched by, named after its content (the same menu, the same tag)."""
    digest = hashlib.sha1(json.dumps(menu, ensure_ascii=False, sort_keys=True).encode()).hexdigest()[:10]
    return TAG_PREFIX + digest


@dataclass
class MenuPlan:
    """Every menu the capabilities give: the default one, and one per distinct menu of a role combination."""

    default: dict[str, Any]
    menus: dict[str, dict[str, Any]]  # tag -> menu
    by_roles: dict[frozenset[str], str]  # role combination -> tag
    roles: dict[str, str] = field(default_factory=dict)  # tag -> who sees it, in words

    def tag_for(self, roles: Iterable[str]) -> str:
        return self.by_roles[frozenset(r for r in roles if r in ROLES)]


def menu_plan(capabilities: Sequence[Conversation]) -> MenuPlan:
    """The default menu and the menu of every combination of ROLES, each distinct menu once."""
    plan = MenuPlan(menu_for(capabilities, None), {}, {})
    who: dict[str, list[str]] = defaultdict(list)
    for size in range(len(ROLES) + 1):
        for combination in combinations(ROLES, size):
            menu = menu_for(capabilities, combination)
            tag = tag_of(menu)
            plan.menus.setdefault(tag, menu)
            plan.by_roles[frozenset(combination)] = tag
            if size <= 1 or not who[tag]:  # single roles name a menu best; a combination only if none does
                who[tag].append(role_names(combination) if combination else NO_ROLE)
    plan.roles = {tag: "；".join(names) for tag, names in who.items()}
    return plan


def default_plan() -> MenuPlan:
    from handlers import CAPABILITIES

    return menu_plan(CAPABILITIES)


# -- uploading -------------------------------------------------------------------------------------
@dataclass
class Uploaded:
    menus: int
    created_tags: list[str]
    removed_menus: int

    def __str__(self) -> str:
        return (f"菜单已上传：默认菜单 + {self.menus} 个角色菜单（新建标签 {len(self.created_tags)} 个，"
                f"替换旧的个性化菜单 {self.removed_menus} 个）")


def upload(api: WeChatApi, factory: sessionmaker[Session], plan: MenuPlan, now: datetime) -> Uploaded:
    """Create the missing tags, upload the default menu, add a conditional menu per tag, then remove the
    conditional menus Houqin added before (after the new ones, so nobody is left on the default menu in
    between); record them and mark every follower who is or was bound due for tagging."""
    existing = api.tags()
    created = [name for name in plan.menus if name not in existing]
    ids = {name: existing.get(name) or api.create_tag(name) for name in plan.menus}
    api.create_menu(plan.default)
    ours = {str(i) for name, i in existing.items() if name.startswith(TAG_PREFIX)} | {str(i) for i in ids.values()}
    old = [str(m["menuid"]) for m in api.menus().get("conditionalmenu") or []
           if str((m.get("matchrule") or {}).get("tag_id", "")) in ours]
    menuids = {name: api.add_conditional_menu(menu, ids[name]) for name, menu in plan.menus.items()}
    for menuid in old:
        api.delete_conditional_menu(menuid)
    with factory() as session, session.begin():
        session.execute(delete(WeChatMenu))
        session.add_all(WeChatMenu(tag=name, tag_id=ids[name], menuid=menuids[name], menu=menu,
                                   roles=plan.roles.get(name, ""), uploaded_at=now)
                        for name, menu in plan.menus.items())
        session.execute(_mark_due(or_(Binding.person_id.is_not(None), Binding.menu_tag_id.is_not(None))))
    return Uploaded(len(plan.menus), created, len(old))


def _mark_due(where: Any) -> Any:
    """Due again, with a new version; a worker's lease or backoff (`menu_retry_at`) is left as it is."""
    return (update(Binding).where(where).values(menu_due=True, menu_version=Binding.menu_version + 1)
            .execution_options(synchronize_session=False))


# -- keeping tags in step with roles ----------------------------------------------------------------
def watch_roles() -> None:
    """From now on, a follower's menu is marked due, in the transaction that changes what decides it: a
    binding's person (bind, unbind), following again, a person's roles (mapper events: they cost nothing
    on a flush that touches neither bindings nor roles). Idempotent."""
    for target, name, listener in _LISTENERS:
        if not event.contains(target, name, listener):
            event.listen(target, name, listener)


def _role_changed(_mapper: Any, connection: Connection, role: PersonRole) -> None:
    connection.execute(_mark_due(Binding.person_id == role.person_id))


def _binding_inserted(_mapper: Any, _connection: Connection, binding: Binding) -> None:
    if binding.person_id is not None:
        binding.menu_due = True


def _binding_updated(_mapper: Any, _connection: Connection, binding: Binding) -> None:
    attrs = inspect(binding).attrs
    if (attrs.person_id.history.has_changes() or attrs.person.history.has_changes()
            or True in attrs.subscribed.history.added):
        binding.menu_due = True
        binding.menu_version = Binding.menu_version + 1  # type: ignore[assignment]  # rendered in the UPDATE


_LISTENERS: list[tuple[Any, str, Callable[..., None]]] = [
    (PersonRole, "after_insert", _role_changed), (PersonRole, "after_delete", _role_changed),
    (Binding, "before_insert", _binding_inserted), (Binding, "before_update", _binding_updated)]


# -- the menu worker --------------------------------------------------------------------------------
@dataclass
class _Follower:
    openid: str
    version: int
    tag_id: int | None  # what WeChat has
    want: int | None = None
    error: str | None = None
    retry: bool = False
    following: bool = True  # an unfollowed openid cannot be tagged; following again makes it due again


class MenuWorker:
    """Tags and untags the followers whose menu is due, in batches of 50. A round claims due bindings
    with a lease (so workers on several machines never tag the same follower at once), untags the old
    Houqin tag, tags the one of the person's menu, and clears `menu_due` unless the binding changed
    meanwhile. Time-outs and busy answers are retried with backoff; a refused follower is recorded."""

    def __init__(self, factory: sessionmaker[Session], settings: Settings, api: WeChatApi,
                 clock: Callable[[], datetime] = utcnow, plan: MenuPlan | None = None) -> None:
        self.factory = factory
        self.settings = settings
        self.api = api
        self.clock = clock
        self.worker_id = uuid.uuid4().hex[:12]
        self._plan = plan

    @cached_property
    def plan(self) -> MenuPlan:
        return self._plan or default_plan()

    def _claim(self, session: Session, now: datetime) -> list[_Follower]:
        due = (select(Binding.openid)
               .where(Binding.menu_due.is_(True), or_(Binding.menu_retry_at.is_(None), Binding.menu_retry_at <= now))
               .order_by(Binding.openid).limit(CLAIM))
        if session.get_bind().dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        openids = list(session.scalars(due))
        if not openids:
            return []
        session.execute(update(Binding).where(Binding.openid.in_(openids))
                        .values(menu_retry_at=now + LEASE, menu_attempts=Binding.menu_attempts + 1)
                        .execution_options(synchronize_session=False))
        rows = session.execute(select(Binding.openid, Binding.menu_version, Binding.menu_tag_id, Binding.person_id,
                                      Binding.subscribed).where(Binding.openid.in_(openids))).all()
        people = {r.person_id for r in rows if r.person_id is not None}
        roles: dict[int, set[str]] = defaultdict(set)
        for person_id, role in session.execute(select(PersonRole.person_id, PersonRole.role)
                                               .where(PersonRole.person_id.in_(sorted(people)))):
            roles[person_id].add(role)
        tags = {m.tag: m.tag_id for m in session.scalars(select(WeChatMenu))}
        followers = []
        for row in rows:
            follower = _Follower(row.openid, row.menu_version, row.menu_tag_id, want=row.menu_tag_id,
                                 following=row.subscribed)
            if row.subscribed:
                tag = self.plan.tag_for(roles[row.person_id]) if row.person_id is not None else None
                follower.want = tags.get(tag) if tag is not None else None
                if tag is not None and follower.want is None:
                    follower.error = NOT_UPLOADED  # the upload marks everyone due again
            followers.append(follower)
        return followers

    def run_once(self) -> int:
        """One round; returns how many followers it handled."""
        now = self.clock()
        with self.factory() as session, session.begin():
            followers = self._claim(session, now)
        if not followers:
            return 0
        untag: dict[int, list[_Follower]] = defaultdict(list)
        for f in followers:
            if f.tag_id is not None and f.tag_id != f.want:
                untag[f.tag_id].append(f)
        for tag_id, group in untag.items():
            for f in self._apply(self.api.untag_users, tag_id, group):
                if not f.retry and f.error is None:
                    f.tag_id = None
        tag: dict[int, list[_Follower]] = defaultdict(list)
        for f in followers:
            # tag again even if WeChat should have it: a follower who unfollowed may have lost it
            if f.following and f.want is not None and not f.retry and f.tag_id in (None, f.want):
                tag[f.want].append(f)
        for tag_id, group in tag.items():
            for f in self._apply(self.api.tag_users, tag_id, group):
                if not f.retry and f.error is None:
                    f.tag_id = tag_id
        self._record(followers, now)
        return len(followers)

    def _apply(self, call: Callable[[int, list[str]], None], tag_id: int, group: list[_Follower]
               ) -> list[_Follower]:
        """`call` for the group in batches of 50; a batch refused for good is tried one by one (WeChat
        fails a whole batch for one bad openid). Sets retry or error on the followers it failed for."""
        for start in range(0, len(group), BATCH):
            batch = group[start:start + BATCH]
            try:
                call(tag_id, [f.openid for f in batch])
            except ApiError as exc:
                if exc.transient or exc.token_expired:
                    for f in batch:
                        f.retry, f.error = True, str(exc)
                elif len(batch) == 1:
                    batch[0].error = str(exc)
                else:
                    for f in batch:
                        self._apply(call, tag_id, [f])
        return group

    def _record(self, followers: list[_Follower], now: datetime) -> None:
        with self.factory() as session, session.begin():
            attempts = dict(session.execute(select(Binding.openid, Binding.menu_attempts)
                                            .where(Binding.openid.in_([f.openid for f in followers]))).all())
            for f in followers:
                tried = attempts.get(f.openid, 1)
                retry = f.retry and tried < self.settings.push_max_attempts
                error = GAVE_UP.format(error=f.error, attempts=tried) if f.retry and not retry else f.error
                backoff = timedelta(seconds=self.settings.push_backoff_seconds * 2 ** max(tried - 1, 0))
                session.execute(update(Binding).where(Binding.openid == f.openid)
                                .values(menu_tag_id=f.tag_id, menu_error=error,
                                        menu_retry_at=now + backoff if retry else None,
                                        menu_attempts=Binding.menu_attempts if retry else 0)
                                .execution_options(synchronize_session=False))
                if not retry:
                    session.execute(update(Binding)
                                    .where(and_(Binding.openid == f.openid, Binding.menu_version == f.version))
                                    .values(menu_due=False)
                                    .execution_options(synchronize_session=False))
            if any(f.error for f in followers):
                log.warning("menu tags: %d followers not tagged: %s", sum(1 for f in followers if f.error),
                            next(f.error for f in followers if f.error))

    def summary(self) -> str:
        """What the followers' menus are now: how many carry their menu's tag, who could not be tagged."""
        with self.factory() as session:
            tagged = session.scalar(select(func.count()).select_from(Binding).where(
                Binding.person_id.is_not(None), Binding.menu_tag_id.is_not(None), Binding.menu_error.is_(None)))
            failed = session.execute(select(Binding.openid, Person.name, Binding.menu_error)
                                     .outerjoin(Person, Person.id == Binding.person_id)
                                     .where(Binding.menu_error.is_not(None)).order_by(Binding.openid)).all()
            waiting = session.scalar(select(func.count()).select_from(Binding).where(Binding.menu_due.is_(True)))
        lines = [TAGGED.format(count=tagged or 0)]
        if waiting:
            lines.append(WAITING.format(count=waiting))
        if failed:
            lines.append(UNTAGGED.format(count=len(failed)))
            lines.extend(f"  {name or openid}：{error}" for openid, name, error in failed[:SHOWN])
        return "\n".join(lines)

    def drain(self, timeout: float = 30.0) -> int:
        """Tag every follower due now (tests, `houqin wechat-menu --upload`); returns how many were handled."""
        return drain_rounds(self.run_once, timeout)

    def run_forever(self, stop: threading.Event, idle_sleep: float = 2.0) -> None:
        log.info("menu worker %s started", self.worker_id)
        run_rounds(self.run_once, stop, idle_sleep, "menu worker")


def menu_worker(services: Services) -> MenuWorker:
    """The menu worker for a process's Services (its factory, settings, API client and clock)."""
    return MenuWorker(services.factory, services.settings, services.api, clock=services.now)
