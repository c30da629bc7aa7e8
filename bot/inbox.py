"""Every inbound message: stored, de-duplicated, dispatched, answered, in one transaction.

The message row is written first and the handler's work joins its transaction; a handler bug rolls
the whole transaction back, and the message is stored again, with the apology it got and the
traceback, in a fresh one. The row's
unique de-duplication key makes WeChat's retries — even concurrent ones on other workers — wait
for the first copy and get the same reply, handled exactly once.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import String, bindparam, insert, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, sessionmaker

from bot.config import Settings
from bot.engine import Context, Engine, Incoming
from bot.outbox import Outbox
from models import Binding, ConversationState, InboundMessage, utcnow

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
        stored = False
        try:
            with self.factory() as db, db.begin():
                # Core statements for our own row: the ORM's unit of work costs more than the rest
                # of the transaction's SQL together. A retry of a stored message fails here, on the
                # unique key, and waits for the first copy's reply.
                conn = db.connection()
                row_id = conn.execute(_INSERT, self._row(msg, now)).scalar_one()
                stored = True
                text = self._dispatch(db, msg, now)
                conn.execute(_UPDATE, {"row_id": row_id, "status": "handled", "reply": text, "error": None,
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
            with self.factory() as db, db.begin():
                db.connection().execute(insert(InboundMessage), {
                    **self._row(msg, now), "status": "failed", "reply": APOLOGY, "error": error,
                    "handled_at": self.clock()})
        except IntegrityError:  # a retry got in meanwhile: it has the answer
            return self._earlier_reply(msg.dedup_key)
        return APOLOGY

    def _dispatch(self, db: Session, msg: Incoming, now: datetime) -> str:
        # the sender's binding (with the person) and conversation state in one round trip
        key = select(literal(msg.openid, String).label("openid")).subquery()
        binding, state = db.execute(
            select(Binding, ConversationState).select_from(key)
            .outerjoin(Binding, Binding.openid == key.c.openid)
            .outerjoin(ConversationState, ConversationState.openid == key.c.openid)
            .options(joinedload(Binding.person))
        ).one()
        if binding is not None and msg.event != "unsubscribe" and not (binding.subscribed and binding.reachable):
            binding.subscribed = binding.reachable = True  # they are writing to us, so they follow us
        ctx = Context(db=db, openid=msg.openid, binding=binding, now=now, settings=self.settings,
                      outbox=Outbox(db, self.settings, now))
        return self.engine.dispatch(msg, ctx, state).text

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
