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
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bot.services import Services
from models import CountyCode, CountySchool, SchoolSetting
from models.county import DEFAULT_SLUG

SLUG_PATTERN = re.compile(r"[a-z][a-z0-9]{1,29}")
TEMPLATES_SETTING = "templates"  # a school's own HOUQIN_TEMPLATES, in its school_settings
BAD_SLUG = "学校代号「{slug}」不可用：请用 2–30 个小写字母或数字、以字母开头（例如 beicheng）"
SLUG_TAKEN = "学校代号「{slug}」已经存在"
UNKNOWN_SCHOOL = "没有代号为「{slug}」的学校；已有：{known}"
NEEDS_ALL = "本校公众号需同时给出 --appid、--token 和 --secret（--aes-key 可选）"
DEFAULT_NAME = "本校"
SCHOOL_URL_PREFIX = "/s"  # a non-default school's pages: /s/<slug>/p/<token>, /s/<slug>/menu/…


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
        self.env_templates = default.settings.templates  # HOUQIN_TEMPLATES, before a school's own
        apply_school_templates(default)

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
            self._base_schema = self.default.schema
            if self._base_schema is None:
                with engine.connect() as conn:
                    self._base_schema = str(conn.execute(text("SELECT current_schema()")).scalar_one())
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
        services = Services.from_settings(settings, schema=schema)
        services.clock = self.default.clock
        services.api_base = self.default.api_base
        if entry.shared:
            # one access token per appid: a school on the shared account uses the default's store
            services.__dict__["token_store"] = self.default.token_store
            services.__dict__["nonces"] = self.default.nonces
        apply_school_templates(services)
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
        services = self.services(slug)
        upgrade(services.db_engine)
        return self.school(slug)

    def dispose(self) -> None:
        """Close every school's connections (not the default's: its owner closes it)."""
        for slug, services in list(self._services.items()):
            if slug != DEFAULT_SLUG:
                services.db_engine.dispose()

    # -- bind codes across schools --------------------------------------------------------------
    def claim_code(self, slug: str, code: str, db: Session | None = None) -> bool:
        """Record that `slug` issued `code`; False if another school holds it (then draw another).
        `db`: the default school's own session, which already holds the main namespace."""
        if db is not None:
            if db.get(CountyCode, code) is not None:
                return False
            db.add(CountyCode(code=code, slug=slug, created_at=self.default.now()))
            db.flush()
            return True
        try:
            with self.default.factory() as main, main.begin():
                if main.get(CountyCode, code) is not None:
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


def school_templates(db: Session) -> str:
    """The school's own HOUQIN_TEMPLATES (JSON) set with `houqin templates set`, or ""."""
    row = db.get(SchoolSetting, TEMPLATES_SETTING)
    return row.value if row is not None else ""


def apply_school_templates(services: Services) -> None:
    """Overlay the school's own template ids (stored in its settings) on the environment's default."""
    from bot.wechat.templates import parse_templates

    try:
        with services.read_factory() as db:
            raw = school_templates(db)
    except SQLAlchemyError:
        return  # not migrated yet: the environment's mapping
    if raw:
        services.settings = replace(services.settings, templates=parse_templates(raw))


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
