"""One installation serving a county's schools, each isolated by construction.

Each school's data lives in a database namespace of its own, built by the same Alembic migrations, so
no table carries a school column and a query can only ever see its own school:

- PostgreSQL: one schema per school. The default school stays where DATABASE_URL (its search_path)
  already points, so an existing installation *is* the default school; another school gets the
  schema `school_<slug>` (or `<base>_<slug>` when the default lives in a schema other than `public`).
- SQLite: the default school stays in its file; another school gets a file beside it, `houqin.<slug>.db`.

The county's own tables (models/county.py) live in the main namespace: the schools, with their own
official account's secrets encrypted under a key derived from HOUQIN_SECRET_KEY, and what routes a
shared account's messages (followers, bind codes, the school a conversation is with).

The API the rest of the code uses (stable; the bureau's overview and digests are built on it):

    county = County(default_services)     # or County.of(services), the one cached per Services
    county.schools()                      # [SchoolEntry(slug, name, is_default, appid, tz_name)], default first
    county.services(slug)                 # Services bound to that school's namespace, cached
    county.default                        # the default school's Services (== county.services(DEFAULT_SLUG))
    county.add(slug, name, …)             # register + create + migrate a namespace
    county.several                        # more than one school?

A school's Services carry its settings overlaid: its own WeChat credentials when it has them, its own
timezone, its own template ids (`houqin templates set`), its own storage and spool folders, and a
public URL under `/s/<slug>` so its push and menu pages name the school.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError

from bot.db import engine_schema, schema_engine
from bot.engine import Incoming
from bot.inbox import Replayed, Stamp
from bot.school import environment_templates
from bot.services import Services
from models import (
    BindCode,
    Binding,
    CountyCode,
    CountyConversation,
    CountyFollower,
    CountySchool,
)
from models.county import DEFAULT_SLUG

SLUG_PATTERN = re.compile(r"[a-z][a-z0-9]{1,29}")
BAD_SLUG = "学校代号「{slug}」不可用：请用 2–30 个小写字母或数字、以字母开头（例如 beicheng）"
SLUG_TAKEN = "学校代号「{slug}」已经存在"
UNKNOWN_SCHOOL = "没有代号为「{slug}」的学校；已有：{known}"
BAD_NAME = "学校名称须为 1–{limit} 个字，例如 北城小学"
NAME_LIMIT = 50
NEEDS_ALL = "本校公众号需同时给出 --appid、--token 和 --secret（--aes-key 可选）"
DEFAULT_NAME = "本校"
SCHOOL_URL_PREFIX = "/s"
SCHOOL_BLUEPRINT_PREFIX = "school_"  # the blueprints registered again under /s/<school> (bot.create_app)  # a non-default school's pages: /s/<slug>/p/<token>, /s/<slug>/menu/…


class CountyError(ValueError):
    """An operator's mistake about schools; the message is Chinese."""


@dataclass(frozen=True)
class SchoolEntry:
    slug: str
    name: str
    is_default: bool = False
    appid: str = ""  # its own official account; "" = the default (shared county) account
    tz_name: str = ""  # "" = HOUQIN_TZ

    @property
    def own_account(self) -> bool:
        return bool(self.appid)

    @property
    def shared(self) -> bool:
        """Served through the default account (the county's) rather than an account of its own."""
        return not self.appid


def secret_box(secret_key: str) -> Fernet:
    """The Fernet that seals schools' account secrets: its key derived from HOUQIN_SECRET_KEY by HKDF."""
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"houqin-county", info=b"school account secrets") \
        .derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def mask(value: str) -> str:
    """What `school list` shows of a secret: its length and last two characters at most."""
    if not value:
        return "-"
    return "*" * max(4, len(value) - 2) + value[-2:] if len(value) > 6 else "****"


def school_database_url(main_url: str, slug: str) -> str:
    """SQLite: the school's file beside the main one (houqin.db → houqin.<slug>.db); other URLs unchanged."""
    if not main_url.startswith("sqlite:///") or main_url.startswith("sqlite:///:memory:"):
        return main_url
    path, _, query = main_url.removeprefix("sqlite:///").partition("?")
    file = Path(path)
    school_file = file.with_name(f"{file.stem}.{slug}{file.suffix or '.db'}")
    return f"sqlite:///{school_file}" + (f"?{query}" if query else "")


class County:
    """The schools of this installation, each with its own Services."""

    _of: dict[int, County] = {}
    _of_lock = threading.Lock()

    def __init__(self, default: Services) -> None:
        self.default = default
        self._services: dict[str, Services] = {DEFAULT_SLUG: default}
        self._lock = threading.Lock()
        self._base_schema: str | None = None
        self._cache: tuple[float, list[SchoolEntry]] | None = None
        self._miss_lock = threading.Lock()
        self._missed_at = float("-inf")  # (the default's monotonic clock) the last re-read for an unknown slug
        self.env_templates = environment_templates(default.settings.templates)  # HOUQIN_TEMPLATES

    @classmethod
    def of(cls, services: Services) -> County:
        """The county whose default school is `services` (one per Services object, made on first use)."""
        found = getattr(services, "_county", None)
        if found is None:
            with cls._of_lock:
                found = getattr(services, "_county", None)
                if found is None:
                    found = cls(services)
                    services._county = found  # type: ignore[attr-defined]
        return found  # type: ignore[no-any-return]

    # -- the list -------------------------------------------------------------------------------
    def schools(self) -> list[SchoolEntry]:
        """Every school, the default first then by slug. A database not yet migrated has the default alone."""
        try:
            with self.default.read_factory() as db:
                rows = list(db.scalars(select(CountySchool).order_by(CountySchool.is_default.desc(),
                                                                     CountySchool.slug)))
        except SQLAlchemyError:
            rows = []
        entries = [SchoolEntry(r.slug, r.name, r.is_default, r.appid, r.tz_name) for r in rows]
        if not any(e.is_default for e in entries):
            entries.insert(0, SchoolEntry(DEFAULT_SLUG, DEFAULT_NAME, True))
        return entries

    def cached_schools(self) -> list[SchoolEntry]:
        """schools(), read again at most every few seconds: for the webhook's routing."""
        now = time.monotonic()
        if self._cache is None or now - self._cache[0] > SCHOOLS_CACHE_SECONDS:
            self._cache = (now, self.schools())
        return self._cache[1]

    def routed_school(self, slug: str) -> SchoolEntry | None:
        """The school `slug` for the webhook: from cached_schools(), and on a miss from the list read again
        at once — a school `houqin school add` registered in another process a moment ago is served at
        once — but at most once per SCHOOLS_MISS_SECONDS per process, whatever the slug, so a stream of
        unknown slugs cannot hammer the database. None: no such school (yet)."""
        entry = next((e for e in self.cached_schools() if e.slug == slug), None)
        if entry is not None:
            return entry
        with self._miss_lock:  # (another request may have just read it again: look at its list first)
            entry = next((e for e in self.cached_schools() if e.slug == slug), None)
            now = self.default.monotonic()
            if entry is not None or now - self._missed_at < SCHOOLS_MISS_SECONDS:
                return entry
            self._missed_at = now
            self._cache = (time.monotonic(), self.schools())
            return next((e for e in self._cache[1] if e.slug == slug), None)

    @property
    def several(self) -> bool:
        return len(self.schools()) > 1

    def school(self, slug: str) -> SchoolEntry:
        for entry in self.schools():
            if entry.slug == slug:
                return entry
        raise CountyError(UNKNOWN_SCHOOL.format(slug=slug, known="、".join(e.slug for e in self.schools())))

    def entry_of(self, services: Services) -> SchoolEntry:
        """The school `services` serves."""
        return self.school(services.settings.school or DEFAULT_SLUG)

    # -- a school's services --------------------------------------------------------------------
    def services(self, slug: str) -> Services:
        """That school's Services (cached). Raises CountyError for an unknown slug."""
        found = self._services.get(slug)
        if found is not None:
            return found
        with self._lock:
            found = self._services.get(slug)
            if found is None:
                found = self._build(slug)
                self._services[slug] = found
        return found

    def each(self) -> Iterator[tuple[SchoolEntry, Services]]:
        for entry in self.schools():
            yield entry, self.services(entry.slug)

    def base_schema(self) -> str | None:
        """The PostgreSQL schema the default school lives in (None on SQLite)."""
        engine = self.default.db_engine
        if engine.dialect.name != "postgresql":
            return None
        if self._base_schema is None:
            self._base_schema = self.default.schema or engine_schema(engine)
        return self._base_schema

    def schema_of(self, slug: str) -> str | None:
        base = self.base_schema()
        if base is None:
            return None
        return f"school_{slug}" if base == "public" else f"{base}_{slug}"

    def _build(self, slug: str) -> Services:
        entry = self.school(slug)
        if entry.is_default:
            return self.default
        main = self.default.settings
        changes: dict[str, Any] = {"school": slug, "public_url": f"{main.public_url}{SCHOOL_URL_PREFIX}/{slug}"}
        if entry.tz_name:
            changes["tz_name"] = entry.tz_name
        # the environment's template ids belong to the default account: a school of its own starts with none
        changes["templates"] = {} if entry.own_account else self.env_templates
        if entry.own_account:
            with self.default.read_factory() as db:
                row = db.get(CountySchool, slug)
                assert row is not None
                box = secret_box(main.secret_key)
                changes.update(wechat_appid=row.appid, wechat_token=_open(box, row.token_enc),
                               wechat_secret=_open(box, row.secret_enc),
                               wechat_aes_key=_open(box, row.aes_key_enc), wechat_aes_key_previous="")
        schema = self.schema_of(slug)
        changes["database_url"] = school_database_url(main.database_url, slug)
        settings = replace(main, **changes)
        if schema is not None:  # PostgreSQL: the default's pool, each transaction in the school's schema
            services = Services(settings, schema_engine(self.default.db_engine, schema), schema)
        else:
            services = Services.from_settings(settings)
        services.clock = self.default.clock
        services.monotonic = lambda: self.default.monotonic()  # a test steps the default's: every school follows
        services._county = self  # type: ignore[attr-defined]  # County.of(a school's services) is this county
        services.factory.configure(info={"claim_code": partial(self.claim_code, slug)})
        services.api_base = self.default.api_base
        if entry.shared:
            # one access token per appid: a school on the shared account uses the default's store
            services.__dict__["token_store"] = self.default.token_store
            services.__dict__["nonces"] = self.default.nonces
        return services

    # -- adding ---------------------------------------------------------------------------------
    def add(self, slug: str, name: str, *, appid: str = "", token: str = "", aes_key: str = "", secret: str = "",
            tz_name: str = "", now: datetime | None = None) -> SchoolEntry:
        """Register a school, create its namespace and migrate it. Its secrets are stored sealed."""
        from bot.db import upgrade

        if not SLUG_PATTERN.fullmatch(slug) or slug == DEFAULT_SLUG:
            raise CountyError(BAD_SLUG.format(slug=slug))
        if any(e.slug == slug for e in self.schools()):
            raise CountyError(SLUG_TAKEN.format(slug=slug))
        if (appid or token or secret or aes_key) and not (appid and token and secret):
            raise CountyError(NEEDS_ALL)
        box = secret_box(self.default.settings.secret_key)
        schema = self.schema_of(slug)
        if schema is not None:
            with self.default.db_engine.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        with self.default.factory() as db, db.begin():
            db.add(CountySchool(slug=slug, name=name, is_default=False, appid=appid,
                                token_enc=_seal(box, token), secret_enc=_seal(box, secret),
                                aes_key_enc=_seal(box, aes_key), tz_name=tz_name,
                                **({"created_at": now} if now is not None else {})))
        self._cache = None
        services = self.services(slug)
        upgrade(services.db_engine)
        return self.school(slug)

    def rename(self, slug: str, name: str) -> tuple[str, SchoolEntry]:
        """Give a school (the default one too: 本校 until named) the name the bureau and its followers see;
        returns the old name and the school. The default school's row is made if the installation has none."""
        name = name.strip()
        if not name or len(name) > NAME_LIMIT:
            raise CountyError(BAD_NAME.format(limit=NAME_LIMIT))
        old = self.school(slug)
        with self.default.factory() as db, db.begin():
            row = db.get(CountySchool, slug)
            if row is None:  # the default school of an installation that never had a row for it
                db.add(CountySchool(slug=slug, name=name, is_default=True))
            else:
                row.name = name
        self._cache = None
        return old.name, self.school(slug)

    def dispose(self) -> None:
        """Close every school's connections (not the default's: its owner closes it)."""
        for slug, services in list(self._services.items()):
            if slug != DEFAULT_SLUG and services.schema is None:  # PostgreSQL schools use the default's pool
                services.db_engine.dispose()

    # -- bind codes across schools --------------------------------------------------------------
    def claim_code(self, slug: str, code: str) -> bool:
        """Record that school `slug` (not the default) issued `code`; False if the default school or
        another school holds it already (the caller draws another). Its own short transaction in the
        main namespace: a code claimed by a transaction that then rolls back stays reserved, unused."""
        try:
            with self.default.factory() as main, main.begin():
                taken = main.get(CountyCode, code) is not None or main.scalar(
                    select(BindCode.id).where(BindCode.code == code).limit(1)) is not None
                if taken:
                    return False
                main.add(CountyCode(code=code, slug=slug, created_at=self.default.now()))
        except SQLAlchemyError:
            return False
        return True

    def school_of_code(self, code: str) -> str | None:
        with self.default.read_factory() as db:
            row = db.get(CountyCode, code)
            return row.slug if row is not None else None


def _seal(box: Fernet, value: str) -> str:
    return box.encrypt(value.encode()).decode() if value else ""


def _open(box: Fernet, sealed: str) -> str:
    if not sealed:
        return ""
    try:
        return box.decrypt(sealed.encode()).decode()
    except InvalidToken as exc:
        raise CountyError("学校公众号的密钥无法解密：HOUQIN_SECRET_KEY 是否换过？请用 houqin school add 重新登记") from exc


# -- processes: every school's workers ----------------------------------------------------------------
SCHOOLS_RECHECK_SECONDS = 30.0


def serve_every_school(county: County, stop: threading.Event, start: Any,
                       recheck_seconds: float = SCHOOLS_RECHECK_SECONDS) -> None:
    """Call `start(services, stop)` once for each school (the push worker and its companions), now and
    for a school added later (looked for every `recheck_seconds`), until `stop` is set. Runs in the
    caller's thread: start it in a thread of its own."""
    started: set[str] = set()
    while True:
        for entry in county.schools():
            if entry.slug not in started:
                started.add(entry.slug)
                start(county.services(entry.slug), stop)
        if stop.wait(recheck_seconds):
            return


# -- the web: which school a request is for ---------------------------------------------------------
def app_county() -> County:
    from flask import current_app

    return County.of(current_app.extensions["houqin"])


def request_services() -> Services:
    """The Services of the school this request's URL names (`/s/<slug>/…`: a school's push and menu
    pages), else the default school's. An unknown school is a 404."""
    from flask import abort, current_app, g

    default: Services = current_app.extensions["houqin"]
    slug = g.get("houqin_school")
    if not slug or slug == DEFAULT_SLUG:
        return default
    try:
        return County.of(default).services(slug)
    except CountyError:
        abort(404)


def console_services() -> Services:
    """The console's one way to its school's Services: the school the signed-in person chose at sign-in
    (kept in the signed session cookie), or the one being signed in to; the default school otherwise.
    Every console page and export reads only that school's namespace."""
    from flask import abort, current_app, g, session

    default: Services = current_app.extensions["houqin"]
    slug = g.get("console_school") or session.get("school")
    if not slug or slug == DEFAULT_SLUG:
        return default
    try:
        return County.of(default).services(str(slug))
    except CountyError:
        session.clear()
        abort(404)


def pull_school(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """A url_value_preprocessor: `/s/<school>/…` routes keep the school for request_services()."""
    from flask import g

    if values is not None and "school" in values and (endpoint or "").startswith(SCHOOL_BLUEPRINT_PREFIX):
        g.houqin_school = values.pop("school")


def school_prefix() -> str:
    """The path prefix of this request's school pages: "" for the default school, "/s/<slug>" for another."""
    from flask import g, has_request_context

    slug = g.get("houqin_school") if has_request_context() else None
    return f"{SCHOOL_URL_PREFIX}/{slug}" if slug and slug != DEFAULT_SLUG else ""


def login_schools() -> list[SchoolEntry]:
    """The schools a console sign-in chooses among: none to choose with one school."""
    schools = app_county().schools()
    return schools if len(schools) > 1 else []


def choose_login_school(slug: str, schools: list[SchoolEntry]) -> None:
    """The school a sign-in is for (the form's choice, one of `schools`); a 400 for anything else."""
    from flask import abort, g

    if not schools:
        return
    if slug not in {s.slug for s in schools}:
        abort(400)
    g.console_school = slug


# -- a shared account: which school a message is for ---------------------------------------------------
SCHOOLS_CACHE_SECONDS = 5.0
SCHOOLS_MISS_SECONDS = 1.0  # an unknown /wechat/<slug> reads the schools again at most this often per process
CHOICE_LIFETIME = timedelta(minutes=30)  # a chosen school holds this long after the follower's last message
ASK_LIFETIME = timedelta(minutes=10)
MAX_WAITING = 5  # messages kept while the follower is asked which school
SWITCH_WORDS = ("切换学校", "换学校", "选择学校")
ASK_SCHOOL = "你在{count}所学校都绑定了。这条消息是发给哪所学校的？请回复序号：\n{choices}"
CHOSEN = "好的，接下来的消息都发给{name}（30 分钟内；发送「切换学校」可改）。"
BIND_TEXT = re.compile(r"^\s*绑定\s*[:：]?\s*([A-Za-z0-9\s\-_.:;,]{6,20})\s*$")
CODE_NOISE = re.compile(r"[\s:;,.\-_]+")
SCENE_SCHOOL = "/"  # a shared school's QR scene: "<slug>/<scene>", e.g. "north/room:12"
# events that concern every school the follower is bound in, not one conversation
BROADCAST_EVENTS = ("subscribe", "unsubscribe", "templatesendjobfinish")


def scene_for(services: Services, scene: str) -> str:
    """The QR scene a school's code carries: a school on the shared account names itself in it
    ("<slug>/room:12") so its codes never collide with another's; the default school's and a school
    with its own account are unchanged."""
    slug = services.settings.school
    if not slug or services.settings.wechat_appid != County.of(services).default.settings.wechat_appid:
        return scene
    return f"{slug}{SCENE_SCHOOL}{scene}"


def own_account_services(default: Services, slug: str) -> Services | None:
    """`/wechat/<slug>`: the school's services if it has an account of its own, else None."""
    county = County.of(default)
    entry = county.routed_school(slug)
    if entry is None or not entry.own_account:
        return None
    return county.services(slug)


def route(default: Services, msg: Incoming, stamp: Stamp | None = None) -> str:
    """Handle a message to the default account: with one school on it (every installation that never
    added a school), the default school's inbox at once; with several sharing it, the school the QR
    scene or bind code names, else the one(s) the follower is bound in (asking which, once, when two).
    `stamp` (the request's timestamp and nonce) is claimed in the account's ledger — the default
    school's — so before routing when the message may go to another school; Replayed if used before."""
    county = County.of(default)
    shared = [e for e in county.cached_schools() if e.shared]
    if len(shared) <= 1:
        return default.inbox.handle(msg, stamp)
    if stamp is not None and not default.inbox.claim_alone(stamp):
        raise Replayed
    return SharedAccount(county, shared).handle(msg)


class SharedAccount:
    def __init__(self, county: County, shared: list[SchoolEntry]) -> None:
        self.county = county
        self.shared = shared
        self.slugs = [e.slug for e in shared]

    def handle(self, msg: Incoming) -> str:
        if SCENE_SCHOOL in msg.scene:
            slug, _, scene = msg.scene.partition(SCENE_SCHOOL)
            if slug in self.slugs:
                return self.deliver(slug, replace(msg, scene=scene))
        code = _bind_code(msg)
        issuer = self.county.school_of_code(code) if code else None
        if issuer is not None and issuer in self.slugs:
            return self.deliver(issuer, msg)
        if code or (msg.scene and DEFAULT_SLUG in self.slugs):
            # a code no other school issued is the default school's (or none); a QR scene that names no
            # school is one of the default school's own codes (printed before there were several schools):
            # never another school's room, post or asset that happens to have the same number
            return self.deliver(DEFAULT_SLUG, msg)
        bound = self.followed(msg.openid)
        if not bound:
            return self.deliver(DEFAULT_SLUG, msg)
        if len(bound) == 1:
            return self.deliver(bound[0], msg)
        if msg.msg_type == "event" and msg.event in BROADCAST_EVENTS:
            replies = [self.deliver(slug, msg) for slug in bound]
            return next((r for r in replies if r and r != "success"), replies[0])
        return self.choose(msg, bound)

    def followed(self, openid: str) -> list[str]:
        with self.county.default.read_factory() as db:
            found = set(db.scalars(select(CountyFollower.slug).where(CountyFollower.openid == openid)))
        return [slug for slug in self.slugs if slug in found]

    def deliver(self, slug: str, msg: Incoming) -> str:
        services = self.county.services(slug)
        reply = services.inbox.handle(msg)
        self.sync_follower(slug, services, msg.openid)
        return reply

    def sync_follower(self, slug: str, services: Services, openid: str) -> None:
        """Keep `county_followers` as the school's own bindings say (a bind, 解绑, a reissued code)."""
        with services.read_factory() as db:
            bound = db.scalar(select(Binding.person_id).where(Binding.openid == openid)) is not None
        with self.county.default.factory() as main, main.begin():
            row = main.scalar(select(CountyFollower).where(CountyFollower.openid == openid,
                                                           CountyFollower.slug == slug))
            if bound and row is None:
                main.add(CountyFollower(openid=openid, slug=slug, bound_at=self.county.default.now()))
            elif not bound and row is not None:
                main.delete(row)

    def choose(self, msg: Incoming, bound: list[str]) -> str:
        """A follower bound in several schools: the school chosen for this conversation, or ask which
        (the messages wait, every one of them, and go to the school they pick). The answer that picks
        ("1", "2", a school's name) is kept in that school's inbound log like every message."""
        now = self.county.default.now()
        entries = [e for e in self.shared if e.slug in bound]
        switch = msg.text in SWITCH_WORDS
        asked = ""
        with self.county.default.factory() as main, main.begin():
            row = main.get(CountyConversation, msg.openid, with_for_update=True)
            live = row is not None and row.expires_at > now
            if row is not None and live and row.slug in bound and not switch:
                row.expires_at = now + CHOICE_LIFETIME
                target, earlier, chosen_now = row.slug, [], False
            elif row is not None and live and not row.slug and (picked := _pick(msg, entries)) is not None:
                target, earlier, chosen_now = picked.slug, _waiting(row.pending), True
                row.slug, row.pending, row.expires_at = picked.slug, "", now + CHOICE_LIFETIME
            else:
                # the school the conversation was with (切换学校 is kept in its log)
                target, earlier, chosen_now = (row.slug if row is not None and row.slug in bound else bound[0]), [], False
                # a message while asked waits beside the earlier ones (none is dropped), up to a few
                kept = _waiting(row.pending) if row is not None and live and not row.slug else []
                if not switch and msg.raw not in kept:  # a retry of a waiting message waits once
                    kept = (kept + [msg.raw])[-MAX_WAITING:]
                waiting = json.dumps(kept, ensure_ascii=False) if kept else ""
                if row is None:
                    main.add(CountyConversation(openid=msg.openid, slug="", pending=waiting,
                                                expires_at=now + ASK_LIFETIME))
                else:
                    row.slug, row.pending, row.expires_at = "", waiting, now + ASK_LIFETIME
                asked = ASK_SCHOOL.format(count=len(entries), choices="\n".join(
                    f"{i}. {e.name}" for i, e in enumerate(entries, 1)))
        if asked:
            if switch:
                self.county.services(target).inbox.record(msg, asked, now)
            return asked
        if not chosen_now:
            return self.deliver(target, msg)
        told = CHOSEN.format(name=next(e.name for e in entries if e.slug == target))
        services = self.county.services(target)
        if not services.inbox.record(msg, told, now):  # WeChat's retry of the answer: the same reply
            return told
        replies = [self.deliver(target, Incoming.from_wechat(raw)) for raw in earlier]
        return "\n\n".join([told, *(r for r in replies if r and r != "success")])


def _waiting(pending: str) -> list[dict[str, Any]]:
    """The messages waiting for the follower's choice (one JSON object as written before, or a list)."""
    if not pending:
        return []
    try:
        found = json.loads(pending)
    except ValueError:
        return []
    return [found] if isinstance(found, dict) else [m for m in found if isinstance(m, dict)]


def _pick(msg: Incoming, entries: list[SchoolEntry]) -> SchoolEntry | None:
    answer = msg.text.strip()
    if answer.isdigit() and 1 <= int(answer) <= len(entries):
        return entries[int(answer) - 1]
    return next((e for e in entries if answer in (e.name, e.slug)), None)


def _bind_code(msg: Incoming) -> str:
    """The bind code a message carries (绑定 CODE, or a bind:CODE QR scene), upper-cased; else ""."""
    if msg.scene.startswith("bind:"):
        return CODE_NOISE.sub("", msg.scene.removeprefix("bind:")).upper()
    found = BIND_TEXT.match(msg.text or "")
    return CODE_NOISE.sub("", found[1]).upper() if found else ""


def webhook_path(services: Services) -> str:
    """Where WeChat posts a school's messages: `/wechat/<slug>` for a school with its own account, else `/wechat`."""
    slug = services.settings.school
    if slug and County.of(services).school(slug).own_account:
        return f"/wechat/{slug}"
    return "/wechat"


def report_webhooks(county: County, transport: Any) -> tuple[Any, Callable[[str], Any]]:
    """For a fake WeChat (`houqin serve`'s own, `houqin fake-wechat --webhook`): where it reports template
    sends — the default account's /wechat, and a resolver for any other appid: the /wechat/<slug> of the
    school with that account of its own, signed with its token and key (None for an appid no school has).
    The resolver reads the county's schools when the fake asks, so a school added while both run
    (`houqin school add`) gets its reports without a restart."""
    from bot.wechat.fake import Webhook

    s = county.default.settings
    return Webhook(s.wechat_token, s.wechat_appid, transport, s.wechat_aes_key), partial(_school_webhook, county,
                                                                                          transport)


def _school_webhook(county: County, transport: Any, appid: str) -> Any:
    from bot.wechat.fake import Webhook

    for entry in county.schools():
        if entry.own_account and entry.appid == appid:
            s = county.services(entry.slug).settings
            return Webhook(s.wechat_token, s.wechat_appid, transport, s.wechat_aes_key, f"/wechat/{entry.slug}")
    return None
