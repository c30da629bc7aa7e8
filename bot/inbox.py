"""Every inbound message: stored, de-duplicated, dispatched, answered, in one transaction.

The message row is written first; the handler runs inside a savepoint, so a handler bug rolls back
only the handler's work and the message (with the apology it got) is still stored. The row's
unique de-duplication key makes WeChat's retries — even concurrent ones on other workers — wait
for the first copy and get the same reply, handled exactly once.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.config import Settings
from bot.engine import Context, Engine, Incoming
from bot.outbox import Outbox
from models import Binding, InboundMessage, utcnow

log = logging.getLogger(__name__)

APOLOGY = "抱歉，系统出了点问题，你的消息已记录，后勤处会尽快处理。请稍后再试。"


def _fit(column: str, value: str) -> str:
    """`value` cut to its column's length (an unknown future event may have a long name; the payload
    keeps it whole), so that storing a message never fails."""
    length = getattr(InboundMessage.__table__.c[column].type, "length", None)
    return value[:length] if length else value


_INSERT = insert(InboundMessage).returning(InboundMessage.id)
_UPDATE = update(InboundMessage).where(InboundMessage.id == bindparam("row_id"))


class Inbox:
    def __init__(self, factory: sessionmaker[Session], engine: Engine, settings: Settings,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.factory = factory
        self.engine = engine
        self.settings = settings
        self.clock = clock

    def handle(self, msg: Incoming) -> str:
        """Store and answer one message; a retry gets the first copy's reply."""
        now = self.clock()
        try:
            with self.factory() as db, db.begin():
                # Core statements for our own row: the ORM's unit of work costs more than the rest
                # of the transaction's SQL together. A retry of a stored message fails here, on the
                # unique key.
                conn = db.connection()
                row_id = conn.execute(_INSERT, {
                    "dedup_key": msg.dedup_key, "openid": _fit("openid", msg.openid),
                    "msg_type": _fit("msg_type", msg.msg_type), "event": _fit("event", msg.event),
                    "content": msg.text, "payload": msg.raw, "received_at": now,
                }).scalar_one()
                error = None
                try:
                    with db.begin_nested():
                        text = self._dispatch(db, msg, now)
                    status = "handled"
                except Exception:  # noqa: BLE001 - a handler bug: roll back its work, keep the message
                    log.exception("handler failed for %s from %s", msg.dedup_key, msg.openid)
                    text, status, error = APOLOGY, "failed", traceback.format_exc(limit=20)
                conn.execute(_UPDATE, {"row_id": row_id, "status": status, "reply": text, "error": error,
                                       "handled_at": self.clock()})
                return text
        except IntegrityError:
            return self._earlier_reply(msg.dedup_key)

    def _dispatch(self, db: Session, msg: Incoming, now: datetime) -> str:
        binding = db.get(Binding, msg.openid)
        if binding is not None and msg.event != "unsubscribe" and not (binding.subscribed and binding.reachable):
            binding.subscribed = binding.reachable = True  # they are writing to us, so they follow us
        ctx = Context(db=db, openid=msg.openid, binding=binding, now=now, settings=self.settings,
                      outbox=Outbox(db, self.settings, now))
        return self.engine.dispatch(msg, ctx).text

    def _earlier_reply(self, key: str) -> str:
        """The reply the first copy got; waits briefly if it is still being handled elsewhere."""
        deadline = time.monotonic() + self.settings.retry_wait_seconds
        while True:
            with self.factory() as db:
                row = db.scalar(select(InboundMessage).where(InboundMessage.dedup_key == key))
                if row is not None and row.reply is not None:
                    return row.reply
            if time.monotonic() >= deadline:
                return ""
            time.sleep(0.05)
