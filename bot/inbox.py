"""Every inbound message: stored, de-duplicated, dispatched, answered, in one transaction.

The message row is written first, by an INSERT that also returns who sent it (`SENDER_COLUMNS`),
and the handler's work joins its transaction. A handler bug rolls the whole transaction back, and
the message is stored again, with the apology it got and the traceback, in a fresh one. The row's
unique de-duplication key makes WeChat's retries — even concurrent ones on other workers — wait
for the first copy and get the same reply, handled exactly once.

When the database cannot be reached the message is kept in the spool (bot.spool) and gets `BUSY`;
each request first replays what the spool holds (for a moment at most), and a message whose sender
still has one waiting there is spooled behind it, so a sender's messages are handled in the order
they came. A replayed message's reply is pushed to its sender.

The request's (timestamp, nonce) — its `Stamp` — is claimed in the same transaction as its message is
stored (bot.wechat.nonces): a replayed request is refused (`Replayed`) and leaves nothing behind."""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import (
    CTE,
    Connection,
    Insert,
    Row,
    String,
    bindparam,
    exists,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy import Engine as SqlEngine
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from bot.config import Settings
from bot.engine import SENDER_COLUMNS, Context, Engine, Incoming, Sender
from bot.outbox import queue_reply
from bot.spool import DatabaseUnavailable, Spool
from models import Binding, InboundMessage, utcnow

if TYPE_CHECKING:
    from bot.wechat.nonces import NonceLedger

log = logging.getLogger(__name__)

APOLOGY = "抱歉，系统出了点问题，你的消息已记录，后勤处会尽快处理。请稍后再试。"
BUSY = "系统繁忙，你的消息已收到，稍后处理并回复你。"

# what the log keeps of a private message (an anonymous suggestion, a survey answer) and of its reply
REDACTED = "〔匿名内容，不记录〕"
PRIVATE_REPLAYED = "你稍早发送的匿名内容已处理。匿名意见的编号和答复请发送「我的意见」查看。"

UNREACHABLE = (OperationalError, InterfaceError, PoolTimeout)  # the database, not the message, is at fault
REPLAY_BUDGET_SECONDS = 0.5  # a request replays the spool at most this long before its own message


class Stamp(NamedTuple):
    """A signed request's (timestamp, nonce): accepted once (bot.wechat.nonces)."""

    timestamp: int
    nonce: str


class Replayed(Exception):
    """The request's Stamp was used before: refused, and nothing of it stored."""


_LENGTHS: dict[str, int] = {c.name: getattr(c.type, "length", None) or 0 for c in InboundMessage.__table__.c}


def _fit(column: str, value: str) -> str:
    """`value` cut to its column's length (an unknown future event may have a long name; the payload
    keeps it whole), so that storing a message never fails."""
    length = _LENGTHS.get(column)
    return value[:length] if length else value


_INSERT = insert(InboundMessage).returning(InboundMessage.id, *SENDER_COLUMNS)
_RECEIVED = InboundMessage.__table__.c.status.default.arg  # type: ignore[union-attr]
_ROW = ("dedup_key", "openid", "msg_type", "event", "content", "payload", "received_at")  # Inbox._row's keys


def _insert_if_claimed(claimed: CTE) -> Insert:
    """_INSERT as `WITH claimed AS (…) INSERT … SELECT <the row> WHERE EXISTS (SELECT FROM claimed)`:
    the request's nonce claimed and its message stored in one statement, or neither (a replay: no row)."""
    table = InboundMessage.__table__
    # the column defaults a VALUES insert would add are written out: from_select leaves them unbound
    row = select(*(bindparam(name, type_=table.c[name].type) for name in _ROW), literal(_RECEIVED, String))
    return (insert(InboundMessage).from_select([*_ROW, "status"], row.where(exists(select(*claimed.c))))
            .add_cte(claimed).returning(InboundMessage.id, *SENDER_COLUMNS))

_UPDATE = update(InboundMessage).where(InboundMessage.id == bindparam("row_id"))
_REPLY = select(InboundMessage.reply).where(InboundMessage.dedup_key == bindparam("key"))
# following again (or writing after WeChat refused them) puts the follower's menu due, as bot.wechat.menu's
# listener does for the ORM's writes: this Core UPDATE runs before the subscribe handler sees the binding
_FOLLOWING = (update(Binding).where(Binding.openid == bindparam("key"))
              .values(subscribed=True, reachable=True, menu_due=True, menu_version=Binding.menu_version + 1))


class Inbox:
    def __init__(self, db_engine: SqlEngine, factory: sessionmaker[Session], engine: Engine, settings: Settings,
                 clock: Callable[[], datetime] = utcnow, spool: Spool | None = None,
                 nonces: NonceLedger | None = None) -> None:
        self.db_engine = db_engine
        self.nonces = nonces  # where a request's Stamp is claimed (handle(msg, stamp))
        self._insert_claiming = _insert_if_claimed(nonces.cte) if nonces is not None and nonces.cte is not None else None
        # the webhook's own writes wait briefly for SQLite's writer queue (a request must be answered)
        self.writer = db_engine.execution_options(houqin_write_wait=settings.webhook_db_wait_seconds)
        self.factory = factory
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.spool = spool or Spool(settings.school_dir / "spool")

    def handle(self, msg: Incoming, stamp: Stamp | None = None) -> str:
        """Store and answer one message; a retry gets the first copy's reply. With the database
        unreachable the message is kept in the spool and gets `BUSY`. `stamp`: the request's, claimed
        in the transaction that stores the message (one transaction, not two, per request); Replayed if
        it was used before."""
        now = self.clock()
        try:
            if self._replay_first(msg):
                return self.process(msg, now, stamp=stamp)
        except DatabaseUnavailable:
            pass
        if stamp is not None and self.nonces is not None and not self.claim_alone(stamp):
            raise Replayed
        self.spool.keep(msg, now)
        return BUSY

    def claim_alone(self, stamp: Stamp) -> bool:
        """The stamp claimed on its own transaction: for a message spooled instead of stored (the ledger
        may be reachable when the message's row is not, or the sender's earlier messages wait in the
        spool), and for a shared account's message before it is routed to a school."""
        assert self.nonces is not None
        return self.nonces.first_use(stamp)

    def _replay_first(self, msg: Incoming) -> bool:
        """Replay the spool for a moment; False if the sender's earlier messages still wait in it
        (another process is replaying them), so this one must queue behind them."""
        try:
            self.spool.replay(self.replayed, budget=REPLAY_BUDGET_SECONDS)
        except DatabaseUnavailable:
            raise
        except Exception:  # noqa: BLE001 - a spool fault must not stop the webhook answering
            log.exception("replaying the spool failed")
        return not self.spool.holds(msg.openid)

    def replayed(self, msg: Incoming, received_at: datetime) -> str:
        """Handle a message from the spool as of its arrival; its reply is pushed to the sender."""
        return self.process(msg, received_at, push_reply=True)

    def replay(self) -> int:
        """Replay everything the spool holds (`houqin spool replay`, the background tick)."""
        return self.spool.replay(self.replayed)

    def process(self, msg: Incoming, now: datetime, *, push_reply: bool = False, stamp: Stamp | None = None) -> str:
        """Store and handle `msg` as received at `now`; raises DatabaseUnavailable if it could not
        be stored, Replayed if `stamp` was used before. `push_reply`: also queue the reply (unless
        empty) in the same transaction."""
        stored = False
        try:
            # Core statements on one connection: the ORM session is opened only if a step asks for
            # it. A retry of a stored message fails on the unique key and waits for the first
            # copy's reply.
            with self.writer.begin() as conn:
                row = self._store(conn, msg, now, stamp)
                stored = True
                text = self._dispatch(conn, msg, Sender.from_row(msg.openid, row, now), now)
                kept = {"reply": REDACTED if text else text, **self._redacted(msg)} if msg.private else {"reply": text}
                conn.execute(_UPDATE, {"row_id": row.id, "status": "handled", "error": None,
                                       "handled_at": self.clock(), **kept})
                if push_reply and text:  # a private reply is not written into a push that names its sender
                    queue_reply(conn, msg.openid, PRIVATE_REPLAYED if msg.private else text, self.clock())
                return text
        except Replayed:
            raise
        except IntegrityError:
            if not stored:
                return self._earlier_reply(msg.dedup_key)
            return self._failed(msg, now, push_reply)
        except UNREACHABLE as exc:
            if not stored:
                raise DatabaseUnavailable(str(exc)) from exc
            return self._failed(msg, now, push_reply)
        except Exception:  # noqa: BLE001 - a handler bug: its work is rolled back, the message is kept
            return self._failed(msg, now, push_reply)

    def _store(self, conn: Connection, msg: Incoming, now: datetime, stamp: Stamp | None) -> Row[Any]:
        """The message's row (with its sender's columns), the stamp claimed with it; Replayed if used."""
        params = {**self._row(msg, now), "sender": msg.openid}
        if stamp is None or self.nonces is None:
            return conn.execute(_INSERT, params).one()
        if self._insert_claiming is not None:
            row = conn.execute(self._insert_claiming, {**params, **self.nonces.cte_params(conn, stamp)}).first()
        elif self.nonces.claim_within(conn, stamp):
            row = conn.execute(_INSERT, params).one()
        else:
            row = None
        if row is None:
            raise Replayed
        return row

    def record(self, msg: Incoming, reply: str, now: datetime) -> bool:
        """Keep a message answered before any handler saw it (a shared account's "which school?"
        answer) in the log, as handled with `reply`; False if it is there already (WeChat's retry)."""
        try:
            with self.writer.begin() as conn:
                conn.execute(insert(InboundMessage), {**self._row(msg, now), "status": "handled",
                                                      "reply": reply, "handled_at": self.clock()})
        except IntegrityError:
            return False
        return True

    def _row(self, msg: Incoming, now: datetime) -> dict[str, object]:
        return {"dedup_key": msg.dedup_key, "openid": _fit("openid", msg.openid),
                "msg_type": _fit("msg_type", msg.msg_type), "event": _fit("event", msg.event),
                "content": msg.text, "payload": msg.raw, "received_at": now,
                **(self._redacted(msg) if msg.private else {})}

    @staticmethod
    def _redacted(msg: Incoming) -> dict[str, object]:
        """A private message's row: that it arrived (sender, type, time), not what it said."""
        return {"content": REDACTED, "payload": {"MsgType": msg.msg_type, "redacted": True}}

    def _failed(self, msg: Incoming, now: datetime, push_reply: bool = False) -> str:
        """After a handler bug rolled everything back: store the message again with the apology it
        gets and the traceback (a fresh transaction, so nothing of the handler's work survives).
        If the database went away meanwhile, DatabaseUnavailable: the message goes to the spool."""
        log.exception("handler failed for %s from %s", msg.dedup_key, msg.openid)
        error = traceback.format_exc(limit=20)
        try:
            with self.writer.begin() as conn:
                conn.execute(insert(InboundMessage), {
                    **self._row(msg, now), "status": "failed", "reply": APOLOGY,
                    "error": REDACTED if msg.private else error,
                    "handled_at": self.clock()})
                if push_reply:
                    queue_reply(conn, msg.openid, APOLOGY, self.clock())
        except IntegrityError:  # a retry got in meanwhile: it has the answer
            return self._earlier_reply(msg.dedup_key)
        except UNREACHABLE as exc:
            raise DatabaseUnavailable(str(exc)) from exc
        return APOLOGY

    def _dispatch(self, conn: Connection, msg: Incoming, sender: Sender, now: datetime) -> str:
        if sender.known and not sender.following and msg.event not in ("unsubscribe", "templatesendjobfinish"):
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
