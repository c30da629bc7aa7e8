"""The outbox and the push worker (issue 2, section 5), on SQLite and PostgreSQL.

Users write through the real webhook (so their 48-hour window is real); pushes are queued with
`Outbox.notify` inside a transaction, as handlers do; the worker delivers to the fake WeChat.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.config import Settings
from bot.outbox import NOT_BOUND, NOT_FOLLOWING, Outbox, quiet_until
from bot.services import Services
from bot.wechat.gateway import WeChatApi
from bot.wechat.templates import Template
from bot.worker import UNSUBSCRIBED, WINDOW_CLOSED, PushWorker, RateLimiter
from models import Binding, Delivery, Person, Push
from models.outbox import FAILED, PENDING, SENDING, SENT, UNDELIVERABLE

CUSTOM = "message/custom/send"
TEMPLATE = "message/template/send"
NOTICE_TEMPLATE = Template("TPL_NOTICE", {"thing1": "{title}", "time2": "{time}"})
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """The suite's settings with this test's overrides (see `with_settings`)."""
    return settings.with_overrides(**getattr(request, "param", {}))


def with_settings(**overrides: Any) -> pytest.MarkDecorator:
    """Run a test with changed settings: templates, attempts, backoff, lease, rate..."""
    return pytest.mark.parametrize("settings", [overrides], indirect=True, ids=["settings"])


@pytest.fixture
def make_worker(services: Services) -> Iterator[Callable[..., PushWorker]]:
    """Extra push workers (each its own claim identity), shut down after the test."""
    made: list[PushWorker] = []

    def make(api: Any = None, **options: Any) -> PushWorker:
        worker = PushWorker(services.factory, services.settings, api or services.api, clock=services.now,
                            **options)
        made.append(worker)
        return worker

    yield make
    for worker in made:
        worker.pool.shutdown(wait=True)


def queue(services: Services, names: str | list[str], text: str, kind: str = "notice", **options: Any) -> int:
    """Queue a push the way a handler does: `Outbox.notify` inside the caller's transaction."""
    wanted = [names] if isinstance(names, str) else names
    with services.factory() as s, s.begin():
        recipients = list(s.scalars(select(Person).where(Person.name.in_(wanted))))
        assert len(recipients) == len(wanted), f"unknown people in {wanted}"
        push = Outbox(s, services.settings, services.now()).notify(recipients, kind, text, **options).push
        assert push is not None
        s.flush()
        return push.id


def deliveries(services: Services, push_id: int | None = None) -> list[Delivery]:
    with services.factory() as s:
        query = select(Delivery).order_by(Delivery.id)
        if push_id is not None:
            query = query.where(Delivery.push_id == push_id)
        return list(s.scalars(query).unique())


def only(services: Services, push_id: int) -> Delivery:
    rows = deliveries(services, push_id)
    assert len(rows) == 1, rows
    return rows[0]


def binding(services: Services, openid: str) -> Binding:
    with services.factory() as s:
        row = s.get(Binding, openid)
        assert row is not None
        return row


def calls(fake: Any, endpoint: str, openid: str | None = None) -> list[Any]:
    """Every call the fake received at `endpoint` (refused ones included)."""
    return [c for c in fake.calls if c.endpoint == endpoint and (openid is None or c.openid == openid)]


def token_fetches(fake: Any) -> int:
    return len(calls(fake, "stable_token"))


@pytest.fixture
def teacher(people: Any, wechat_user: Any, clock: Any) -> Any:
    """张丽, a teacher who has just bound through the webhook on a Monday morning: her window is open."""
    clock.set("2026-11-23 10:00")
    people.add("张丽", "teacher")
    return wechat_user("张丽")


# -- the push row and the transaction -----------------------------------------------------------
def test_push_is_written_in_the_same_transaction_as_the_change(services, people):
    people.add("张丽", "teacher")

    with pytest.raises(RuntimeError), services.factory() as s, s.begin():
        s.add(Person(name="新同事"))  # the change that causes the push
        person = s.scalar(select(Person).where(Person.name == "张丽"))
        Outbox(s, services.settings, services.now()).notify(person, "notice", "不会发出的通知")
        s.flush()
        raise RuntimeError("the handler failed after queueing")

    with services.factory() as s:
        assert s.scalar(select(func.count()).select_from(Push)) == 0
        assert s.scalar(select(func.count()).select_from(Delivery)) == 0
        assert s.scalar(select(Person).where(Person.name == "新同事")) is None

    with services.factory() as s, s.begin():
        s.add(Person(name="新同事"))
        person = s.scalar(select(Person).where(Person.name == "张丽"))
        Outbox(s, services.settings, services.now()).notify(person, "notice", "会发出的通知")

    with services.factory() as s:
        assert s.scalar(select(Person).where(Person.name == "新同事")) is not None
        assert [p.text for p in s.scalars(select(Push))] == ["会发出的通知"]


def test_notify_without_recipients_queues_nothing_and_deduplicates(services, people, teacher):
    with services.factory() as s, s.begin():
        outbox = Outbox(s, services.settings, services.now())
        assert outbox.notify(None, "notice", "无人").push is None
        assert outbox.notify([], "notice", "无人").push is None
        person = s.scalar(select(Person).where(Person.name == "张丽"))
        push = outbox.notify([person, person], "notice", "一次").push
        assert push is not None
        s.flush()
        push_id = push.id
    assert len(deliveries(services, push_id)) == 1
    assert len(deliveries(services)) == 1


# -- channel choice ------------------------------------------------------------------------------
def test_custom_message_while_window_open_undeliverable_once_closed(services, teacher, fake_wechat, deliver,
                                                                    clock):
    first = queue(services, "张丽", "第一条通知")
    assert deliver() == 1
    row = only(services, first)
    assert (row.status, row.channel, row.attempts, row.last_error) == (SENT, "custom", 1, None)
    assert fake_wechat.sent_to("张丽")[-1].mentions("第一条通知")
    assert calls(fake_wechat, CUSTOM)[-1].body["msgtype"] == "text"

    clock.advance(hours=47, minutes=59)  # 47h59 after her last message: still open
    inside = queue(services, "张丽", "窗口内")
    deliver()
    assert only(services, inside).status == SENT

    clock.advance(minutes=2)  # 48h01: closed
    closed = queue(services, "张丽", "窗口外")
    deliver()
    row = only(services, closed)
    assert (row.status, row.last_error) == (UNDELIVERABLE, WINDOW_CLOSED)
    assert not any(c.mentions("窗口外") for c in fake_wechat.calls)

    teacher.say("我")  # she writes again: the window reopens
    again = queue(services, "张丽", "重新打开")
    deliver()
    assert only(services, again).status == SENT
    assert fake_wechat.sent_to("张丽")[-1].mentions("重新打开")


def test_window_opens_only_on_user_interactions(services, teacher, fake_wechat, deliver, clock):
    clock.advance(hours=49)
    teacher.event("TEMPLATESENDJOBFINISH", Status="success")  # WeChat's notice, not the user
    teacher.event("VIEW", "http://example.com/menu")  # following a link menu does not open it
    teacher.event("LOCATION", Latitude=31.2, Longitude=121.5, Precision=30)
    closed = queue(services, "张丽", "没有互动")
    deliver()
    assert (only(services, closed).status, only(services, closed).last_error) == (UNDELIVERABLE, WINDOW_CLOSED)

    teacher.click("MENU")  # a click event is an interaction
    opened = queue(services, "张丽", "点击菜单后")
    deliver()
    assert only(services, opened).status == SENT


def test_five_message_budget_per_window(services, teacher, fake_wechat, deliver, clock):
    early = [queue(services, "张丽", f"早{i}") for i in range(3)]
    assert deliver() == 3
    late = [queue(services, "张丽", f"晚{i}") for i in range(4)]  # one batch: only 2 fit the budget
    assert deliver() == 4

    statuses = [only(services, p).status for p in early + late]
    assert statuses == [SENT] * 5 + [UNDELIVERABLE] * 2
    assert only(services, late[-1]).last_error == WINDOW_CLOSED
    assert sorted(c.text for c in fake_wechat.sent_to("张丽")) == ["早0", "早1", "早2", "晚0", "晚1"]

    clock.advance(minutes=1)
    teacher.say("帮助")  # a new interaction renews the budget
    renewed = queue(services, "张丽", "新一轮")
    deliver()
    assert only(services, renewed).status == SENT


@with_settings(templates={"drill_notice": NOTICE_TEMPLATE})
def test_template_when_configured_for_the_kind(services, teacher, fake_wechat, deliver, clock):
    clock.advance(hours=72)  # her window has long closed
    drill = queue(services, "张丽", "应急疏散演练\n周三 10:00 全校", kind="drill_notice", url="http://x/drill")
    other = queue(services, "张丽", "没有模板的通知", kind="notice")
    deliver()

    row = only(services, drill)
    assert (row.status, row.channel) == (SENT, "template")
    call = calls(fake_wechat, TEMPLATE)[-1]
    assert call.body["template_id"] == "TPL_NOTICE"
    # the template shows a few short fields; its link opens the push's own page with the whole text
    with services.factory() as s:
        token = s.scalar(select(Push.token).join(Delivery).where(Delivery.id == drill))
    assert token and call.body["url"] == f"{services.settings.public_url}/p/{token}"
    assert call.body["data"]["thing1"] == {"value": "应急疏散演练"} and call.warnings == []
    assert only(services, other).status == UNDELIVERABLE
    assert calls(fake_wechat, CUSTOM) == []


@with_settings(templates={"drill_notice": NOTICE_TEMPLATE})
def test_template_pushes_do_not_spend_the_custom_budget(services, teacher, fake_wechat, deliver):
    for i in range(6):
        queue(services, "张丽", f"演练{i}", kind="drill_notice")
    custom = queue(services, "张丽", "客服消息")
    deliver()
    assert len(calls(fake_wechat, TEMPLATE)) == 6
    assert only(services, custom).status == SENT
    assert only(services, custom).channel == "custom"


def test_not_bound_is_undeliverable_with_reason(services, people, fake_wechat, deliver):
    person = people.add("王五", "teacher")
    push = queue(services, "王五", "给未绑定的人")
    row = only(services, push)
    assert (row.openid, row.status, row.last_error) == (f"person:{person.id}", UNDELIVERABLE, NOT_BOUND)
    assert deliver() == 0
    assert fake_wechat.calls == []


def test_unsubscribed_user_gets_no_push(services, teacher, fake_wechat, deliver):
    queued_before = queue(services, "张丽", "取关前排队")
    teacher.event("unsubscribe")
    deliver()
    row = only(services, queued_before)
    assert (row.status, row.last_error) == (UNDELIVERABLE, UNSUBSCRIBED)

    after = only(services, queue(services, "张丽", "取关后"))
    assert after.openid.startswith("person:")
    assert (after.status, after.last_error) == (UNDELIVERABLE, NOT_FOLLOWING)
    assert calls(fake_wechat, CUSTOM) == []


# -- errors ----------------------------------------------------------------------------------------
@with_settings(push_max_attempts=3)
@pytest.mark.parametrize("error", [-1, 45009, 45011, 500, 502])
def test_transient_error_is_retried_then_gives_up(services, teacher, fake_wechat, deliver, error):
    fake_wechat.script(CUSTOM, error, error)
    recovered = queue(services, "张丽", "重试后送达")
    deliver()
    row = only(services, recovered)
    assert (row.status, row.attempts) == (SENT, 3)
    assert len(calls(fake_wechat, CUSTOM)) == 3
    assert [c.text for c in fake_wechat.sent_to("张丽")] == ["重试后送达"]

    fake_wechat.script(CUSTOM, error, error, error, error)
    lost = queue(services, "张丽", "一直失败")
    deliver()
    row = only(services, lost)
    assert (row.status, row.attempts) == (FAILED, 3)
    assert (f"HTTP {error}" if 500 <= error < 600 else f"{error}:") in (row.last_error or "")
    assert "gave up after 3 attempts" in (row.last_error or "")
    assert len(calls(fake_wechat, CUSTOM)) == 6  # no fourth try
    assert [c.text for c in fake_wechat.sent_to("张丽")] == ["重试后送达"]


@with_settings(push_max_attempts=4, push_backoff_seconds=10.0)
def test_backoff_is_exponential(services, teacher, fake_wechat, clock, make_worker):
    fake_wechat.script(CUSTOM, -1, 45009, 45011, -1)
    push = queue(services, "张丽", "退避")
    worker = make_worker()
    waits = []
    for attempt in (1, 2, 3):
        assert worker.run_once() == 1
        row = only(services, push)
        assert (row.status, row.attempts) == (PENDING, attempt)
        wait = (row.next_attempt_at - clock()).total_seconds()
        waits.append(wait)
        clock.advance(seconds=wait - 1)
        assert worker.run_once() == 0  # not due before its backoff
        clock.advance(seconds=1)
    assert waits == [10.0, 20.0, 40.0]
    assert worker.run_once() == 1
    row = only(services, push)
    assert (row.status, row.attempts) == (FAILED, 4)
    clock.advance(hours=1)
    assert worker.run_once() == 0  # failed is final until an operator retries


@with_settings(push_max_attempts=2)
def test_timeouts_are_retried_then_failed(services, teacher, fake_wechat, make_worker):
    s = services.settings
    api = WeChatApi(s.wechat_api_base, s.wechat_appid, s.wechat_secret, services.token_store, timeout=0.2)
    api.token()  # fetched before the fake slows down
    worker = make_worker(api)
    lost = queue(services, "张丽", "超时两次")
    fake_wechat.state.latency = 0.5
    assert worker.run_once() == 1
    row = only(services, lost)
    assert (row.status, row.attempts) == (PENDING, 1)
    assert "Timeout" in (row.last_error or "")
    assert worker.run_once() == 1
    row = only(services, lost)
    assert (row.status, row.attempts) == (FAILED, 2)

    recovered = queue(services, "张丽", "超时一次")
    assert worker.run_once() == 1
    fake_wechat.state.latency = 0.0
    assert worker.run_once() == 1
    assert (only(services, recovered).status, only(services, recovered).attempts) == (SENT, 2)

    deadline = time.monotonic() + 5  # let the slow calls land before the fake is reset
    while len(calls(fake_wechat, CUSTOM)) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(calls(fake_wechat, CUSTOM)) == 4


@pytest.mark.parametrize("error", [40001, 40014, 42001])
def test_refused_token_is_refreshed_once_and_the_call_retried(services, teacher, fake_wechat, deliver, error):
    queue(services, "张丽", "预热")
    deliver()
    fetched = token_fetches(fake_wechat)

    fake_wechat.script(CUSTOM, error)
    push = queue(services, "张丽", "换令牌后送达")
    deliver()
    row = only(services, push)
    assert (row.status, row.attempts) == (SENT, 1)
    # WeChat's stable_token still answers the refused token: asked once, then replaced by force
    assert token_fetches(fake_wechat) == fetched + 2
    refused, accepted = calls(fake_wechat, CUSTOM)[-2:]
    assert refused.errcode == error and accepted.errcode == 0
    assert refused.params["access_token"] != accepted.params["access_token"]


def test_token_refused_twice_is_not_refreshed_twice_in_one_call(services, teacher, fake_wechat, deliver):
    queue(services, "张丽", "预热")
    deliver()
    fetched = token_fetches(fake_wechat)
    fake_wechat.script(CUSTOM, 40001, 40001)
    push = queue(services, "张丽", "第二次尝试送达")
    deliver()
    assert token_fetches(fake_wechat) == fetched + 2  # the current token, then one force_refresh
    assert (only(services, push).status, only(services, push).attempts) == (SENT, 2)


@pytest.mark.parametrize("error", [43004, 43101])
def test_unreachable_recipient_is_marked_and_not_retried(services, teacher, fake_wechat, deliver, error):
    fake_wechat.script(CUSTOM, error)
    push = queue(services, "张丽", "对方拒收")
    deliver()
    row = only(services, push)
    assert (row.status, row.attempts) == (UNDELIVERABLE, 1)
    assert str(error) in (row.last_error or "")
    assert len(calls(fake_wechat, CUSTOM)) == 1
    assert binding(services, teacher.openid).reachable is False

    later = queue(services, "张丽", "之后的推送")
    deliver()
    assert (only(services, later).status, only(services, later).last_error) == (UNDELIVERABLE, UNSUBSCRIBED)
    assert len(calls(fake_wechat, CUSTOM)) == 1  # not even tried

    teacher.say("我")  # writing to us again makes her reachable
    assert binding(services, teacher.openid).reachable is True
    again = queue(services, "张丽", "恢复")
    deliver()
    assert only(services, again).status == SENT


def test_user_who_unfollowed_without_us_noticing(services, teacher, fake_wechat, deliver):
    fake_wechat.state.unfollowed.add(teacher.openid)
    push = queue(services, "张丽", "已取关")
    deliver()
    assert only(services, push).status == UNDELIVERABLE
    assert "43004" in (only(services, push).last_error or "")
    assert binding(services, teacher.openid).reachable is False


@pytest.mark.parametrize("error", [45015, 45047])
def test_window_refusal_without_template_is_undeliverable(services, teacher, fake_wechat, deliver, error):
    fake_wechat.script(CUSTOM, error)
    push = queue(services, "张丽", "微信说窗口已关")
    deliver()
    row = only(services, push)
    assert (row.status, row.channel, row.attempts) == (UNDELIVERABLE, "custom", 1)
    assert str(error) in (row.last_error or "") and WINDOW_CLOSED in (row.last_error or "")
    assert len(calls(fake_wechat, CUSTOM)) == 1


@with_settings(templates={"notice": NOTICE_TEMPLATE})
def test_window_refusal_never_hits_a_kind_with_template(services, teacher, fake_wechat, deliver):
    fake_wechat.script(CUSTOM, 45015, 45047)
    push = queue(services, "张丽", "走模板")
    deliver()
    assert (only(services, push).status, only(services, push).channel) == (SENT, "template")
    assert calls(fake_wechat, CUSTOM) == []


@with_settings(push_max_attempts=3)
def test_other_api_errors_fail_at_once(services, teacher, fake_wechat, deliver):
    fake_wechat.script(CUSTOM, 40003)
    push = queue(services, "张丽", "无效的 openid")
    deliver()
    assert (only(services, push).status, only(services, push).attempts) == (FAILED, 1)
    assert len(calls(fake_wechat, CUSTOM)) == 1


class BrokenApi:
    """An API client with a bug: every send raises something that is not an ApiError."""

    def send_text(self, openid: str, text: str) -> None:
        raise RuntimeError("a bug in the client")

    def send_template(self, openid: str, template_id: str, data: Any, url: str = "") -> None:
        raise RuntimeError("a bug in the client")


@with_settings(push_max_attempts=2)
def test_a_bug_while_sending_is_retried_then_failed(services, teacher, make_worker):
    push = queue(services, "张丽", "客户端有缺陷")
    assert make_worker(BrokenApi()).drain(timeout=10) == 2
    row = only(services, push)
    assert (row.status, row.attempts) == (FAILED, 2)
    assert "RuntimeError: a bug in the client" in (row.last_error or "")


# -- exactly once ----------------------------------------------------------------------------------
def test_concurrent_workers_deliver_each_push_exactly_once(services, people, wechat_user, fake_wechat,
                                                           make_worker):
    names = [f"老师{i}" for i in range(6)]
    for name in names:
        people.add(name, "teacher")
        wechat_user(name)
    pushes = [queue(services, names, f"并发通知{k}") for k in range(5)]  # 30 deliveries, within budgets

    workers = [make_worker(batch_size=2) for _ in range(4)]
    start = threading.Barrier(len(workers))
    handled = [0] * len(workers)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            start.wait(timeout=10)
            handled[i] = workers[i].drain(timeout=20)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors and not any(t.is_alive() for t in threads)

    rows = [d for p in pushes for d in deliveries(services, p)]
    assert len(rows) == 30
    assert {(d.status, d.attempts) for d in rows} == {(SENT, 1)}
    assert sum(handled) == 30
    sent = Counter((c.openid, c.text) for c in fake_wechat.sent())
    assert len(sent) == 30 and set(sent.values()) == {1}


@with_settings(push_lease_seconds=30.0)
def test_crashed_workers_deliveries_are_resent_after_the_lease(services, teacher, fake_wechat, clock,
                                                               make_worker):
    pushes = [queue(services, "张丽", f"崩溃前{i}") for i in range(3)]
    crashed = make_worker()
    assert len(crashed.claim()) == 3  # ...and the process dies before sending

    survivor = make_worker()
    assert survivor.drain() == 0
    assert {only(services, p).status for p in pushes} == {SENDING}
    clock.advance(seconds=29)
    assert survivor.drain() == 0  # the lease still holds
    assert fake_wechat.sent() == []

    clock.advance(seconds=2)
    assert survivor.drain() == 3
    assert {(only(services, p).status, only(services, p).attempts) for p in pushes} == {(SENT, 2)}
    assert sorted(c.text for c in fake_wechat.sent_to("张丽")) == ["崩溃前0", "崩溃前1", "崩溃前2"]


@with_settings(push_lease_seconds=30.0)
def test_other_pushes_are_not_held_up_by_a_crashed_worker(services, teacher, fake_wechat, make_worker):
    held = queue(services, "张丽", "被占用")
    make_worker().claim()
    free = queue(services, "张丽", "未被占用")
    assert make_worker().drain() == 1
    assert only(services, free).status == SENT
    assert only(services, held).status == SENDING


# -- quiet hours -----------------------------------------------------------------------------------
def test_quiet_until():
    s = Settings(wechat_token="t", wechat_appid="a", wechat_secret="s", secret_key="k", database_url="sqlite://")

    def at(local: str) -> datetime:
        return datetime.strptime(local, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI).astimezone(UTC)

    seven_next = at("2026-11-24 07:00")
    assert quiet_until(at("2026-11-23 20:59"), s) is None
    assert quiet_until(at("2026-11-23 21:00"), s) == seven_next
    assert quiet_until(at("2026-11-23 23:59"), s) == seven_next
    assert quiet_until(at("2026-11-24 05:00"), s) == seven_next
    assert quiet_until(at("2026-11-24 07:00"), s) is None


def test_quiet_hours_hold_parent_pushes_until_seven(services, people, wechat_user, fake_wechat, deliver,
                                                    clock):
    clock.set("2026-11-23 20:30")
    for name, roles in [("王家长", ("parent",)), ("李老师", ("teacher",)), ("赵老师", ("teacher", "parent"))]:
        people.add(name, *roles)
        wechat_user(name)

    clock.set("2026-11-23 22:00")
    menu = queue(services, ["王家长", "李老师", "赵老师"], "下周菜单")
    alarm = queue(services, "王家长", "校车警报", safety=True)
    assert deliver() == 3

    by_name = {fake_wechat.names[n]: n for n in ("王家长", "李老师", "赵老师")}
    menu_rows = {by_name[d.openid]: d for d in deliveries(services, menu)}
    assert menu_rows["李老师"].status == SENT and menu_rows["赵老师"].status == SENT
    assert menu_rows["王家长"].status == PENDING
    assert menu_rows["王家长"].next_attempt_at.astimezone(SHANGHAI) == datetime(2026, 11, 24, 7, 0,
                                                                               tzinfo=SHANGHAI)
    assert only(services, alarm).status == SENT
    assert [c.text for c in fake_wechat.sent_to("王家长")] == ["校车警报"]

    clock.set("2026-11-24 06:59")
    assert deliver() == 0
    clock.set("2026-11-24 07:00")
    assert deliver() == 1
    assert [c.text for c in fake_wechat.sent_to("王家长")] == ["校车警报", "下周菜单"]


# -- rate and concurrency settings ----------------------------------------------------------------
def test_rate_limiter_spaces_calls():
    limiter = RateLimiter(20.0)
    started = time.monotonic()
    for _ in range(11):
        limiter.wait()
    elapsed = time.monotonic() - started
    assert 0.45 <= elapsed < 5.0  # ten gaps of 1/20 s

    unlimited = RateLimiter(0.0)
    started = time.monotonic()
    for _ in range(1000):
        unlimited.wait()
    assert time.monotonic() - started < 0.5


def test_rate_limiter_is_shared_by_threads():
    limiter = RateLimiter(50.0)
    started = time.monotonic()
    threads = [threading.Thread(target=lambda: [limiter.wait() for _ in range(5)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert 0.35 <= time.monotonic() - started < 5.0  # 20 calls, 19 gaps of 1/50 s


@with_settings(push_rate_per_second=10.0, push_concurrency=4)
def test_worker_honours_the_rate_setting(services, people, wechat_user, fake_wechat, deliver):
    for name in ("甲老师", "乙老师"):
        people.add(name, "teacher")
        wechat_user(name)
    for i in range(3):
        queue(services, ["甲老师", "乙老师"], f"限速{i}")
    started = time.monotonic()
    assert deliver() == 6
    elapsed = time.monotonic() - started
    assert 0.45 <= elapsed < 10.0  # six sends at 10/s: at least five gaps of 0.1 s
    assert len(fake_wechat.sent()) == 6


@with_settings(push_concurrency=8)
def test_worker_sends_concurrently(services, people, wechat_user, fake_wechat, deliver):
    names = [f"并发{i}" for i in range(8)]
    for name in names:
        people.add(name, "teacher")
        wechat_user(name)
    services.api.token()  # fetched before the fake slows down
    queue(services, names, "同时发")
    fake_wechat.state.latency = 0.3
    assert deliver() == 8
    answered = sorted(c.at for c in fake_wechat.sent())  # each call is logged after its 0.3 s
    assert len(answered) == 8
    assert answered[-1] - answered[0] < 1.5  # one at a time, they would span at least 7 × 0.3 s
