"""Replay protection for the webhook: a signed request's (timestamp, nonce) pair is accepted once.

The URL signature covers the timestamp and nonce, and the timestamp must be within the window
(`timestamp_tolerance_seconds`), so a pair needs remembering only while its timestamp is inside it.
The pairs live where every web process sees them: Redis when `REDIS_URL` is set (a key that expires),
else the `seen_nonces` table — one INSERT … ON CONFLICT DO NOTHING a request, and each process
deletes the pairs that left the window at most once a minute. On PostgreSQL those statements run in
autocommit (each is atomic on its own): no BEGIN and COMMIT round trips around them, and for a school of
a county (bot.db.schema_engine) the table is named with its schema instead of a `SET LOCAL search_path`
— three round trips fewer per webhook request.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable

from sqlalchemy import Engine as SqlEngine
from sqlalchemy import delete

from bot.inbox import UNREACHABLE
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

    def __init__(self, tolerance: int) -> None:
        self.tolerance = tolerance

    def claim(self, timestamp: int, nonce: str) -> bool:
        raise NotImplementedError


class DatabaseNonceLedger(NonceLedger):
    def __init__(self, db_engine: SqlEngine, tolerance: int, write_wait: float,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(tolerance)
        self.writer = db_engine.execution_options(houqin_write_wait=write_wait)
        if db_engine.dialect.name == "postgresql":
            schema = db_engine.get_execution_options().get("houqin_schema")
            self.writer = self.writer.execution_options(
                isolation_level="AUTOCOMMIT", houqin_schema=None,
                **({"schema_translate_map": {None: schema}} if schema else {}))
        self.clock = clock
        self._insert = dialect_insert(db_engine)(SeenNonce).on_conflict_do_nothing().returning(SeenNonce.nonce)
        self._next_purge = 0.0

    def claim(self, timestamp: int, nonce: str) -> bool:
        try:
            with self.writer.begin() as conn:
                if time.monotonic() >= self._next_purge:
                    self._next_purge = time.monotonic() + PURGE_EVERY_SECONDS
                    conn.execute(delete(SeenNonce).where(SeenNonce.timestamp < int(self.clock()) - self.tolerance))
                return conn.execute(self._insert, {"timestamp": timestamp, "nonce": _stored(nonce)}).first() is not None
        except UNREACHABLE as exc:
            raise LedgerUnavailable(type(exc).__name__) from exc


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
