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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.config import Settings
from bot.gateway import UNREACHABLE, WINDOW_ERRORS, ApiError, WeChatApi
from models import Binding, Delivery, InboundMessage, utcnow
from models.outbox import FAILED, PENDING, SENDING, SENT, UNDELIVERABLE

log = logging.getLogger(__name__)

WINDOW = timedelta(hours=48)
WINDOW_BUDGET = 5
WINDOW_CLOSED = "客服消息窗口已关闭（48小时内无互动或已达5条上限），且该类推送未配置模板"
UNSUBSCRIBED = "用户已取消关注或拒收"


@dataclass
class Outcome:
    status: str
    channel: str = ""
    error: str | None = None
    retry_in: float | None = None
    unreachable: bool = False


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

    # -- claiming ------------------------------------------------------------------------------
    def claim(self) -> list[Delivery]:
        now = self.clock()
        token = f"{self.worker_id}:{uuid.uuid4().hex[:8]}"
        with self.factory() as session, session.begin():
            due = (
                select(Delivery.id)
                .where(or_(and_(Delivery.status == PENDING, Delivery.next_attempt_at <= now),
                           and_(Delivery.status == SENDING, Delivery.lease_until < now)))
                .order_by(Delivery.next_attempt_at, Delivery.id)
                .limit(self.batch_size)
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
            return list(session.scalars(select(Delivery).where(Delivery.claim == token)).unique())

    # -- choosing a channel --------------------------------------------------------------------
    def _windows(self, session: Session, openids: list[str]) -> dict[str, tuple[datetime | None, int]]:
        """Per openid: the last time the user wrote to us, and custom messages sent since."""
        now = self.clock()
        last = dict(session.execute(
            select(InboundMessage.openid, func.max(InboundMessage.received_at))
            .where(InboundMessage.openid.in_(openids), InboundMessage.received_at > now - WINDOW)
            .group_by(InboundMessage.openid)
        ).all())
        result: dict[str, tuple[datetime | None, int]] = {}
        for openid in openids:
            since = last.get(openid)
            if since is None:
                result[openid] = (None, 0)
                continue
            if since.tzinfo is None:
                from datetime import UTC

                since = since.replace(tzinfo=UTC)
            sent = session.scalar(select(func.count()).select_from(Delivery).where(
                Delivery.openid == openid, Delivery.channel == "custom", Delivery.status == SENT,
                Delivery.sent_at >= since))
            result[openid] = (since, int(sent or 0))
        return result

    def _send(self, delivery: Delivery, window: tuple[datetime | None, int], reachable: bool) -> Outcome:
        if not reachable:
            return Outcome(UNDELIVERABLE, error=UNSUBSCRIBED)
        push = delivery.push
        template_id = self.settings.templates.get(push.kind)
        use_custom = template_id is None
        if use_custom and (window[0] is None or window[1] >= WINDOW_BUDGET):
            return Outcome(UNDELIVERABLE, error=WINDOW_CLOSED)
        self.limiter.wait()
        try:
            if use_custom:
                text = push.text + (f"\n{push.url}" if push.url else "")
                try:
                    self.api.send_text(delivery.openid, text)
                    return Outcome(SENT, "custom")
                except ApiError as exc:
                    if exc.errcode not in WINDOW_ERRORS:
                        raise
                    return Outcome(UNDELIVERABLE, "custom", error=f"{exc}; {WINDOW_CLOSED}")
            assert template_id is not None
            self.api.send_template(delivery.openid, template_id, template_data(push.kind, push.text), push.url)
            return Outcome(SENT, "template")
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
            return Outcome(PENDING, error=f"{type(exc).__name__}: {exc}",
                           retry_in=self.settings.push_backoff_seconds)

    # -- one round -----------------------------------------------------------------------------
    def run_once(self) -> int:
        """Claim a batch, send it concurrently, record each outcome. Returns how many were handled."""
        batch = self.claim()
        if not batch:
            return 0
        openids = sorted({d.openid for d in batch})
        with self.factory() as session:
            windows = self._windows(session, openids)
            reachable = {b.openid: b.subscribed and b.reachable
                         for b in session.scalars(select(Binding).where(Binding.openid.in_(openids)))}
        outcomes = list(self.pool.map(
            lambda d: self._send(d, windows.get(d.openid, (None, 0)), reachable.get(d.openid, False)), batch))
        now = self.clock()
        with self.factory() as session, session.begin():
            for delivery, outcome in zip(batch, outcomes, strict=True):
                values: dict[str, object] = {"status": outcome.status, "last_error": outcome.error,
                                             "lease_until": None, "claim": None}
                if outcome.channel:
                    values["channel"] = outcome.channel
                if outcome.status == SENT:
                    values["sent_at"] = now
                if outcome.retry_in is not None:
                    values["next_attempt_at"] = now + timedelta(seconds=outcome.retry_in)
                # only the claim holder records: a lease taken over by another worker wins
                session.execute(update(Delivery).where(Delivery.id == delivery.id,
                                                       Delivery.claim == delivery.claim).values(**values))
                if outcome.unreachable:
                    session.execute(update(Binding).where(Binding.openid == delivery.openid).values(reachable=False))
        return len(batch)

    def drain(self, timeout: float = 30.0) -> int:
        """Deliver everything due now (tests, `houqin outbox --drain`); returns how many were handled."""
        total, deadline = 0, time.monotonic() + timeout
        while time.monotonic() < deadline:
            handled = self.run_once()
            if not handled:
                break
            total += handled
        return total

    def run_forever(self, stop: threading.Event, idle_sleep: float = 0.5) -> None:
        log.info("push worker %s started", self.worker_id)
        while not stop.is_set():
            try:
                if not self.run_once():
                    stop.wait(idle_sleep)
            except Exception:  # noqa: BLE001 - keep the worker alive; the database may be restarting
                log.exception("push worker round failed")
                stop.wait(2.0)
        self.pool.shutdown(wait=True)


def template_data(kind: str, text: str) -> dict[str, dict[str, str]]:
    """Template fields: a title line and the content; operators map each push kind to a template
    whose body uses {{first.DATA}}, {{content.DATA}} and {{remark.DATA}}."""
    first, _, rest = text.partition("\n")
    return {"first": {"value": first}, "content": {"value": rest or first}, "remark": {"value": "后勤助手"}}
