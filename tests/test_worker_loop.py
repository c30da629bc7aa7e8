"""The worker's long-running loop (`houqin worker`, `houqin serve`): pipelined sending keeps the
5-message budget with sends in flight, several workers deliver exactly once through errors, and a
stop finishes and records what is in flight."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest
from sqlalchemy import select

from bot.outbox import Outbox
from bot.school import TEMPLATES_TTL
from bot.services import Services
from bot.worker import WINDOW_CLOSED, PushWorker
from models import Delivery, Person
from models.outbox import PENDING, SENDING, SENT, UNDELIVERABLE


def queue(services: Services, names: list[str], text: str) -> None:
    with services.factory() as s, s.begin():
        people = list(s.scalars(select(Person).where(Person.name.in_(names))))
        Outbox(s, services.settings, services.now()).notify(people, "notice", text)


def rows(services: Services) -> list[Delivery]:
    with services.factory() as s:
        return list(s.scalars(select(Delivery).order_by(Delivery.id)).unique())


def settled(services: Services) -> Callable[[], bool]:
    return lambda: all(r.status not in (PENDING, SENDING) for r in rows(services))


def run_until(workers: list[PushWorker], done: Callable[[], bool], limit: float = 30) -> None:
    stop = threading.Event()
    threads = [threading.Thread(target=w.run_forever, args=(stop, 0.05)) for w in workers]
    for t in threads:
        t.start()
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and not done():
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(timeout=20)
    assert not any(t.is_alive() for t in threads)


def worker(services: Services, batch: int) -> PushWorker:
    return PushWorker(services.factory, services.settings, services.api, clock=services.now, batch_size=batch)


@pytest.mark.parametrize("batch", [2, 3, 50])
def test_budget_counts_sends_in_flight(services, people, wechat_user, fake_wechat, batch: int) -> None:
    people.add("张丽", "teacher")
    wechat_user("张丽")
    for i in range(8):
        queue(services, ["张丽"], f"通知{i}")
    fake_wechat.state.latency = 0.1
    run_until([worker(services, batch)], settled(services))
    statuses = [r.status for r in rows(services)]
    assert statuses.count(SENT) == 5 and statuses.count(UNDELIVERABLE) == 3, statuses
    assert len(fake_wechat.sent_to("张丽")) == 5
    assert all(r.last_error == WINDOW_CLOSED for r in rows(services) if r.status == UNDELIVERABLE)


def test_many_workers_deliver_exactly_once_through_errors(services, people, wechat_user, fake_wechat) -> None:
    names = [f"老师{i}" for i in range(6)]
    for name in names:
        people.add(name, "teacher")
        wechat_user(name)
    for k in range(5):
        queue(services, names, f"并发{k}")
    fake_wechat.state.error_rate = 0.2
    fake_wechat.state.latency = 0.01
    run_until([worker(services, b) for b in (2, 3, 5, 64)], settled(services), limit=40)
    delivered = rows(services)
    assert len(delivered) == 30 and {r.status for r in delivered} == {SENT}, Counter(r.status for r in delivered)
    sent = Counter((c.openid, c.text) for c in fake_wechat.sent())
    assert len(sent) == 30 and set(sent.values()) == {1}


def test_stop_finishes_and_records_what_is_in_flight(services, people, wechat_user, fake_wechat) -> None:
    names = [f"家长{i}" for i in range(20)]
    for name in names:
        people.add(name, "teacher")
        wechat_user(name)
    services.api.token()
    queue(services, names, "停止前")
    fake_wechat.state.latency = 0.3
    stop = threading.Event()
    thread = threading.Thread(target=worker(services, 10).run_forever, args=(stop, 0.05))
    thread.start()
    time.sleep(0.15)
    stop.set()
    thread.join(timeout=10)
    statuses = Counter(r.status for r in rows(services))
    assert statuses[SENDING] == 0, statuses
    assert statuses[SENT] == len(fake_wechat.sent()) and statuses[SENT] >= 1, statuses
    assert statuses[SENT] + statuses[PENDING] == 20


def test_templates_set_reaches_a_running_worker(services, people, wechat_user, fake_wechat, houqin) -> None:
    """`houqin templates set` while a worker runs: its next batch goes with the new template id (the
    worker re-reads the school's mapping), the first one with none (a customer-service message)."""
    people.add("张丽", "teacher")
    wechat_user("张丽")
    fake_wechat.state.templates.update({"TPL_NOTICE_A": ("通知", "通知内容：{{thing1.DATA}}"),
                                        "TPL_NOTICE_B": ("通知", "通知内容：{{thing1.DATA}}")})
    running = worker(services, 8)
    services.monotonic = itertools.count(0, TEMPLATES_TTL).__next__  # every look re-reads (the default: every 5 s)
    stop = threading.Event()
    thread = threading.Thread(target=running.run_forever, args=(stop, 0.05))
    thread.start()
    try:
        def send(text: str, expected: int) -> None:
            queue(services, ["张丽"], text)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and len(fake_wechat.sent_to("张丽")) < expected:
                time.sleep(0.05)
            assert len(fake_wechat.sent_to("张丽")) == expected

        send("停水通知", 1)
        set_a = houqin("templates", "set", "notice=TPL_NOTICE_A", "--data", '{"thing1": "{title}"}')
        assert set_a.exit_code == 0, set_a.output
        send("停电通知", 2)
        assert houqin("templates", "set", "notice=TPL_NOTICE_B").exit_code == 0
        send("消防演练通知", 3)
    finally:
        stop.set()
        thread.join(timeout=20)
    first, second, third = fake_wechat.sent_to("张丽")
    assert first.endpoint == "message/custom/send" and "停水通知" in first.body["text"]["content"]
    assert second.endpoint == "message/template/send" and second.body["template_id"] == "TPL_NOTICE_A"
    assert third.endpoint == "message/template/send" and third.body["template_id"] == "TPL_NOTICE_B"
    assert not thread.is_alive() and {r.status for r in rows(services)} == {SENT}


def test_schools_share_one_send_pool_each_within_its_concurrency(services, people, wechat_user,
                                                                 fake_wechat) -> None:
    """Push workers in one process (a county's schools) send on one bounded pool of threads, not a pool
    each, and each still has at most HOUQIN_PUSH_CONCURRENCY of its sends in flight."""
    names = [f"家长{i}" for i in range(12)]
    for name in names:
        people.add(name, "teacher")
        wechat_user(name)
    queue(services, names, "下周菜单已发布")
    fake_wechat.state.latency = 0.05
    settings = services.settings.with_overrides(push_concurrency=2, send_threads=3)
    workers = [PushWorker(services.factory, settings, services.api, clock=services.now, batch_size=4)
               for _ in range(3)]
    lock = threading.Lock()
    running: Counter[int] = Counter()
    peak: Counter[int] = Counter()
    threads: set[int] = set()
    for i, w in enumerate(workers):
        def counting(*args, _i=i, _send=w._send):  # type: ignore[no-untyped-def]
            with lock:
                running[_i] += 1
                peak[_i] = max(peak[_i], running[_i])
                threads.add(threading.get_ident())
            try:
                return _send(*args)
            finally:
                with lock:
                    running[_i] -= 1
        w._send = counting  # type: ignore[method-assign]
    run_until(workers, settled(services))
    assert {r.status for r in rows(services)} == {SENT}
    assert sorted(c.openid for c in fake_wechat.sent()) == sorted(fake_wechat.names[n] for n in names)
    assert peak and max(peak.values()) <= 2, peak  # each worker: its own concurrency, as with its own pool
    assert len(threads) <= 3, threads  # three workers x 2 would have been up to 6 threads of their own
