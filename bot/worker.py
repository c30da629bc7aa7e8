"""The push worker: claims due deliveries, sends them, records the outcome.

Each delivery is claimed with a lease before it is sent, so any number of workers on any machines
share the outbox without double-sending; a worker that dies leaves only its in-flight sends to be
repeated when their lease runs out. Channel: a template message when the push's kind has a
template, else a customer-service message while the recipient's 48-hour window is open and its
5-message budget lasts, else undeliverable with the reason.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, and_, bindparam, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.config import Settings
from bot.outbox import ESCALATION_KIND, UNSUBSCRIBED, WINDOW_BUDGET, WINDOW_CLOSED, Outbox, page_url
from bot.outbox import windows as open_windows
from bot.push_kinds import push_fields
from bot.wechat.gateway import UNREACHABLE, WINDOW_ERRORS, ApiError, WeChatApi, redact
from models import Binding, Delivery, DeliveryAlert, Person, Push, utcnow
from models.outbox import FAILED, PENDING, SENDING, SENT, UNDELIVERABLE

log = logging.getLogger(__name__)

RECORD_EVERY = 0.1  # seconds: run_forever writes finished sends at least this often
# A customer-service message longer than this many characters ends with its page's link: a phone shows
# a long chat bubble folded, and the page keeps the text (and the ticket's or menu's state) one tap away.
LONG_TEXT = 300
FULL_TEXT = "查看全文：{url}"


@dataclass
class Outcome:
    status: str
    channel: str = ""
    error: str | None = None
    retry_in: float | None = None
    unreachable: bool = False
    msgid: str | None = None


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


class PushWorker:
    def __init__(self, factory: sessionmaker[Session], settings: Settings, api: WeChatApi,
                 clock: Callable[[], datetime] = utcnow, batch_size: int | None = None) -> None:
        self.factory = factory
        self.settings = settings
        self.api = api
        self.clock = clock
        self.worker_id = uuid.uuid4().hex[:12]
        self.batch_size = batch_size or max(settings.push_concurrency * 4, 16)
        self.limiter = RateLimiter(settings.push_rate_per_second)
        self.pool = ThreadPoolExecutor(max_workers=settings.push_concurrency, thread_name_prefix="push")
        # run_forever: custom messages planned but not yet recorded as sent, per openid (the budget)
        self._custom_inflight: Counter[str] = Counter()

    # -- claiming ------------------------------------------------------------------------------
    def claim(self) -> list[Delivery]:
        return self._claim(self.batch_size)

    def _claim(self, limit: int) -> list[Delivery]:
        now = self.clock()
        token = f"{self.worker_id}:{uuid.uuid4().hex[:8]}"
        with self.factory() as session, session.begin():
            due = (
                select(Delivery.id)
                .where(or_(and_(Delivery.status == PENDING, Delivery.next_attempt_at <= now),
                           and_(Delivery.status == SENDING, Delivery.lease_until < now)))
                .order_by(Delivery.next_attempt_at, Delivery.id)
                .limit(limit)
            )
            if session.get_bind().dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)
            ids = list(session.scalars(due))
            if not ids:
                return []
            session.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids))
                .values(status=SENDING, claim=token, attempts=Delivery.attempts + 1,
                        lease_until=now + timedelta(seconds=self.settings.push_lease_seconds))
            )
            return list(session.scalars(select(Delivery).where(Delivery.claim == token)
                                        .order_by(Delivery.next_attempt_at, Delivery.id)).unique())

    # -- choosing a channel --------------------------------------------------------------------
    def _send(self, delivery: Delivery, window: tuple[datetime | None, int], reachable: bool) -> Outcome:
        if not reachable:
            return Outcome(UNDELIVERABLE, error=UNSUBSCRIBED)
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
            data = template.render(push.fields or push_fields(push.kind, push.text,
                                                              push.created_at.astimezone(self.settings.tz)))
            # the template shows a few short fields; its link opens the push's whole text (its page)
            msgid = self.api.send_template(delivery.openid, template.template_id, data,
                                           page_url(self.settings, push) or push.url)
            return Outcome(SENT, "template", msgid=msgid or None)
        except ApiError as exc:
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

    def _budget(self, batch: list[Delivery], windows: dict[str, tuple[datetime | None, int]]
                ) -> list[tuple[Delivery, tuple[datetime | None, int]]]:
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

    def _plan(self, batch: list[Delivery]) -> list[tuple[Delivery, tuple[datetime | None, int], bool]]:
        """Each delivery with its recipient's window and whether the recipient can be reached."""
        openids = sorted({d.openid for d in batch})
        # only customer-service messages depend on the 48-hour window; a template needs none
        custom = sorted({d.openid for d in batch if d.push.kind not in self.settings.templates})
        with self.factory() as session:
            windows = open_windows(session, custom, self.clock()) if custom else {}
            reachable = {openid: subscribed and ok for openid, subscribed, ok in session.execute(
                select(Binding.openid, Binding.subscribed, Binding.reachable).where(Binding.openid.in_(openids)))}
        for openid, (since, used) in windows.items():  # still being sent by this process: spent too
            windows[openid] = (since, used + self._custom_inflight.get(openid, 0))
        return [(d, window, reachable.get(d.openid, False)) for d, window in self._budget(batch, windows)]

    # -- one round -----------------------------------------------------------------------------
    def run_once(self) -> int:
        """Claim a batch, send it concurrently, record each outcome. Returns how many were handled."""
        batch = self.claim()
        if not batch:
            return 0
        outcomes = list(self.pool.map(lambda plan: self._send(*plan), self._plan(batch)))
        self._record(batch, outcomes)
        return len(batch)

    def _record(self, batch: list[Delivery], outcomes: list[Outcome]) -> None:
        """Write the batch's outcomes in one transaction: one executemany UPDATE per shape of outcome
        (sent, retry, final), each row guarded by its claim, so a lease taken over by another worker
        wins and this worker's late result is dropped."""
        now = self.clock()
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
            if outcome.retry_in is not None:
                values["next_attempt_at"] = now + timedelta(seconds=outcome.retry_in)
            groups.setdefault(tuple(values), []).append(
                {**{f"v_{k}": v for k, v in values.items()}, "k_id": delivery.id, "k_claim": delivery.claim})
            if outcome.unreachable:
                unreachable.append(delivery.openid)
        table = cast(Table, Delivery.__table__)
        with self.factory() as session, session.begin():
            for columns, rows in groups.items():
                session.execute(
                    update(table)
                    .where(table.c.id == bindparam("k_id"), table.c.claim == bindparam("k_claim"))
                    .values(lease_until=None, claim=None, **{c: bindparam(f"v_{c}") for c in columns}),
                    rows,
                )
            if unreachable:
                session.execute(update(Binding).where(Binding.openid.in_(sorted(set(unreachable))))
                                .values(reachable=False))
            given_up = [d.id for d, o in zip(batch, outcomes, strict=True) if o.status in (FAILED, UNDELIVERABLE)]
            if given_up:
                self._escalate(session, given_up, now)

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

    def run_forever(self, stop: threading.Event, idle_sleep: float = 0.5) -> None:
        """Deliver until `stop` is set, then finish and record what is in flight.

        Unlike a loop of run_once(), sending is pipelined: the next batch is claimed and queued
        while the current one is still being sent, and finished sends are recorded every
        RECORD_EVERY seconds, so one slow call holds up its own thread, not a whole batch. What is
        claimed and not yet sent never exceeds one batch, so the lease covers it as in run_once; a
        crash repeats only the sends in flight and those finished in the last RECORD_EVERY seconds.
        """
        log.info("push worker %s started", self.worker_id)
        inflight: dict[Future[Outcome], Delivery] = {}
        finished: list[tuple[Delivery, Outcome]] = []
        last_record = next_claim = time.monotonic()
        while True:
            try:
                if finished and (not inflight or len(finished) >= self.batch_size // 2
                                 or time.monotonic() - last_record >= RECORD_EVERY):
                    self._record([d for d, _ in finished], [o for _, o in finished])
                    for delivery, _ in finished:
                        if delivery.push.kind not in self.settings.templates:
                            self._custom_inflight[delivery.openid] -= 1
                    self._custom_inflight = +self._custom_inflight  # drop the zeros
                    finished, last_record = [], time.monotonic()
                room = self.batch_size - len(inflight)
                if (room > 0 and len(inflight) <= self.settings.push_concurrency and not stop.is_set()
                        and time.monotonic() >= next_claim):
                    batch = self._claim(room)
                    if not batch:  # nothing due: look again after idle_sleep
                        next_claim = time.monotonic() + idle_sleep
                    for delivery, window, reachable in self._plan(batch) if batch else []:
                        if delivery.push.kind not in self.settings.templates:
                            self._custom_inflight[delivery.openid] += 1
                        inflight[self.pool.submit(self._send, delivery, window, reachable)] = delivery
                if inflight:
                    done, _ = wait(inflight, timeout=RECORD_EVERY, return_when=FIRST_COMPLETED)
                    finished.extend((inflight.pop(f), f.result()) for f in done)
                elif not finished:
                    if stop.is_set():
                        break
                    stop.wait(max(0.0, next_claim - time.monotonic()))
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


def run_rounds(run_once: Callable[[], int], stop: threading.Event, idle_sleep: float, what: str) -> None:
    """A background worker's loop: `run_once` until `stop` is set, waiting `idle_sleep` when a round had
    nothing to do, and at least 2 s after a failed one (logged: the database may be restarting)."""
    while not stop.is_set():
        try:
            if not run_once():
                stop.wait(idle_sleep)
        except Exception:  # noqa: BLE001 - keep the worker alive
            log.exception("%s round failed", what)
            stop.wait(max(idle_sleep, 2.0))
