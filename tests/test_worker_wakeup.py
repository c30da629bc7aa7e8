"""An idle worker on PostgreSQL waits in LISTEN and wakes at the commit of a queued push (migration 0026's
trigger NOTIFYs with the schema as payload), long before its next poll; several such workers still send
each delivery once. On SQLite there is nothing to listen to: it keeps polling."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from sqlalchemy import text, update

from bot.services import Services
from bot.worker import LISTEN_POLL, PushWorker, Wakeup
from models import Delivery
from models.outbox import PENDING, SENT
from tests.test_worker_loop import queue, rows, worker


@pytest.fixture
def pg_services(services: Services) -> Services:
    if services.db_engine.dialect.name != "postgresql":
        pytest.skip("LISTEN/NOTIFY exists on PostgreSQL only; on SQLite the worker polls")
    return services


def start(workers: list[PushWorker], services: Services) -> tuple[threading.Event, list[threading.Thread]]:
    stop = threading.Event()
    threads = [threading.Thread(target=w.run_forever, args=(stop, 0.05, Wakeup.for_engine(services.db_engine)))
               for w in workers]
    for t in threads:
        t.start()
    return stop, threads


def finish(stop: threading.Event, threads: list[threading.Thread]) -> None:
    stop.set()
    for t in threads:
        t.join(timeout=20)
    assert not any(t.is_alive() for t in threads)


def wait_sent(services: Services, count: int, limit: float) -> float:
    """Seconds until `count` deliveries are sent (fails after `limit`)."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if sum(r.status == SENT for r in rows(services)) >= count:
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(f"not sent within {limit} s: {Counter(r.status for r in rows(services))}")


def test_sqlite_has_no_wakeup(services) -> None:
    if services.db_engine.dialect.name == "sqlite":
        assert Wakeup.for_engine(services.db_engine) is None
    else:
        assert isinstance(Wakeup.for_engine(services.db_engine), Wakeup)


def test_idle_worker_wakes_on_notify_well_before_its_poll(pg_services, people, wechat_user, fake_wechat) -> None:
    services = pg_services
    people.add("张丽", "teacher")
    wechat_user("张丽")
    services.api.token()
    stop, threads = start([worker(services, 16)], services)
    try:
        time.sleep(1.0)  # it has looked, found nothing, and sits in LISTEN for LISTEN_POLL seconds
        queue(services, ["张丽"], "午饭后操场集合")
        took = wait_sent(services, 1, LISTEN_POLL)
        time.sleep(0.6)  # and again: once woken, it goes back to LISTEN
        queue(services, ["张丽"], "下午三点消防演练")
        took_again = wait_sent(services, 2, LISTEN_POLL)
    finally:
        finish(stop, threads)
    assert took < 1.0 and took_again < 1.0, (took, took_again, LISTEN_POLL)
    assert [c.text for c in fake_wechat.sent_to("张丽")] == ["午饭后操场集合", "下午三点消防演练"]


def test_a_retry_set_back_to_pending_wakes_it_too(pg_services, people, wechat_user, fake_wechat) -> None:
    services = pg_services
    people.add("张丽", "teacher")
    wechat_user("张丽")
    services.api.token()
    queue(services, ["张丽"], "重发这一条")
    with services.factory() as s, s.begin():  # as if it had failed for good: not due
        s.execute(update(Delivery).values(status="failed"))
    stop, threads = start([worker(services, 16)], services)
    try:
        time.sleep(1.0)
        with services.factory() as s, s.begin():  # `houqin outbox retry`
            s.execute(update(Delivery).values(status=PENDING, next_attempt_at=services.now()))
        took = wait_sent(services, 1, LISTEN_POLL)
    finally:
        finish(stop, threads)
    assert took < 1.0, took


def test_a_notify_for_another_schema_does_not_wake_it(pg_services) -> None:
    wakeup = Wakeup(pg_services.db_engine)
    try:
        assert wakeup.wait(0.01) is False  # listening from here on
        with pg_services.db_engine.begin() as conn:
            conn.execute(text("SELECT pg_notify('houqin_outbox', 'another_school')"))
        assert wakeup.wait(0.3) is False
        with pg_services.db_engine.begin() as conn:
            conn.execute(text("SELECT pg_notify('houqin_outbox', current_schema())"))
        assert wakeup.wait(2.0) is True
    finally:
        wakeup.close()


def test_two_listening_workers_send_each_delivery_once(pg_services, people, wechat_user, fake_wechat) -> None:
    services = pg_services
    names = [f"老师{i}" for i in range(8)]
    for name in names:
        people.add(name, "teacher")
        wechat_user(name)
    services.api.token()
    fake_wechat.state.latency = 0.01
    fake_wechat.state.error_rate = 0.1
    stop, threads = start([worker(services, 3), worker(services, 5)], services)
    try:
        time.sleep(0.8)
        for k in range(4):
            queue(services, names, f"通知{k}")
        wait_sent(services, 32, 30)
    finally:
        finish(stop, threads)
    sent = Counter((c.openid, c.text) for c in fake_wechat.sent())
    assert len(sent) == 32 and set(sent.values()) == {1}, sent
