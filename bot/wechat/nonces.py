"""Replay protection for the webhook: a signed request's (timestamp, nonce) pair is accepted once.

The URL signature covers the timestamp and nonce, and the timestamp must be within the window
(`timestamp_tolerance_seconds`), so a pair needs remembering only while its timestamp is inside it.
The pairs live where every web process sees them: Redis when `REDIS_URL` is set (a key that expires),
else the `seen_nonces` table — one INSERT … ON CONFLICT DO NOTHING a request, and each process
deletes the pairs that left the window at most once a minute. The webhook claims a pair in the
transaction that stores the request's message (bot.inbox): on PostgreSQL as a CTE of the message's
INSERT (`cte`), on SQLite as a statement before it (`claim_within`) — one transaction per request, not
two, and the pair is kept exactly when the message is. Claimed alone (a shared account's message
before it is routed, a spooled one), on PostgreSQL the statement runs in autocommit (it is atomic on its
own); for a school of a county its table is named with the school's schema (bot.db.schema_engine).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable

from sqlalchemy import CTE, Connection, bindparam, delete
from sqlalchemy import Engine as SqlEngine

from bot.inbox import UNREACHABLE, Stamp
from bot.numbering import dialect_insert
from models import SeenNonce

log = logging.getLogger(__name__)

PURGE_EVERY_SECONDS = 60.0
_NONCE_LENGTH = SeenNonce.__table__.c.nonce.type.length  # type: ignore[attr-defined]


def _stored(nonce: str) -> str:
    """The nonce as kept: a long one (WeChat's are ten digits) by its digest, so it always fits."""
    return nonce if len(nonce) <= _NONCE_LENGTH else hashlib.sha256(nonce.encode()).hexdigest()[:_NONCE_LENGTH]


class LedgerUnavailable(RuntimeError):
    """The store of seen pairs could not be reached."""


class NonceLedger:
    """`claim(timestamp, nonce)` is True the first time a pair is seen, False for a replay."""

    in_database = False  # True: claim_within joins the transaction that stores the message
    # the claim as a data-modifying CTE of the message's INSERT (PostgreSQL): the inbox stores the
    # message only if the claim took (`WHERE EXISTS (SELECT FROM claimed)`), in one statement
    cte: CTE | None = None

    def __init__(self, tolerance: int) -> None:
        self.tolerance = tolerance

    def claim(self, timestamp: int, nonce: str) -> bool:
        raise NotImplementedError

    def cte_params(self, conn: Connection, stamp: Stamp) -> dict[str, object]:
        """The parameters of `cte` for this stamp (a ledger that has one)."""
        raise NotImplementedError

    def claim_within(self, conn: Connection, stamp: Stamp) -> bool:
        """`claim` as part of the transaction on `conn` that stores the request's message (bot.inbox):
        a ledger in that database claims the pair on it, so it is kept exactly when the message is;
        one elsewhere (Redis) claims on its own. With the ledger unreachable the request is let
        through (its MsgId still guards against doing it twice)."""
        return self.first_use(stamp)

    def first_use(self, stamp: Stamp) -> bool:
        """`claim` in a transaction of its own; True (let through) with the ledger unreachable."""
        try:
            return self.claim(*stamp)
        except LedgerUnavailable:
            log.warning("the nonce store is unreachable: replay check skipped")
            return True


class DatabaseNonceLedger(NonceLedger):
    in_database = True

    def __init__(self, db_engine: SqlEngine, tolerance: int, write_wait: float,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(tolerance)
        self.writer = db_engine.execution_options(houqin_write_wait=write_wait)
        if db_engine.dialect.name == "postgresql":
            self.writer = self.writer.execution_options(isolation_level="AUTOCOMMIT")
        self.clock = clock
        self._insert = (dialect_insert(db_engine)(SeenNonce)
                        .values(timestamp=bindparam("stamp_timestamp"), nonce=bindparam("stamp_nonce"))
                        .on_conflict_do_nothing().returning(SeenNonce.nonce))
        if db_engine.dialect.name == "postgresql":  # SQLite has no data-modifying CTEs
            self.cte = self._insert.cte("claimed")
        self._next_purge = 0.0

    def claim(self, timestamp: int, nonce: str) -> bool:
        try:
            with self.writer.begin() as conn:
                return self._claim(conn, timestamp, nonce)
        except UNREACHABLE as exc:
            raise LedgerUnavailable(type(exc).__name__) from exc

    def claim_within(self, conn: Connection, stamp: Stamp) -> bool:
        # the inbox's transaction: its connection's errors are the inbox's (the message is spooled)
        return self._claim(conn, *stamp)

    def cte_params(self, conn: Connection, stamp: Stamp) -> dict[str, object]:
        # pairs past the window purged first, when due
        self._purge(conn)
        return {"stamp_timestamp": stamp.timestamp, "stamp_nonce": _stored(stamp.nonce)}

    def _claim(self, conn: Connection, timestamp: int, nonce: str) -> bool:
        self._purge(conn)
        params = {"stamp_timestamp": timestamp, "stamp_nonce": _stored(nonce)}
        return conn.execute(self._insert, params).first() is not None

    def _purge(self, conn: Connection) -> None:
        if time.monotonic() >= self._next_purge:
            self._next_purge = time.monotonic() + PURGE_EVERY_SECONDS
            conn.execute(delete(SeenNonce).where(SeenNonce.timestamp < int(self.clock()) - self.tolerance))


class RedisNonceLedger(NonceLedger):
    def __init__(self, url: str, appid: str, tolerance: int) -> None:
        import redis

        super().__init__(tolerance)
        self.redis = redis.Redis.from_url(url)
        self.errors = redis.RedisError
        self.prefix = f"houqin:nonce:{appid}:"

    def claim(self, timestamp: int, nonce: str) -> bool:
        # the pair is inside the window for at most 2 × tolerance (a timestamp may run ahead of ours)
        key = f"{self.prefix}{timestamp}:{_stored(nonce)}"
        try:
            return bool(self.redis.set(key, "1", nx=True, ex=2 * self.tolerance + 1))
        except self.errors as exc:
            raise LedgerUnavailable(type(exc).__name__) from exc
