"""The database down loses nothing: the webhook answers a signed apology, the message waits in
instance/spool/, and the next replayer (a request, a health check, the serve/worker tick, or
`houqin spool replay`) files it once, in arrival order, and pushes the real reply."""

from __future__ import annotations

import json
import shutil
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select

from bot import create_app
from bot.engine import Context, Conversation, Incoming, Reply
from bot.inbox import APOLOGY, BUSY
from bot.outbox import REPLY_KIND
from bot.services import Services
from bot.wechat.simulator import WeChatUser
from models import Delivery, InboundMessage, Push, RepairTicket


@contextmanager
def database_down(services: Services) -> Iterator[None]:
    """The database stops answering, as a stopped server does: pooled connections are dropped and
    every new connection is refused by the driver."""
    engine = services.db_engine
    refused = engine.dialect.loaded_dbapi.OperationalError

    def refuse(*_: Any) -> None:
        raise refused("connection refused")

    engine.dispose()
    event.listen(engine, "do_connect", refuse)
    try:
        yield
    finally:
        event.remove(engine, "do_connect", refuse)


def spooled(services: Services) -> list[Path]:
    return services.spool.files()


def count(services: Services, model: type[Any], *where: Any) -> int:
    with services.factory() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def tickets(services: Services) -> list[tuple[int, str]]:
    with services.factory() as s:
        return [(t.number, t.description) for t in s.scalars(select(RepairTicket).order_by(RepairTicket.id))]


@pytest.fixture
def staffed(people: Any) -> Any:
    people.add("张丽", "teacher", class_name="三(2)班")
    people.add("殷奇", "staff", categories="电教")
    people.add("周春明", "admin")
    return people


def test_database_down_apologises_spools_and_replay_files_it_once(wechat_user: Any, staffed: Any, services: Services,
                                                                  houqin: Any, deliver: Any, fake_wechat: Any) -> None:
    wechat_user("殷奇")
    teacher = wechat_user("张丽")
    with database_down(services):
        reply = teacher.say("报修 三(2)班 投影仪不亮")
        assert reply.status == 200 and "<Encrypt>" in reply.body  # signed and encrypted like any reply
        assert reply.text == BUSY
        [path] = spooled(services)
        assert path.parent == services.settings.instance_dir / "spool"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        kept = json.loads(path.read_text(encoding="utf-8"))
        assert kept["openid"] == teacher.openid and kept["message"]["Content"] == "报修 三(2)班 投影仪不亮"
    assert count(services, InboundMessage, InboundMessage.content == "报修 三(2)班 投影仪不亮") == 0

    result = houqin("spool", "replay")
    assert "已重放 1 条消息" in result.output
    assert spooled(services) == []
    assert tickets(services) == [(1, "投影仪不亮")]
    assert count(services, InboundMessage, InboundMessage.content == "报修 三(2)班 投影仪不亮") == 1
    deliver()
    [pushed] = fake_wechat.sent_to("张丽")
    assert pushed.mentions("R1") and pushed.endpoint.endswith("custom/send")
    assert fake_wechat.sent_to("殷奇")[-1].mentions("R1", "投影仪不亮")


def test_the_same_msgid_from_two_senders_is_spooled_twice_and_both_handled(wechat_user: Any, staffed: Any,
                                                                           services: Services) -> None:
    """MsgIds are unique per sender only: the spool keys on sender and MsgId, as the inbox does."""
    teacher, staff = wechat_user("张丽"), wechat_user("殷奇")
    with database_down(services):
        assert teacher.send("text", Content="报修 三(2)班 投影仪不亮", MsgId=5555).text == BUSY
        assert staff.send("text", Content="我", MsgId=5555).text == BUSY
        assert len(spooled(services)) == 2
    assert services.inbox.replay() == 2
    assert tickets(services) == [(1, "投影仪不亮")]
    assert count(services, InboundMessage, InboundMessage.openid == staff.openid, InboundMessage.content == "我") == 1


def test_wechat_retrying_while_the_database_is_down_is_spooled_once(wechat_user: Any, staffed: Any,
                                                                    services: Services) -> None:
    teacher = wechat_user("张丽")
    request = teacher.request(teacher.message("text", Content="报修 三(2)班 投影仪不亮"))
    with database_down(services):
        assert [teacher.post(*request).text for _ in range(3)] == [BUSY] * 3
        assert len(spooled(services)) == 1
    assert services.inbox.replay() == 1
    assert tickets(services) == [(1, "投影仪不亮")]
    assert teacher.post(*request).text.startswith("已提交报修 R1")  # the retry now gets the real reply


def test_a_replay_repeated_after_a_crash_handles_nothing_twice(wechat_user: Any, staffed: Any, services: Services,
                                                               tmp_path: Path, deliver: Any, fake_wechat: Any) -> None:
    teacher = wechat_user("张丽")
    with database_down(services):
        teacher.say("报修 三(2)班 投影仪不亮")
    [path] = spooled(services)
    copy = shutil.copy(path, tmp_path / "copy.json")
    assert services.inbox.replay() == 1
    shutil.copy(copy, path)  # as if the replayer died between the commit and deleting the file
    assert services.inbox.replay() == 1
    assert spooled(services) == []
    assert tickets(services) == [(1, "投影仪不亮")]
    assert count(services, InboundMessage, InboundMessage.content == "报修 三(2)班 投影仪不亮") == 1
    deliver()
    assert len(fake_wechat.sent_to("张丽")) == 1


def test_a_second_replayer_leaves_the_spool_to_the_first(wechat_user: Any, staffed: Any, services: Services) -> None:
    teacher = wechat_user("张丽")
    with database_down(services):
        teacher.say("报修 三(2)班 投影仪不亮")
        teacher.say("报修 三(2)班 空调漏水")
    inside, release = threading.Event(), threading.Event()

    def slow(msg: Incoming, received_at: datetime) -> str:
        inside.set()
        release.wait(10)
        return services.inbox.replayed(msg, received_at)

    first = threading.Thread(target=services.spool.replay, args=(slow,))
    first.start()
    try:
        assert inside.wait(10)
        other = Services.from_settings(services.settings, schema=services.schema)  # another process's view
        assert other.inbox.replay() == 0
        assert len(spooled(services)) == 2
    finally:
        release.set()
        first.join(10)
        other.db_engine.dispose()
    assert spooled(services) == []
    assert tickets(services) == [(1, "投影仪不亮"), (2, "空调漏水")]  # arrival order


def test_the_next_request_replays_the_spool_before_its_own_message(wechat_user: Any, staffed: Any,
                                                                   services: Services, deliver: Any,
                                                                   fake_wechat: Any) -> None:
    teacher = wechat_user("张丽")
    with database_down(services):
        assert teacher.say("报修").text == BUSY
    reply = teacher.say("三(2)班")  # the answer to the question the spooled 报修 asks
    assert "描述" in reply.text, reply.text
    assert spooled(services) == []
    deliver()
    assert "地点" in fake_wechat.sent_to("张丽")[-1].text  # the reply 报修 got, pushed


def test_healthz_is_503_without_details_while_the_database_is_down(client: Any, wechat_user: Any, staffed: Any,
                                                                   services: Services) -> None:
    teacher = wechat_user("张丽")
    with database_down(services):
        teacher.say("报修 三(2)班 投影仪不亮")
        res = client.get("/healthz")
        assert res.status_code == 503
        assert res.get_json() == {"status": "error", "database": "unreachable", "spooled": 1}
        assert len(spooled(services)) == 1
    res = client.get("/healthz")  # a health check replays the spool too
    assert res.status_code == 200 and res.get_json() == {"status": "ok", "database": "ok"}
    assert tickets(services) == [(1, "投影仪不亮")]


def test_a_really_unreachable_database_is_recognised(backend: Any, staffed: Any, services: Services,
                                                     tmp_path: Path) -> None:
    """The driver's own failure, not a simulated one: PostgreSQL on a closed loopback port, or a
    SQLite file whose folder is gone."""
    people = staffed
    if backend.name == "postgresql":
        url = "postgresql://127.0.0.1:1/test"
    else:
        url = f"sqlite:///{tmp_path / 'gone' / 'houqin.db'}"
    down = Services.from_settings(services.settings.with_overrides(database_url=url))
    down.clock = services.clock  # the message arrives at the test's time, not the machine's
    shutil.rmtree(tmp_path / "gone", ignore_errors=True)
    client = create_app(services=down).test_client()
    s = services.settings
    user = WeChatUser("o_unreachable_test", token=s.wechat_token, appid=s.wechat_appid, aes_key=s.wechat_aes_key,
                      transport=lambda url, body: (lambda r: (r.status_code, r.data))(
                          client.post(url, data=body, content_type="text/xml")))
    assert user.say(f"绑定 {people.code_of('张丽')}").text == BUSY
    res = client.get("/healthz")
    assert res.status_code == 503 and res.get_json()["database"] == "unreachable"
    assert "127.0.0.1" not in res.get_data(as_text=True) and "sqlite" not in res.get_data(as_text=True)
    assert services.inbox.replay() == 1  # the machine's other process, on the database that works
    with services.factory() as db:
        reply = db.scalar(select(Push.text).join(Delivery).where(Delivery.openid == "o_unreachable_test"))
    assert reply is not None and "绑定成功" in reply


def test_the_background_tick_replays(wechat_user: Any, staffed: Any, services: Services) -> None:
    teacher = wechat_user("张丽")
    with database_down(services):
        teacher.say("报修 三(2)班 投影仪不亮")
    stop = threading.Event()
    tick = threading.Thread(target=services.spool.replay_forever, args=(services.inbox.replayed, stop, 0.01))
    tick.start()
    try:
        for _ in range(1000):
            if not spooled(services):
                break
            stop.wait(0.01)
    finally:
        stop.set()
        tick.join(10)
    assert spooled(services) == []
    assert tickets(services) == [(1, "投影仪不亮")]


def test_houqin_spool_lists_what_waits(wechat_user: Any, staffed: Any, services: Services, houqin: Any) -> None:
    teacher = wechat_user("张丽")
    with database_down(services):
        teacher.say("报修 三(2)班 投影仪不亮")
    [path] = spooled(services)
    result = houqin("spool")
    assert "1 条消息待重放" in result.output and path.name in result.output


def test_a_senders_next_message_waits_behind_their_spooled_one(wechat_user: Any, staffed: Any, services: Services,
                                                                queued: Any, deliver: Any, fake_wechat: Any) -> None:
    teacher, admin = wechat_user("张丽"), wechat_user("周春明")
    with database_down(services):
        assert teacher.say("报修").text == BUSY
    inside, release = threading.Event(), threading.Event()

    def slow(msg: Incoming, received_at: datetime) -> str:
        inside.set()
        release.wait(10)
        return services.inbox.replayed(msg, received_at)

    replayer = threading.Thread(target=services.spool.replay, args=(slow,))  # another process, mid-replay
    replayer.start()
    try:
        assert inside.wait(10)
        assert teacher.say("三(2)班").text == BUSY  # queued behind her 报修
        assert "周春明" in admin.say("我").text  # nobody else waits
    finally:
        release.set()
        replayer.join(10)
    assert spooled(services) == []
    replies = [push.text for push in queued(kind=REPLY_KIND)]  # oldest first
    assert len(replies) == 2 and "报修地点" in replies[0] and "请描述问题" in replies[1], replies
    deliver()
    assert sorted(call.text for call in fake_wechat.sent_to("张丽")) == sorted(replies)


def test_houqin_worker_replays_the_spool(tmp_path: Path) -> None:
    """`houqin worker` as operators run it picks up what a web worker on this machine kept."""
    import subprocess
    import time

    from test_processes import HOUQIN, stop, worker_env

    from bot.db import make_engine, upgrade
    from bot.spool import Spool
    from tests.conftest import make_settings

    settings = make_settings(tmp_path)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    user = WeChatUser("oSpoolWorker", token=settings.wechat_token, appid=settings.wechat_appid,
                      transport=lambda url, body: (500, b""))
    spool = Spool(tmp_path / "instance" / "spool")
    spool.keep(Incoming.from_wechat(user.message("text", Content="帮助")), datetime(2026, 11, 24, 2, 0, tzinfo=UTC))
    env = worker_env(tmp_path, settings)
    worker = subprocess.Popen([*HOUQIN, "worker"], env=env, cwd=tmp_path, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while spool.files() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        assert stop(worker) == 0
    assert spool.files() == []
    with engine.connect() as conn:
        stored = conn.execute(select(InboundMessage.content, InboundMessage.status)).all()
        queued = conn.scalar(select(Push.text).join(Delivery).where(Delivery.openid == "oSpoolWorker"))
    assert stored == [("帮助", "handled")] and queued is not None and "绑定" in queued
    engine.dispose()


def test_a_webhook_that_cannot_get_its_turn_to_write_spools(backend: Any, wechat_user: Any, staffed: Any,
                                                             services: Services) -> None:
    """SQLite: the webhook waits `webhook_db_wait_seconds` in the writer queue, not SQLite's 30 s."""
    if backend.name != "sqlite":
        pytest.skip("the writer queue is SQLite's; PostgreSQL writers do not queue for the whole database")
    teacher = wechat_user("张丽")
    with services.db_engine.begin():  # another writer holds the database
        assert teacher.say("报修 三(2)班 投影仪不亮").text == BUSY
    assert len(spooled(services)) == 1
    assert teacher.say("我的报修").text.count("R1") == 1  # replayed before it
    assert tickets(services) == [(1, "投影仪不亮")]


def test_a_replayed_message_that_hits_a_bug_gets_the_apology_pushed(wechat_user: Any, staffed: Any,
                                                                    services: Services, queued: Any) -> None:
    from test_webhook import use_capabilities

    boom = Conversation("boom_test", title="故障", keywords=["故障"])

    @boom.entry
    def explode(msg: Incoming, ctx: Context) -> Reply:
        raise RuntimeError("deliberate failure in a test handler")

    use_capabilities(services, boom)
    teacher = wechat_user("张丽")
    with database_down(services):
        assert teacher.say("故障 请处理").text == BUSY
    assert services.inbox.replay() == 1
    with services.factory() as db:
        status = db.scalar(select(InboundMessage.status).where(InboundMessage.content == "故障 请处理"))
    assert status == "failed"
    assert [push.text for push in queued(kind=REPLY_KIND)] == [APOLOGY]  # the promised answer, honest
