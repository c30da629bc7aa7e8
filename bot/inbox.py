"""Every inbound message: stored, de-duplicated, dispatched, answered, in one transaction.

The message row is written first, by an INSERT that also returns who sent it (`SENDER_COLUMNS`),
and the handler's work joins its transaction. A handler bug rolls the whole transaction back, and
the message is stored again, with the apology it got and the traceback, in a fresh one. The row's
unique de-duplication key makes WeChat's retries — even concurrent ones on other workers — wait
for the first copy and get the same reply, handled exactly once."""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy import Engine as SqlEngine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.config import Settings
from bot.engine import SENDER_COLUMNS, Context, Engine, Incoming, Sender
from models import Binding, InboundMessage, utcnow

log = logging.getLogger(__name__)

APOLOGY = "抱歉，系统出了点问题，你的消息已记录，后勤处会尽快处理。请稍后再试。"


_LENGTHS: dict[str, int] = {c.name: getattr(c.type, "length", None) or 0 for c in InboundMessage.__table__.c}


def _fit(column: str, value: str) -> str:
    """`value` cut to its column's length (an unknown future event may have a long name; the payload
    keeps it whole), so that storing a message never fails."""
    length = _LENGTHS.get(column)
    return value[:length] if length else value


_INSERT = insert(InboundMessage).returning(InboundMessage.id, *SENDER_COLUMNS)
_UPDATE = update(InboundMessage).where(InboundMessage.id == bindparam("row_id"))
_REPLY = select(InboundMessage.reply).where(InboundMessage.dedup_key == bindparam("key"))
_FOLLOWING = (update(Binding).where(Binding.openid == bindparam("key"))
              .values(subscribed=True, reachable=True))


class Inbox:
    def __init__(self, db_engine: SqlEngine, factory: sessionmaker[Session], engine: Engine, settings: Settings,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.db_engine = db_engine
        self.factory = factory
        self.engine = engine
        self.settings = settings
        self.clock = clock

    def handle(self, msg: Incoming) -> str:
        """Store and answer one message; a retry gets the first copy's reply."""
        now = self.clock()
        stored = False
        try:
            # Core statements on one connection: the ORM session is opened only if a step asks for
            # it. A retry of a stored message fails on the unique key and waits for the first
            # copy's reply.
            with self.db_engine.begin() as conn:
                row = conn.execute(_INSERT, {**self._row(msg, now), "sender": msg.openid}).one()
                stored = True
                text = self._dispatch(conn, msg, Sender.from_row(msg.openid, row, now), now)
                conn.execute(_UPDATE, {"row_id": row.id, "status": "handled", "reply": text, "error": None,
                                       "handled_at": self.clock()})
                return text
        except IntegrityError:
            if not stored:
                return self._earlier_reply(msg.dedup_key)
            return self._failed(msg, now)
        except Exception:  # noqa: BLE001 - a handler bug: its work is rolled back, the message is kept
            return self._failed(msg, now)

    def _row(self, msg: Incoming, now: datetime) -> dict[str, object]:
        return {"dedup_key": msg.dedup_key, "openid": _fit("openid", msg.openid),
                "msg_type": _fit("msg_type", msg.msg_type), "event": _fit("event", msg.event),
                "content": msg.text, "payload": msg.raw, "received_at": now}

    def _failed(self, msg: Incoming, now: datetime) -> str:
        """After a handler bug rolled everything back: store the message again with the apology it
        gets and the traceback (a fresh transaction, so nothing of the handler's work survives)."""
        log.exception("handler failed for %s from %s", msg.dedup_key, msg.openid)
        error = traceback.format_exc(limit=20)
        try:
            with self.db_engine.begin() as conn:
                conn.execute(insert(InboundMessage), {
                    **self._row(msg, now), "status": "failed", "reply": APOLOGY, "error": error,
                    "handled_at": self.clock()})
        except IntegrityError:  # a retry got in meanwhile: it has the answer
            return self._earlier_reply(msg.dedup_key)
        return APOLOGY

    def _dispatch(self, conn: Connection, msg: Incoming, sender: Sender, now: datetime) -> str:
        if sender.known and not sender.following and msg.event != "unsubscribe":
            conn.execute(_FOLLOWING, {"key": msg.openid})  # they are writing to us, so they follow us
        sessions: list[Session] = []

        def open_session() -> Session:  # joins this transaction; commit and rollback stay ours
            sessions.append(self.factory(bind=conn, join_transaction_mode="rollback_only"))
            return sessions[0]

        ctx = Context(conn=conn, sender=sender, now=now, settings=self.settings, open_session=open_session)
        try:
            text = self.engine.dispatch(msg, ctx).text
            for session in sessions:
                session.flush()
            return text
        finally:
            for session in sessions:
                session.close()

    def _earlier_reply(self, key: str) -> str:
        """The reply the first copy got; waits briefly if it is still being handled elsewhere."""
        deadline = time.monotonic() + self.settings.retry_wait_seconds
        while True:
            with self.db_engine.connect() as conn:
                reply = conn.scalar(_REPLY, {"key": key})
            if reply is not None:
                return reply
            if time.monotonic() >= deadline:
                return ""
            time.sleep(0.05)
