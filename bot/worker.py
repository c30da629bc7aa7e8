"""The push worker: claims due deliveries, sends them, records the outcome.

Each delivery is claimed with a lease before it is sent, so any number of workers on any machines
share the outbox without double-sending; a worker that dies leaves only its in-flight sends to be
repeated when their lease runs out. An idle worker on PostgreSQL waits in LISTEN (`Wakeup`): a
delivery queued or set back to pending NOTIFYs at its commit (a trigger, migration 0026), so it goes
at once; it still looks now and then for deliveries due later (retries, the end of quiet hours).
Template sends are reserved from the account's daily quota (`TemplateQuota`) before WeChat is called;
past it, or when WeChat answers 45009, they wait for the account's next day. Channel: a template message when the push's kind has a
template, else a customer-service message while the recipient's 48-hour window is open and its
5-message budget lasts, else undeliverable with the reason.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, Integer, Table, and_, bindparam, func, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot.config import Settings
from bot.db import engine_schema
from bot.numbering import dialect_insert
from bot.outbox import ESCALATION_KIND, UNSUBSCRIBED, WINDOW_BUDGET, WINDOW_CLOSED, Outbox, page_url
from bot.outbox import windows as open_windows
from bot.push_kinds import push_fields
from bot.school import templates_now
from bot.wechat.gateway import UNREACHABLE, WINDOW_ERRORS, ApiError, WeChatApi, redact
from bot.wechat.templates import Template
from models import Binding, Delivery, DeliveryAlert, Person, Push, TemplateQuota, utcnow
from models.outbox import FAILED, PENDING, SENDING, SENT, UNDELIVERABLE

log = logging.getLogger(__name__)

RECORD_EVERY = 1.0  # seconds: run_forever writes finished sends at least this often (and with each claim)
# A customer-service message longer than this many characters ends with its page's link: a phone shows
# a long chat bubble folded, and the page keeps the text (and the ticket's or menu's state) one tap away.
LONG_TEXT = 300
FULL_TEXT = "查看全文：{url}"
# -- waking on NOTIFY (PostgreSQL)
CHANNEL = "houqin_outbox"  # migration 0026's trigger: payload = the schema the delivery was queued in
LISTEN_POLL = 5.0  # seconds: a worker in LISTEN still looks this often (a missed NOTIFY, a lease run out)
LISTEN_SLICE = 0.5  # seconds: how long one wait in LISTEN lasts before the stop flag is looked at again
LISTEN_READY = 5.0  # seconds a new worker waits for the LISTEN connection before its first look
LISTEN_RETRY = 2.0  # seconds between attempts to LISTEN again after the connection broke
# -- the daily template quota: WeChat counts an account's day in Beijing time
WECHAT_DAY = ZoneInfo("Asia/Shanghai")
DAILY_QUOTA_ERROR = 45009
QUOTA_DEFERRED = "已达公众号今日模板消息上限（{quota}条），顺延至{when}发送"
QUOTA_REACHED = "微信答复今日模板消息已达上限（45009），顺延至{when}发送"
QUOTA_LINE = "公众号 {appid} 今日（{day}）模板消息：已用 {sent}/{quota} 条"
QUOTA_DEFERRED_LINE = "，{deferred} 条已顺延至次日"
QUOTA_EXHAUSTED_LINE = "；微信已答复达到上限（45009），今日不再发送模板消息"


@dataclass
class Outcome:
    status: str
    channel: str = ""
    error: str | None = None
    retry_in: float | None = None
    unreachable: bool = False
    msgid: str | None = None
    retry_at: datetime | None = None  # instead of retry_in: a fixed moment (the account's next day)
    refund: bool = False  # the attempt does not count (it was deferred, not tried and failed)
    exhausted: bool = False  # WeChat said the day's template quota is used up (45009)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery this worker has claimed and is sending: the few columns of its row the send needs, its
    push (shared by the batch, `PushWorker._pushes`), and whether its recipient can be reached."""

    id: int
    push: Push
    openid: str
    attempts: int
    claim: str
    reachable: bool

    @property
    def push_id(self) -> int:
        return self.push.id


Plan = tuple[Claimed, tuple[datetime | None, int], bool, datetime | None]  # window, reachable, deferred to
BATCH_FACTOR = 8  # a batch: this many times HOUQIN_PUSH_CONCURRENCY (claimed in one round, sent as the lane frees)
PUSH_CACHE = 256  # pushes a worker keeps loaded (a batch's deliveries mostly share one)

# -- the push loop's statements, built once: building a statement (its CTEs' columns above all) cost more
# CPU than running it; each round binds its values (now, limit, token, lease)
_deliveries, _bindings, _quota = (cast(Table, m.__table__) for m in (Delivery, Binding, TemplateQuota))
_d, _b, _q = _deliveries.c, _bindings.c, _quota.c
_DUE = (select(_d.id)
        .where(or_(and_(_d.status == PENDING, _d.next_attempt_at <= bindparam("now")),
                   and_(_d.status == SENDING, _d.lease_until < bindparam("now"))))
        .order_by(_d.next_attempt_at, _d.id)
        .limit(bindparam("limit", type_=Integer)))
_CLAIMING = update(_deliveries).values(status=SENDING, claim=bindparam("token"), attempts=_d.attempts + 1,
                                       lease_until=bindparam("lease"))
_CLAIMED = (_d.id, _d.push_id, _d.openid, _d.attempts, _d.next_attempt_at)
_REACHABLE = and_(_b.subscribed, _b.reachable)
_locked = _DUE.with_for_update(skip_locked=True).cte("due")
_claimed = _CLAIMING.where(_d.id == _locked.c.id).returning(*_CLAIMED).cte("claimed")
# PostgreSQL: lock, claim and the recipients' bindings in one statement
CLAIM = (select(_claimed, _REACHABLE).outerjoin(_bindings, _b.openid == _claimed.c.openid)
         .order_by(_claimed.c.next_attempt_at, _claimed.c.id))
# SQLite: the due ids, then claimed, then read back with the bindings (one writer: nothing to skip)
CLAIM_MARK = _CLAIMING.where(_d.id.in_(bindparam("ids", expanding=True)))
CLAIM_READ = (select(*_CLAIMED, _REACHABLE).outerjoin(_bindings, _b.openid == _d.openid)
              .where(_d.claim == bindparam("token")).order_by(_d.next_attempt_at, _d.id))
_THIS_DAY = and_(_q.appid == bindparam("k_appid"), _q.day == bindparam("k_day"))
QUOTA_LOOK = select(_q.sent, _q.exhausted_at).where(_THIS_DAY).with_for_update()
QUOTA_TAKE = update(_quota).where(_THIS_DAY).values(sent=_q.sent + bindparam("granted", type_=Integer),
                                                    deferred=_q.deferred + bindparam("put_off", type_=Integer))
_OUTCOMES: dict[tuple[str, ...], Any] = {}


def outcome_update(columns: tuple[str, ...]) -> Any:
    """The executemany UPDATE for one shape of outcome: its columns set, the row guarded by its claim."""
    statement = _OUTCOMES.get(columns)
    if statement is None:
        statement = _OUTCOMES[columns] = (
            update(_deliveries).where(_d.id == bindparam("k_id"), _d.claim == bindparam("k_claim"))
            .values(lease_until=None, claim=None, **{c: bindparam(f"v_{c}") for c in columns}))
    return statement


class RateLimiter:
    """At most `rate` sends a second across this process's threads."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next_at = time.monotonic()
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            slot = max(self.next_at, now)
            self.next_at = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


SEND_POOL_FACTOR = 8  # a process's send threads: HOUQIN_PUSH_CONCURRENCY x this, unless HOUQIN_SEND_THREADS


class SendLane:
    """One school's share of the process's send pool (`send_pool`): at most `limit` of its sends run at
    once, as with a pool of its own, the rest wait here in order. A send that finishes hands its place
    to the school's next one at the back of the shared pool's queue, so twenty schools take turns on one
    bounded set of threads instead of keeping eight threads each (160 per process)."""

    def __init__(self, executor: ThreadPoolExecutor, limit: int) -> None:
        self.executor = executor
        self.limit = max(1, limit)
        self.running = 0
        self.waiting: deque[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]] = deque()
        self.idle = threading.Condition()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        with self.idle:
            start = self.running < self.limit
            if start:
                self.running += 1
            else:
                self.waiting.append((future, fn, args))
        if start:
            self._start(future, fn, args)
        return future

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        futures = [self.submit(fn, item) for item in items]
        return (future.result() for future in futures)

    def _start(self, future: Future[Any], fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        def run() -> None:
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        result = fn(*args)
                    except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
                        future.set_exception(exc)
                    else:
                        future.set_result(result)
            finally:
                self._next()

        try:
            self.executor.submit(run)
        except RuntimeError as exc:  # the interpreter is shutting down: the send is not made
            future.set_exception(exc)
            self._next()

    def _next(self) -> None:
        with self.idle:
            if not self.waiting:
                self.running -= 1
                self.idle.notify_all()
                return
            following = self.waiting.popleft()
        self._start(*following)

    def shutdown(self, wait: bool = True) -> None:
        """Wait until this school's sends are done; the shared pool goes on serving the others."""
        if wait:
            with self.idle:
                self.idle.wait_for(lambda: self.running == 0)


_send_pools: dict[int, ThreadPoolExecutor] = {}
_send_pools_lock = threading.Lock()


def send_pool(threads: int) -> ThreadPoolExecutor:
    """The process's send threads, shared by the push workers of every school it serves (its threads
    are started as sends need them, up to `threads`)."""
    with _send_pools_lock:
        pool = _send_pools.get(threads)
        if pool is None:
            pool = _send_pools[threads] = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="push")
        return pool


def send_threads(settings: Settings) -> int:
    return max(settings.send_threads or settings.push_concurrency * SEND_POOL_FACTOR, settings.push_concurrency, 1)


class Listener:
    """One LISTEN connection per process and database, shared by the workers of every school in it (a
    school per schema): its thread reads the NOTIFYs and wakes the workers of the schema each one names.
    The connection is its own, taken out of the pool. When it breaks (a database restart), every worker
    is woken once (a NOTIFY may have been missed) and it connects again after LISTEN_RETRY seconds."""

    _shared: dict[str, Listener] = {}
    _shared_lock = threading.Lock()

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.lock = threading.Lock()
        self.events: dict[str, set[threading.Event]] = {}
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="outbox-listen", daemon=True)

    @classmethod
    def shared(cls, engine: Engine) -> Listener:
        key = engine.url.render_as_string(hide_password=False)
        with cls._shared_lock:
            listener = cls._shared.get(key)
            if listener is None or not listener.thread.is_alive():
                listener = cls._shared[key] = cls(engine)
                listener.thread.start()
        listener.ready.wait(LISTEN_READY)
        return listener

    def subscribe(self, namespace: str) -> threading.Event:
        event = threading.Event()
        with self.lock:
            self.events.setdefault(namespace, set()).add(event)
        return event

    def unsubscribe(self, namespace: str, event: threading.Event) -> None:
        with self.lock:
            self.events.get(namespace, set()).discard(event)

    def _wake(self, namespace: str | None) -> None:
        with self.lock:
            events = [e for ns, each in self.events.items() if namespace in (None, ns) for e in each]
        for event in events:
            event.set()

    def _run(self) -> None:
        while True:  # for the life of the process (a daemon thread)
            conn: Any = None
            try:
                raw = self.engine.raw_connection()
                conn = raw.driver_connection
                raw.detach()  # held for good: not the pool's any more
                conn.rollback()
                conn.autocommit = True
                conn.execute(f"LISTEN {CHANNEL}")
                self.ready.set()
                for note in conn.notifies():
                    self._wake(note.payload)
            except Exception as exc:  # noqa: BLE001 - the database may be restarting: poll meanwhile
                log.warning("push worker: LISTEN failed (%s); polling until it works again",
                            redact(f"{type(exc).__name__}: {exc}"))
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):  # already broken
                        conn.close()
            self.ready.set()
            self._wake(None)
            time.sleep(LISTEN_RETRY)


class Wakeup:
    """An idle worker's wait on PostgreSQL: woken when a delivery is queued (or set back to pending) in
    this worker's schema, the namespace the NOTIFY names, else at the timeout (`Listener`)."""

    def __init__(self, engine: Engine) -> None:
        self.namespace = engine_schema(engine)
        self.listener = Listener.shared(engine)
        self.event = self.listener.subscribe(self.namespace)

    @classmethod
    def for_engine(cls, engine: Engine) -> Wakeup | None:
        """A Wakeup on PostgreSQL; None on SQLite, which keeps polling."""
        return cls(engine) if engine.dialect.name == "postgresql" else None

    def wait(self, timeout: float) -> bool:
        """Wait at most `timeout` seconds; True when a delivery was queued in this namespace meanwhile
        (or since the last wait: the worker looks at once)."""
        if self.event.wait(timeout):
            self.event.clear()
            return True
        return False

    def close(self) -> None:
        self.listener.unsubscribe(self.namespace, self.event)


def account_day(moment: datetime) -> date:
    """The day of a WeChat account (its quotas reset at midnight, Beijing time) that `moment` falls in."""
    return moment.astimezone(WECHAT_DAY).date()


def next_account_day(moment: datetime) -> datetime:
    """When the account's next day starts (UTC), a minute past midnight for good measure."""
    day = account_day(moment) + timedelta(days=1)
    return datetime.combine(day, clock_time(0, 1), tzinfo=WECHAT_DAY).astimezone(moment.tzinfo)


def quota_today(session: Session, appid: str, now: datetime) -> TemplateQuota | None:
    """The account's template count for its current day, if it has sent (or deferred) any."""
    return session.get(TemplateQuota, (appid, account_day(now)))


def quota_line(session: Session, settings: Settings, now: datetime) -> str:
    """`houqin outbox`'s line on the account's daily template quota."""
    row = quota_today(session, settings.wechat_appid, now)
    line = QUOTA_LINE.format(appid=settings.wechat_appid, day=account_day(now).isoformat(),
                             sent=row.sent if row else 0, quota=settings.template_daily_quota)
    if row is not None and row.deferred:
        line += QUOTA_DEFERRED_LINE.format(deferred=row.deferred)
    if row is not None and row.exhausted_at is not None:
        line += QUOTA_EXHAUSTED_LINE
    return line


class PushWorker:
    def __init__(self, factory: sessionmaker[Session], settings: Settings, api: WeChatApi,
                 clock: Callable[[], datetime] = utcnow, batch_size: int | None = None,
                 quota_factory: sessionmaker[Session] | None = None) -> None:
        self.factory = factory
        # the push loop's own statements go through Core connections of the same engine: a county school
        # sends ~80 messages a second, and an ORM session per round cost more CPU than its statements
        self.engine: Engine = factory.kw["bind"]
        # where the account's daily template count lives: the worker's own database, unless several
        # schools share one account (then the county's namespace, so they count against one quota)
        self.quota_engine: Engine = quota_factory.kw["bind"] if quota_factory is not None else self.engine
        self.settings = settings
        self.api = api
        self.clock = clock
        self.worker_id = uuid.uuid4().hex[:12]
        self.batch_size = batch_size or max(settings.push_concurrency * BATCH_FACTOR, 16)
        self.limiter = RateLimiter(settings.push_rate_per_second)
        self.pool = SendLane(send_pool(send_threads(settings)), settings.push_concurrency)
        # custom messages planned but not yet written as sent, per openid (the 48-hour window's budget)
        self._custom_inflight: Counter[str] = Counter()
        self._custom_ids: set[int] = set()
        self._push_cache: dict[int, Push] = {}
        # a template's data per push (the same for all its recipients), made again when its template changes
        self._rendered: dict[int, tuple[Template, tuple[str, dict[str, Any], str]]] = {}

    # -- the school's template ids ----------------------------------------------------------------
    def look_at_templates(self) -> None:
        """The school's template ids as stored now (bot.school.StoredTemplates, at most every few seconds),
        looked at before a round's transaction so the read stays out of it: `houqin templates set` while
        the worker runs reaches its next batch — no restart."""
        templates_now(self.settings.templates)

    # -- claiming ------------------------------------------------------------------------------
    def claim(self) -> list[Claimed]:
        self.look_at_templates()
        with self.engine.begin() as conn:
            return self._claim(conn, self.batch_size)

    def _claim(self, conn: Connection, limit: int) -> list[Claimed]:
        """Take up to `limit` due deliveries (pending and due, or sending with a run-out lease) under a
        new claim token, and say for each whether its recipient can be reached (bound, subscribed and
        not refused by WeChat). On PostgreSQL one statement does it all (lock, claim, the bindings);
        on SQLite, whose single writer needs no SKIP LOCKED, three."""
        now = self.clock()
        token = f"{self.worker_id}:{uuid.uuid4().hex[:8]}"
        values = {"now": now, "limit": limit, "token": token,
                  "lease": now + timedelta(seconds=self.settings.push_lease_seconds)}
        if conn.dialect.name == "postgresql":
            rows = conn.execute(CLAIM, values).all()
        else:
            ids = list(conn.scalars(_DUE, values))
            if not ids:
                return []
            conn.execute(CLAIM_MARK, {**values, "ids": ids})
            rows = conn.execute(CLAIM_READ, values).all()
        if not rows:
            return []
        pushes = self._pushes(conn, {row.push_id for row in rows})
        return [Claimed(row.id, pushes[row.push_id], row.openid, row.attempts, token,
                        bool(row[-1])) for row in rows]

    def _pushes(self, conn: Connection, ids: set[int]) -> dict[int, Push]:
        """The pushes of a batch: loaded once per push and kept (a push is never changed once queued),
        so the 5,000 deliveries of a menu load it once, not 5,000 times."""
        missing = ids - self._push_cache.keys()
        if missing:
            if len(self._push_cache) + len(missing) > PUSH_CACHE:
                self._push_cache.clear()
            with Session(bind=conn) as session:
                for push in session.scalars(select(Push).where(Push.id.in_(sorted(missing)))):
                    self._push_cache[push.id] = push
        return {i: self._push_cache[i] for i in ids}

    # -- choosing a channel --------------------------------------------------------------------
    def _send(self, delivery: Claimed, window: tuple[datetime | None, int], reachable: bool,
              defer: datetime | None = None) -> Outcome:
        if not reachable:
            return Outcome(UNDELIVERABLE, error=UNSUBSCRIBED)
        if defer is not None:  # past the account's daily quota: tomorrow, without spending an attempt
            return Outcome(PENDING, error=QUOTA_DEFERRED.format(
                quota=self.settings.template_daily_quota, when=self._when(defer)), retry_at=defer, refund=True)
        push = delivery.push
        template = self.settings.templates.get(push.kind)
        use_custom = template is None
        if use_custom and (window[0] is None or window[1] >= WINDOW_BUDGET):
            return Outcome(UNDELIVERABLE, error=WINDOW_CLOSED)
        self.limiter.wait()
        try:
            if use_custom:
                text = custom_text(push, self.settings)
                try:
                    self.api.send_text(delivery.openid, text)
                    return Outcome(SENT, "custom")
                except ApiError as exc:
                    if exc.errcode not in WINDOW_ERRORS:
                        raise
                    return Outcome(UNDELIVERABLE, "custom", error=f"{exc}; {WINDOW_CLOSED}")
            assert template is not None
            template_id, data, link = self._render(push, template)
            msgid = self.api.send_template(delivery.openid, template_id, data, link)
            return Outcome(SENT, "template", msgid=msgid or None)
        except ApiError as exc:
            if exc.errcode == DAILY_QUOTA_ERROR and not use_custom:
                later = next_account_day(self.clock())
                return Outcome(PENDING, error=QUOTA_REACHED.format(when=self._when(later)), retry_at=later,
                               refund=True, exhausted=True)
            if exc.errcode in UNREACHABLE:
                return Outcome(UNDELIVERABLE, error=str(exc), unreachable=True)
            if exc.transient or exc.token_expired:
                if delivery.attempts >= self.settings.push_max_attempts:
                    return Outcome(FAILED, error=f"{exc} (gave up after {delivery.attempts} attempts)")
                backoff = self.settings.push_backoff_seconds * 2 ** (delivery.attempts - 1)
                return Outcome(PENDING, error=str(exc), retry_in=backoff)
            return Outcome(FAILED, error=str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug must not lose the delivery
            log.exception("push %s to %s failed unexpectedly", delivery.push_id, delivery.openid)
            error = redact(f"{type(exc).__name__}: {exc}")
            if delivery.attempts >= self.settings.push_max_attempts:
                return Outcome(FAILED, error=f"{error} (gave up after {delivery.attempts} attempts)")
            return Outcome(PENDING, error=error, retry_in=self.settings.push_backoff_seconds)

    def _render(self, push: Push, template: Template) -> tuple[str, dict[str, Any], str]:
        """A push's template send but for its recipient: the template id, the data (its fields filled and
        fitted: the same for every recipient, so made once per push) and the link, which opens the push's
        whole text (its page) since the template shows only a few short fields."""
        cached = self._rendered.get(push.id)
        if cached is not None and cached[0] is template:
            return cached[1]
        data = template.render(push.fields or push_fields(push.kind, push.text,
                                                          push.created_at.astimezone(self.settings.tz)))
        rendered = (template.template_id, data, page_url(self.settings, push) or push.url)
        if len(self._rendered) >= PUSH_CACHE:
            self._rendered = {}
        self._rendered[push.id] = (template, rendered)
        return rendered

    def _budget(self, batch: list[Claimed], windows: dict[str, tuple[datetime | None, int]]
                ) -> list[tuple[Claimed, tuple[datetime | None, int]]]:
        """Each delivery with its recipient's window, counting the custom messages ahead of it in
        this batch as used, so a batch never spends more than the 5-message budget."""
        queued: dict[str, int] = {}
        plans = []
        for delivery in batch:
            since, used = windows.get(delivery.openid, (None, 0))
            if delivery.push.kind not in self.settings.templates:
                ahead = queued.get(delivery.openid, 0)
                queued[delivery.openid] = ahead + 1
                used += ahead
            plans.append((delivery, (since, used)))
        return plans

    def _when(self, moment: datetime) -> str:
        return moment.astimezone(self.settings.tz).strftime("%m月%d日 %H:%M")

    def reserve(self, wanted: int, conn: Connection | None = None) -> tuple[int, datetime]:
        """Take up to `wanted` template sends from the account's quota for its current day (the row
        locked: every worker counts against the same figure), in `conn`'s transaction when the quota
        lives in the worker's own database, else in one of its own. Returns how many were granted and
        when the account's next day starts; the rest are counted as deferred."""
        if conn is None or self.quota_engine is not self.engine:
            with self.quota_engine.begin() as own:
                return self.reserve(wanted, own)
        now = self.clock()
        appid, day = self.settings.wechat_appid, account_day(now)
        key = {"k_appid": appid, "k_day": day}
        row = conn.execute(QUOTA_LOOK, key).first()
        if row is None:  # the day's first: made here, or by another worker meanwhile (then its row counts)
            conn.execute(dialect_insert(conn)(TemplateQuota).values(appid=appid, day=day, sent=0, deferred=0)
                         .on_conflict_do_nothing())
            row = conn.execute(QUOTA_LOOK, key).one()
        left = 0 if row.exhausted_at is not None else max(0, self.settings.template_daily_quota - row.sent)
        granted = min(wanted, left)
        conn.execute(QUOTA_TAKE, {**key, "granted": granted, "put_off": wanted - granted})
        return granted, next_account_day(now)

    def _plan(self, conn: Connection, batch: list[Claimed]) -> list[Plan]:
        """Each delivery with its recipient's window, whether the recipient can be reached, and (for a
        template send past the account's daily quota) when it goes instead."""
        # only customer-service messages depend on the 48-hour window; a template needs none
        custom = sorted({d.openid for d in batch if d.push.kind not in self.settings.templates})
        windows: dict[str, tuple[datetime | None, int]] = {}
        if custom:
            with Session(bind=conn) as session:
                windows = open_windows(session, custom, self.clock())
        for openid, (since, used) in windows.items():  # still being sent by this process: spent too
            windows[openid] = (since, used + self._custom_inflight.get(openid, 0))
        for delivery in batch:  # in flight from now on: its recipient's budget is spent until it is written
            if delivery.push.kind not in self.settings.templates and delivery.id not in self._custom_ids:
                self._custom_ids.add(delivery.id)
                self._custom_inflight[delivery.openid] += 1
        templated = [d.id for d in batch if d.push.kind in self.settings.templates and d.reachable]
        granted, tomorrow = self.reserve(len(templated), conn) if templated else (0, self.clock())
        deferred = set(templated[granted:])
        return [(d, window, d.reachable, tomorrow if d.id in deferred else None)
                for d, window in self._budget(batch, windows)]

    # -- one round -----------------------------------------------------------------------------
    def run_once(self) -> int:
        """Claim a batch, send it concurrently, record each outcome. Returns how many were handled."""
        plans = self._round(self.batch_size, [])
        if not plans:
            return 0
        outcomes = list(self.pool.map(lambda plan: self._send(*plan), plans))
        self._record([plan[0] for plan in plans], outcomes)
        return len(plans)

    def _round(self, limit: int, finished: list[tuple[Claimed, Outcome]]) -> list[Plan]:
        """One transaction: the outcomes of `finished` written, then up to `limit` deliveries claimed and
        planned (windows, quota). A county's school sends ~80 messages a second at most (8 in flight,
        100 ms a call), so a transaction per step cost more than the steps: one does them all."""
        self.look_at_templates()  # (its own read, before this transaction: on SQLite that one holds the writer)
        with self.engine.begin() as conn:
            if finished:
                self._write(conn, [d for d, _ in finished], [o for _, o in finished])
            batch = self._claim(conn, limit)
            return self._plan(conn, batch) if batch else []

    def _record(self, batch: list[Claimed], outcomes: list[Outcome]) -> None:
        with self.engine.begin() as conn:
            self._write(conn, batch, outcomes)

    def _write(self, conn: Connection, batch: list[Claimed], outcomes: list[Outcome]) -> None:
        """Write the batch's outcomes: one executemany UPDATE per shape of outcome (sent, retry, final),
        each row guarded by its claim, so a lease taken over by another worker wins and this worker's
        late result is dropped."""
        now = self.clock()
        for delivery in batch:  # written: counted by its row from now on, no longer as in flight
            if delivery.id in self._custom_ids:
                self._custom_ids.discard(delivery.id)
                self._custom_inflight[delivery.openid] -= 1
        self._custom_inflight = +self._custom_inflight  # drop the zeros
        groups: dict[tuple[str, ...], list[dict[str, object]]] = {}
        unreachable: list[str] = []
        for delivery, outcome in zip(batch, outcomes, strict=True):
            values: dict[str, object] = {"status": outcome.status, "last_error": outcome.error}
            if outcome.channel:
                values["channel"] = outcome.channel
            if outcome.status == SENT:
                values["sent_at"] = now
            if outcome.msgid:
                values["msgid"] = outcome.msgid
            if outcome.retry_at is not None:
                values["next_attempt_at"] = outcome.retry_at
            elif outcome.retry_in is not None:
                values["next_attempt_at"] = now + timedelta(seconds=outcome.retry_in)
            if outcome.refund:
                values["attempts"] = max(delivery.attempts - 1, 0)
            groups.setdefault(tuple(values), []).append(
                {**{f"v_{k}": v for k, v in values.items()}, "k_id": delivery.id, "k_claim": delivery.claim})
            if outcome.unreachable:
                unreachable.append(delivery.openid)
        for columns, rows in groups.items():
            conn.execute(outcome_update(columns), rows)
        if any(o.exhausted for o in outcomes):
            self._exhausted(conn, now, sum(o.exhausted for o in outcomes))
        if unreachable:
            conn.execute(update(Binding).where(Binding.openid.in_(sorted(set(unreachable))))
                            .values(reachable=False))
        given_up = [d.id for d, o in zip(batch, outcomes, strict=True) if o.status in (FAILED, UNDELIVERABLE)]
        if given_up:
            with Session(bind=conn) as session:  # the rare path: the ORM's Outbox, in this transaction
                self._escalate(session, given_up, now)
                session.flush()

    def _exhausted(self, conn: Connection, now: datetime, deferred: int) -> None:
        """WeChat answered 45009: no more template sends today, whatever our own count says."""
        if self.quota_engine is not self.engine:
            with self.quota_engine.begin() as other:
                self._exhausted(other, now, deferred)
            return
        log.warning("account %s: WeChat says the day's template quota is used up; %d sends wait for tomorrow",
                    self.settings.wechat_appid, deferred)
        conn.execute(update(TemplateQuota)
                     .where(TemplateQuota.appid == self.settings.wechat_appid, TemplateQuota.day == account_day(now))
                     .values(exhausted_at=func.coalesce(TemplateQuota.exhausted_at, now),
                             deferred=TemplateQuota.deferred + deferred))

    def _escalate(self, session: Session, ids: list[int], now: datetime) -> None:
        """A safety push that failed for good or could not be delivered tells the office at once
        (bot.outbox.Outbox.escalate), unless its person got it on another WeChat or was already reported."""
        rows = session.execute(
            select(Delivery.push_id, Delivery.person_id, Delivery.last_error)
            .join(Push, Push.id == Delivery.push_id)
            .where(Delivery.id.in_(ids), Delivery.status.in_((FAILED, UNDELIVERABLE)), Push.safety.is_(True),
                   Push.kind != ESCALATION_KIND, Delivery.person_id.is_not(None))
            .order_by(Delivery.id)).all()
        by_push: dict[int, dict[int, str]] = {}
        for push_id, person_id, error in rows:
            if person_id is not None:
                by_push.setdefault(push_id, {}).setdefault(person_id, error or "")
        outbox = Outbox(session, self.settings, now)
        for push_id, reasons in by_push.items():
            done = set(session.scalars(select(Delivery.person_id).where(
                Delivery.push_id == push_id, Delivery.person_id.in_(reasons), Delivery.status == SENT)))
            done |= set(session.scalars(select(DeliveryAlert.person_id).where(
                DeliveryAlert.push_id == push_id, DeliveryAlert.person_id.in_(reasons))))
            people = {p.id: p for p in session.scalars(select(Person).where(
                Person.id.in_([i for i in reasons if i not in done])))}
            if not people:
                continue
            push = session.get(Push, push_id)
            assert push is not None
            try:
                with session.begin_nested():  # another worker may report the same person first
                    outbox.escalate(push, [(people[i], reasons[i]) for i in sorted(people)])
            except IntegrityError:
                log.info("push %s: its failure was already reported", push_id)

    def drain(self, timeout: float = 30.0) -> int:
        """Deliver everything due now (tests, operators); returns how many were handled."""
        return drain_rounds(self.run_once, timeout)

    def next_due(self) -> float | None:
        """Seconds until the earliest pending delivery is due (0 if one is due now), None if none is."""
        with self.factory() as session:
            due = session.scalar(select(func.min(Delivery.next_attempt_at)).where(Delivery.status == PENDING))
        return None if due is None else max(0.0, (due - self.clock()).total_seconds())

    def _idle_for(self, idle_sleep: float, wakeup: Wakeup | None) -> float:
        """How long an idle worker waits before it looks again: `idle_sleep` when polling; in LISTEN until
        the next delivery is due, at least `idle_sleep` and at most LISTEN_POLL."""
        if wakeup is None:
            return idle_sleep
        try:
            due = self.next_due()
        except SQLAlchemyError:
            return idle_sleep
        return max(idle_sleep, min(LISTEN_POLL, LISTEN_POLL if due is None else due))

    @staticmethod
    def _rest(stop: threading.Event, seconds: float, wakeup: Wakeup | None) -> bool:
        """Wait up to `seconds` (less when stopped); with `wakeup`, in LISTEN. True if a NOTIFY woke it."""
        if wakeup is None:
            stop.wait(seconds)
            return False
        deadline = time.monotonic() + seconds
        while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
            if wakeup.wait(min(left, LISTEN_SLICE)):
                return True
        return False

    def run_forever(self, stop: threading.Event, idle_sleep: float = 0.5, wakeup: Wakeup | None = None) -> None:
        """Deliver until `stop` is set, then finish and record what is in flight.

        With `wakeup` (PostgreSQL), an idle worker waits in LISTEN and starts the moment a delivery is
        queued; it still looks when the next delivery is due and at least every LISTEN_POLL seconds.

        Unlike a loop of run_once(), sending is pipelined: the next batch is claimed and queued
        while the current one is still being sent, and finished sends are recorded every
        RECORD_EVERY seconds, so one slow call holds up its own thread, not a whole batch. What is
        claimed and not yet sent never exceeds one batch, so the lease covers it as in run_once; a
        crash repeats only the sends in flight and those finished in the last RECORD_EVERY seconds.
        """
        log.info("push worker %s started", self.worker_id)
        inflight: dict[Future[Outcome], Claimed] = {}
        finished: list[tuple[Claimed, Outcome]] = []
        # sends report here as they finish: one queue to wait on, not a waiter put on every send in flight
        done: queue.SimpleQueue[Future[Outcome]] = queue.SimpleQueue()
        last_record = next_claim = time.monotonic()
        while True:
            try:
                room = self.batch_size - len(inflight)
                if (room > 0 and len(inflight) <= self.settings.push_concurrency and not stop.is_set()
                        and time.monotonic() >= next_claim):
                    # what finished is written in the same transaction as the next claim
                    plans = self._round(room, finished)
                    if finished:
                        finished, last_record = [], time.monotonic()
                    if not plans:  # nothing due: look again after idle_sleep (or a NOTIFY)
                        next_claim = time.monotonic() + (idle_sleep if inflight
                                                         else self._idle_for(idle_sleep, wakeup))
                    for plan in plans:
                        future = self.pool.submit(self._send, *plan)
                        inflight[future] = plan[0]
                        future.add_done_callback(done.put)
                elif finished and (not inflight or len(finished) >= self.batch_size // 2
                                   or time.monotonic() - last_record >= RECORD_EVERY):
                    self._record([d for d, _ in finished], [o for _, o in finished])
                    finished, last_record = [], time.monotonic()
                if inflight:
                    finished.extend((inflight.pop(f), f.result()) for f in _finished(done, RECORD_EVERY))
                elif not finished:
                    if stop.is_set():
                        break
                    if self._rest(stop, max(0.0, next_claim - time.monotonic()), wakeup):
                        next_claim = time.monotonic()
            except Exception:  # noqa: BLE001 - keep the worker alive; the database may be restarting
                log.exception("push worker round failed")
                if not stop.is_set():
                    stop.wait(2.0)
                elif inflight:
                    wait(inflight, timeout=2.0)
                else:
                    log.error("push worker stopping with %d sends unrecorded: they go again after their lease",
                              len(finished))
                    break
        self.pool.shutdown(wait=True)
        if wakeup is not None:
            wakeup.close()


def _finished(done: queue.SimpleQueue[Future[Outcome]], timeout: float) -> list[Future[Outcome]]:
    """The sends finished since the last look: waits up to `timeout` for the first, takes the rest as they are."""
    try:
        futures = [done.get(timeout=timeout)]
    except queue.Empty:
        return []
    with contextlib.suppress(queue.Empty):
        while True:
            futures.append(done.get_nowait())
    return futures


def custom_text(push: Push, settings: Settings) -> str:
    """A push as a customer-service message: its text, its link, and its page's link when it is long."""
    text = push.text + (f"\n{push.url}" if push.url else "")
    if len(push.text) > LONG_TEXT and (url := page_url(settings, push)):
        text += "\n" + FULL_TEXT.format(url=url)
    return text


def drain_rounds(run_once: Callable[[], int], timeout: float) -> int:
    """Call `run_once` until it handles nothing (or `timeout` passes); the total it handled."""
    total, deadline = 0, time.monotonic() + timeout
    while time.monotonic() < deadline:
        handled = run_once()
        if not handled:
            break
        total += handled
    return total


IDLE_BACKOFF_MAX = 8.0  # seconds: the longest an idle photo or menu worker waits between looks


def run_rounds(run_once: Callable[[], int], stop: threading.Event, idle_sleep: float, what: str,
               idle_max: float = IDLE_BACKOFF_MAX) -> None:
    """A background worker's loop: `run_once` until `stop` is set, waiting `idle_sleep` when a round had
    nothing to do, twice as long after each further empty round up to `idle_max` (back to `idle_sleep`
    once a round finds work: a county's twenty schools per process would otherwise look 20-40 times a
    second for photos and menus that rarely come), and at least 2 s after a failed one (logged: the
    database may be restarting)."""
    wait = idle_sleep
    while not stop.is_set():
        try:
            if run_once():
                wait = idle_sleep
            else:
                stop.wait(wait)
                wait = max(idle_sleep, min(idle_max, wait * 2))
        except Exception:  # noqa: BLE001 - keep the worker alive
            log.exception("%s round failed", what)
            stop.wait(max(idle_sleep, 2.0))
