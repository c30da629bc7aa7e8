"""The long-lived objects a process needs, built once from Settings and shared by web, worker, scheduler."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property

from sqlalchemy import Engine as SqlEngine
from sqlalchemy.orm import Session, sessionmaker

from bot.config import Settings
from bot.db import make_engine, make_sessionmaker, read_only_engine
from bot.engine import Engine
from bot.inbox import Inbox
from bot.school import StoredTemplates, environment_templates, school_templates, templates_now
from bot.spool import Spool
from bot.wechat.gateway import Codec, TokenStore, WeChatApi
from bot.wechat.menu import watch_roles
from bot.wechat.nonces import DatabaseNonceLedger, NonceLedger, RedisNonceLedger
from bot.wechat.templates import Template
from bot.wechat.tokens import DatabaseTokenStore, RedisTokenStore
from bot.worker import PushWorker, send_threads
from models import utcnow


@dataclass
class Services:
    settings: Settings
    db_engine: SqlEngine
    schema: str | None = field(default=None)
    clock: Callable[[], datetime] = field(default=utcnow)  # tests replace it to fix "now"
    # where the WeChat API is, asked when the client is first needed (the CLI's embedded lookup
    # of the fake that `houqin serve` started); None: settings.wechat_api_base
    api_base: Callable[[], str] | None = field(default=None)
    # paces the re-reads of what another process may change while this one runs (the school's template
    # ids); tests step it instead of sleeping
    monotonic: Callable[[], float] = field(default=time.monotonic)

    def __post_init__(self) -> None:
        # the school's template ids as stored now, for everything that holds these settings (bot.school)
        self.settings = replace(self.settings, templates=StoredTemplates(
            self._stored_templates, environment_templates(self.settings.templates), school=self.settings.school,
            clock=lambda: self.monotonic()))

    def now(self) -> datetime:
        return self.clock()

    def _stored_templates(self) -> str:
        with self.read_factory() as db:
            return school_templates(db)

    def templates_now(self, fresh: bool = False) -> Mapping[str, Template]:
        """The school's template ids as stored now (`houqin templates set` in another process reaches this
        one within TEMPLATES_TTL seconds; `fresh`: read them again at once): the one way every process —
        web, worker, scheduler — reads them."""
        return templates_now(self.settings.templates, fresh)

    @classmethod
    def from_settings(cls, settings: Settings, schema: str | None = None) -> Services:
        pool: dict[str, int] = {}
        if settings.db_pool and not settings.database_url.startswith("sqlite"):
            pool = {"pool_size": settings.db_pool, "max_overflow": 0}  # a bound, whatever the peak
        return cls(settings, make_engine(settings.database_url, schema=schema, **pool), schema)

    @cached_property
    def factory(self) -> sessionmaker[Session]:
        watch_roles()  # a follower's menu follows their binding and roles (bot.wechat.menu)
        return make_sessionmaker(self.db_engine)

    @cached_property
    def read_factory(self) -> sessionmaker[Session]:
        """Sessions for read-only work (exports, console pages, the menu and push pages): on SQLite they
        read a snapshot without the writer lock, so they never stall the webhook; a write through them fails."""
        return make_sessionmaker(read_only_engine(self.db_engine))

    @cached_property
    def engine(self) -> Engine:
        from handlers import CAPABILITIES

        return Engine(CAPABILITIES)

    @cached_property
    def codec(self) -> Codec:
        s = self.settings
        return Codec(s.wechat_token, s.wechat_appid, s.wechat_aes_key, s.wechat_aes_key_previous,
                     s.timestamp_tolerance_seconds, accept_plaintext=s.accept_plaintext)

    @cached_property
    def nonces(self) -> NonceLedger:
        s = self.settings
        if s.redis_url:
            return RedisNonceLedger(s.redis_url, s.wechat_appid, s.timestamp_tolerance_seconds)
        return DatabaseNonceLedger(self.db_engine, s.timestamp_tolerance_seconds, s.webhook_db_wait_seconds)

    @cached_property
    def spool(self) -> Spool:
        return Spool(self.settings.school_dir / "spool")

    @cached_property
    def inbox(self) -> Inbox:
        return Inbox(self.db_engine, self.factory, self.engine, self.settings, clock=self.now, spool=self.spool,
                     nonces=self.nonces)

    @cached_property
    def token_store(self) -> TokenStore:
        s = self.settings
        if s.redis_url:
            return RedisTokenStore(s.redis_url, s.wechat_appid)
        return DatabaseTokenStore(self.factory, s.wechat_appid)

    @cached_property
    def api(self) -> WeChatApi:
        s = self.settings
        base = self.api_base() if self.api_base is not None else s.wechat_api_base
        return WeChatApi(base, s.wechat_appid, s.wechat_secret, self.token_store,
                         connections=send_threads(s))

    def worker(self) -> PushWorker:
        # the account's daily template count lives beside its access token: for a school on the shared
        # county account, in the default school's namespace, so all of them count against one quota
        store = self.token_store
        quota = store.factory if isinstance(store, DatabaseTokenStore) else None
        return PushWorker(self.factory, self.settings, self.api, clock=self.now, quota_factory=quota)
