"""Engine, sessions and migrations. One session per request or job, managed here, never in handlers."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from bot.private import create_private_file

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
SQLITE_BUSY_SECONDS = 30.0
# PostgreSQL: give up connecting after this long (libpq's minimum), so that a request finds out
# quickly that the database is unreachable; `?connect_timeout=N` in DATABASE_URL overrides it.
PG_CONNECT_TIMEOUT = 2


class _QueuedSQLiteConnection(sqlite3.Connection):
    """A SQLite connection whose write transactions queue on an advisory lock file.

    SQLite's own busy handler makes a writer that finds the database locked sleep 1, 2, 5, 10, 15...
    ms before it looks again, so with several processes writing most of the waiting is spent asleep
    after the lock is already free. Writers here first take `<db>-writer.lock` (polled every 50 to
    200 µs), then BEGIN IMMEDIATE; the lock is let go right after COMMIT or ROLLBACK. SQLite's lock
    stays the real guard (the file only orders our own writers); a writer that waits longer than
    SQLITE_BUSY_SECONDS gets "database is locked", as it would from SQLite.
    """

    writer_lock: int | None = None  # file descriptor, set on connect
    holds_lock = False
    query_only = False  # PRAGMA query_only, as last set on this connection

    def set_query_only(self, on: bool) -> None:
        """Refuse (or allow again) writes on this connection; a pragma only when it changes."""
        if self.query_only != on:
            self.execute(f"PRAGMA query_only={int(on)}")
            self.query_only = on

    def queue_for_write(self, wait: float = SQLITE_BUSY_SECONDS) -> None:
        if self.writer_lock is None:
            return
        deadline = time.monotonic() + wait
        delay = 0.00005
        while True:
            try:
                fcntl.flock(self.writer_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.holds_lock = True
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise sqlite3.OperationalError("database is locked (waited for the writer queue)") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.0002)

    def leave_queue(self) -> None:
        if self.holds_lock and self.writer_lock is not None:
            self.holds_lock = False
            fcntl.flock(self.writer_lock, fcntl.LOCK_UN)

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.leave_queue()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.leave_queue()

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self.writer_lock is not None:
                os.close(self.writer_lock)  # also releases the lock
                self.writer_lock = None


def make_engine(url: str, schema: str | None = None, **kwargs: Any) -> Engine:
    """An engine with the settings each backend needs for many concurrent writers.

    SQLite: WAL, a busy timeout and foreign keys; a connection with the execution option
    `houqin_write_wait` (seconds) waits at most that long in the writer queue. A connection with
    `houqin_read_only` (`read_only_engine`) begins a deferred transaction instead: it reads a snapshot,
    never queues behind a writer nor holds one up (WAL lets both run), and any write on it fails
    ("attempt to write a readonly database"). PostgreSQL: a short
    connect timeout and an optional schema on the search path (tests use a schema of their own per run).
    """
    if url.startswith("sqlite"):
        lock_file: Path | None = None
        if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
            db_file = Path(url.removeprefix("sqlite:///").split("?", 1)[0])
            create_private_file(db_file)  # SQLite would create it world-readable; its -wal and -shm follow its mode
            lock_file = db_file.with_name(db_file.name + "-writer.lock")
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_SECONDS, "check_same_thread": False,
                                                  "factory": _QueuedSQLiteConnection}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # let SQLAlchemy's begin() emit BEGIN
            if lock_file is not None:
                with suppress(OSError):  # a read-only directory: no queue, SQLite's busy timeout alone
                    dbapi_conn.writer_lock = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Take the write lock at the start so concurrent writers queue instead of failing
            # with "database is locked" when a read transaction tries to upgrade.
            # Raised here, outside SQLAlchemy's own handling, a driver error would arrive unwrapped:
            # wrap it, so callers see the OperationalError ("database is locked") they expect.
            dbapi_conn = conn.connection.dbapi_connection
            if conn.get_execution_options().get("houqin_read_only"):
                dbapi_conn.set_query_only(True)
                dbapi_conn.execute("BEGIN DEFERRED")
                return
            dbapi_conn.set_query_only(False)
            try:
                dbapi_conn.queue_for_write(conn.get_execution_options().get("houqin_write_wait", SQLITE_BUSY_SECONDS))
            except sqlite3.OperationalError as exc:
                raise OperationalError("BEGIN IMMEDIATE", None, exc) from exc
            try:
                dbapi_conn.execute("BEGIN IMMEDIATE")  # on the driver: nothing to log or convert
            except BaseException as exc:
                dbapi_conn.leave_queue()
                if isinstance(exc, sqlite3.OperationalError):
                    raise OperationalError("BEGIN IMMEDIATE", None, exc) from exc
                raise

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    connect_args: dict[str, Any] = {}
    if "connect_timeout=" not in url:
        connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT
    if schema:
        connect_args["options"] = f"-csearch_path={schema}"
    # No ping per checkout (a round trip per request): after a database restart the first request
    # on a stale connection fails, the pool is invalidated, and WeChat's retry finds a fresh one.
    kwargs.setdefault("pool_recycle", 1800)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    engine = create_engine(url, connect_args=connect_args, **kwargs)

    @event.listens_for(engine, "begin")
    def _pg_search_path(conn: Any) -> None:
        # text SQL of a school of a county (the migrations, `search_path_engine`): this transaction's
        # unqualified names are the school's
        school_schema = conn.get_execution_options().get(SEARCH_PATH)
        if school_schema:
            conn.connection.dbapi_connection.execute(f'SET LOCAL search_path TO "{school_schema}"')

    return engine


SCHEMA = "houqin_schema"  # execution option: the PostgreSQL schema of a county's school (schema_engine)
SEARCH_PATH = "houqin_search_path"  # execution option: each transaction SETs its search_path to this


def schema_engine(engine: Engine, schema: str) -> Engine:
    """PostgreSQL: the same engine — the same pool — with every statement naming the school's tables in
    `schema` (SQLAlchemy's `schema_translate_map`). A county's schools share one pool per process this
    way, instead of a pool each (twenty schools would hold twenty pools' connections per process), and
    no transaction pays a `SET search_path` round trip; each school's statements are texts of their own,
    so PostgreSQL keeps a prepared plan per school instead of re-planning one whenever the school changes.
    Text SQL is not translated: `search_path_engine` gives it the school's search path."""
    return engine.execution_options(schema_translate_map={None: schema}, **{SCHEMA: schema})


def search_path_engine(engine: Engine) -> Engine:
    """For text SQL (the migrations): a school's engine whose transactions begin with `SET LOCAL
    search_path` to its schema, statements untranslated; any other engine as it is."""
    schema = engine.get_execution_options().get(SCHEMA)
    if not schema:
        return engine
    return engine.execution_options(schema_translate_map=None, **{SEARCH_PATH: schema})


def engine_schema(engine: Engine) -> str:
    """The PostgreSQL schema `engine`'s tables are in: a school's (schema_engine), else the search path's."""
    schema = engine.get_execution_options().get(SCHEMA)
    if schema:
        return str(schema)
    with engine.connect() as conn:
        return str(conn.execute(text("SELECT current_schema()")).scalar_one())


def read_only_engine(engine: Engine) -> Engine:
    """The same engine (and pool) for read-only work: exports, console and public pages. On SQLite its
    transactions take no writer lock, so a long export cannot hold up the webhook's writes; on both
    backends a write through it fails."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(houqin_read_only=True, postgresql_readonly=True)
    return engine.execution_options(houqin_read_only=True)


MEMO = "houqin_memo"  # Session.info: what this transaction read and may be asked again


def memo(db: Session) -> dict[str, Any]:
    """A place for what one transaction read and would otherwise read again (the repair category map,
    settings found unset): it lives as long as the session's outermost transaction, like the rows of
    its identity map, so a change committed elsewhere is seen by the next transaction."""
    found: dict[str, Any] = db.info.setdefault(MEMO, {})
    return found


@event.listens_for(Session, "after_transaction_end")
def _forget_memo(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(MEMO, None)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits on success and rolls back on any exception."""
    with factory() as session, session.begin():
        yield session


def alembic_config(engine: Engine) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to `revision` through the Alembic migrations. A database already at the head
    is only read, so a command starting beside a busy webhook does not queue for the SQLite writer lock."""
    engine = search_path_engine(engine)
    cfg = alembic_config(engine)
    if revision == "head":
        with read_only_engine(engine).connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
        if current == set(ScriptDirectory.from_config(cfg).get_heads()):
            return
    command.upgrade(cfg, revision)
