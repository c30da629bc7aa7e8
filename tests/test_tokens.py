"""The one access token every process shares (issue 2, section 5).

Several OS processes, each configured from environment variables like a `houqin worker`, call the
fake WeChat at once: through the database (SQLite file, PostgreSQL schema) or Redis, however many
processes run, WeChat sees one token fetch per token lifetime — also when the token goes stale.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import select, update

from bot.config import Settings, load_settings
from bot.db import make_engine, upgrade
from bot.services import Services
from bot.wechat.fake import RENEW_BEFORE, SECRET_IN_URL, FakeWeChat
from bot.wechat.gateway import WeChatApi
from bot.wechat.tokens import FORCE_SECONDS, DatabaseTokenStore, RedisTokenStore
from models import AccessToken, utcnow
from models.outbox import FAILED, SENT
from tests.conftest import make_settings
from tests.test_outbox import only
from tests.test_outbox import queue as queue_push
from tests.test_processes import HOUQIN, stop, worker_env

PROCESSES = 4
CALLS = 5
BARRIER_SECONDS = 60
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _redis_why() -> str:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
        return ""
    except Exception as exc:  # noqa: BLE001 - any failure means "no Redis here"
        return f"Redis not reachable at {REDIS_URL}: {type(exc).__name__}"


def _process_main(env: dict[str, str], schema: str | None, barrier: Any, results: Any) -> None:
    """One `houqin worker`-like process: settings from the environment, CALLS sends; then, after the
    parent has made WeChat forget every token, CALLS more."""
    try:
        services = Services.from_settings(load_settings(env), schema=schema)
        api = services.api
        seen: list[list[str]] = [[], []]
        for phase in (0, 1):
            barrier.wait(BARRIER_SECONDS)  # start together
            for i in range(CALLS):
                api.send_text("o_token_probe", f"{os.getpid()} {phase}.{i}")
                seen[phase].append(api.token())
            barrier.wait(BARRIER_SECONDS)  # phase done; the parent checks and expires tokens
        services.db_engine.dispose()
        results.put(("ok", seen))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        barrier.abort()
        results.put(("error", f"{type(exc).__name__}: {exc}"))


def run_processes(fake: Any, env: dict[str, str], schema: str | None = None) -> list[list[list[str]]]:
    """PROCESSES processes × CALLS sends, twice; WeChat's tokens are expired between the phases.
    Asserts one fetch per phase for this appid and returns what each process saw."""
    appid = env["WECHAT_APPID"]

    def fetches() -> int:
        return len([c for c in fake.calls if c.endpoint == "stable_token" and c.body.get("appid") == appid])

    # fresh interpreters, forked from a server that has imported the project once (fast to start)
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["bot.services", "bot.config", "bot.wechat.tokens"])
    barrier = ctx.Barrier(PROCESSES + 1)
    results = ctx.Queue()
    procs = [ctx.Process(target=_process_main, args=(env, schema, barrier, results)) for _ in range(PROCESSES)]
    for p in procs:
        p.start()
    try:
        total_before = fake.state.token_fetches
        barrier.wait(BARRIER_SECONDS)  # phase 0 starts
        barrier.wait(BARRIER_SECONDS)  # phase 0 done
        assert fetches() == 1
        assert fake.state.token_fetches == total_before + 1
        fake.expire_tokens()  # WeChat now refuses the shared token (40001)
        barrier.wait(BARRIER_SECONDS)  # phase 1 starts
        barrier.wait(BARRIER_SECONDS)  # phase 1 done
        assert fetches() == 2
        outcomes = [results.get(timeout=BARRIER_SECONDS) for _ in procs]
    except BaseException as exc:
        barrier.abort()
        reported = []
        while True:
            try:
                reported.append(results.get(timeout=1))
            except queue.Empty:
                break
        raise AssertionError(f"{exc!r}; the processes reported {reported}") from exc
    finally:
        for p in procs:
            p.join(timeout=BARRIER_SECONDS)
            if p.is_alive():
                p.kill()
    assert all(kind == "ok" for kind, _ in outcomes), outcomes
    assert all(p.exitcode == 0 for p in procs)
    sends = [c for c in fake.calls if c.endpoint == "message/custom/send" and c.errcode == 0]
    assert len(sends) == 2 * PROCESSES * CALLS  # every call went through, none lost to the refresh
    return [seen for _, seen in outcomes]


def process_env(s: Settings, appid: str, **extra: str) -> dict[str, str]:
    """What a `houqin worker` process on another machine would have in its environment."""
    return {"WECHAT_TOKEN": s.wechat_token, "WECHAT_APPID": appid, "WECHAT_SECRET": s.wechat_secret,
            "HOUQIN_SECRET_KEY": s.secret_key, "DATABASE_URL": s.database_url,
            "WECHAT_API_BASE": s.wechat_api_base, **extra}


@pytest.fixture
def appid() -> str:
    """A WeChat account of this test's own, so nothing is shared with other tests."""
    return "wxtok" + uuid.uuid4().hex[:11]


@pytest.fixture
def redis_keys(appid: str) -> Iterator[None]:
    why = _redis_why()
    if why:
        pytest.skip(why)
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = [f"houqin:access_token:{appid}{suffix}" for suffix in ("", ":lock", ":fetches", ":forced")]
    client.delete(*keys)
    yield
    client.delete(*keys)
    client.close()


def test_processes_share_one_token_through_the_database(services, fake_wechat, appid):
    seen = run_processes(fake_wechat, process_env(services.settings, appid), services.schema)

    first = {token for proc in seen for token in proc[0]}
    second = {token for proc in seen for token in proc[1]}
    assert len(first) == 1 and len(second) == 1 and first != second
    with services.factory() as s:
        row = s.scalar(select(AccessToken).where(AccessToken.appid == appid))
        assert row is not None
        assert (row.token, row.fetches, row.refreshing_until) == (second.pop(), 2, None)


def test_processes_share_one_token_through_redis(settings, fake_wechat, appid, redis_keys):
    env = process_env(settings, appid, REDIS_URL=REDIS_URL)
    assert isinstance(Services.from_settings(load_settings(env)).token_store, RedisTokenStore)
    seen = run_processes(fake_wechat, env)

    assert len({token for proc in seen for token in proc[0]}) == 1
    assert len({token for proc in seen for token in proc[1]}) == 1
    import redis

    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    assert client.get(f"houqin:access_token:{appid}:fetches") == "2"
    assert client.exists(f"houqin:access_token:{appid}:lock") == 0
    assert client.get(f"houqin:access_token:{appid}") == {t for proc in seen for t in proc[1]}.pop()
    client.close()


def test_stale_token_is_refreshed_once(services, fake_wechat):
    api = services.api
    api.send_text("o_stale_probe", "warm")
    before = fake_wechat.state.token_fetches
    token = api.token()

    fake_wechat.expire_tokens()
    api.send_text("o_stale_probe", "after expiry")
    api.send_text("o_stale_probe", "and again")

    assert fake_wechat.state.token_fetches == before + 1
    assert api.token() != token
    sends = [c for c in fake_wechat.calls if c.endpoint == "message/custom/send"]
    assert [c.errcode for c in sends] == [0, 40001, 0, 0]


class Fetcher:
    """A stand-in for WeChat's token endpoint that counts its calls."""

    def __init__(self) -> None:
        self.count = 0
        self.forced = 0

    def __call__(self, force: bool) -> tuple[str, int]:
        self.count += 1
        self.forced += force
        return f"T{self.count}", 7200


def check_store_protocol(one: Any, other: Any) -> None:
    """`one` and `other` are two processes' stores for the same account."""
    fetch = Fetcher()
    assert one.get() is None
    assert one.refresh(fetch) == "T1"
    assert other.get() == "T1"  # shared, not fetched again
    assert other.refresh(fetch) == "T1"  # a refresh with nothing stale uses the shared token
    assert fetch.count == 1

    assert other.refresh(fetch, stale="T1") == "T2"  # WeChat refused T1
    assert one.get() == "T1"  # the process's own copy, until WeChat refuses it there too
    assert one.refresh(fetch, stale="T1") == "T2"  # someone already replaced it: no fetch
    assert fetch.count == 2
    assert one.get() == other.get() == "T2"


def test_database_store_protocol(services, appid):
    check_store_protocol(DatabaseTokenStore(services.factory, appid), DatabaseTokenStore(services.factory, appid))


def test_redis_store_protocol(appid, redis_keys):
    check_store_protocol(RedisTokenStore(REDIS_URL, appid), RedisTokenStore(REDIS_URL, appid))


def test_failed_fetch_releases_the_refresh_lock(services, appid):
    store = DatabaseTokenStore(services.factory, appid)

    def broken(force: bool) -> tuple[str, int]:
        raise RuntimeError("WeChat is down")

    with pytest.raises(RuntimeError):
        store.refresh(broken)
    assert store.refresh(Fetcher()) == "T1"  # not stuck behind its own lock


# -- stable_token, force_refresh and the IP whitelist (issue 12, section 3) ---------------------------
CUSTOM = "message/custom/send"
WHITELIST_IP = "203.0.113.7"


@pytest.fixture
def teacher(people: Any, wechat_user: Any, clock: Any) -> Any:
    """张丽, bound through the webhook just now: her 48-hour window is open for customer-service pushes."""
    clock.set("2026-11-24 10:00")
    people.add("张丽", "teacher")
    return wechat_user("张丽")


def stable_calls(fake: Any, appid: str) -> list[Any]:
    return [c for c in fake.calls if c.endpoint == "stable_token" and c.body.get("appid") == appid]


def test_token_comes_from_stable_token_with_the_secret_in_the_body(services, teacher, fake_wechat, deliver):
    push = queue_push(services, "张丽", "稳定令牌送达")
    deliver()

    assert only(services, push).status == SENT
    (fetch,) = stable_calls(fake_wechat, services.settings.wechat_appid)
    assert fetch.body == {"grant_type": "client_credential", "appid": services.settings.wechat_appid,
                          "secret": services.settings.wechat_secret, "force_refresh": False}
    assert fetch.params == {}
    assert not [c for c in fake_wechat.calls if c.endpoint == "token"]
    assert fake_wechat.secret_in_url() == []


def test_fake_refuses_the_secret_in_a_url_and_records_it(fake_wechat):
    res = requests.get(fake_wechat.base_url + "/cgi-bin/token",
                       params={"grant_type": "client_credential", "appid": "wxold", "secret": "s3cr3t"}, timeout=5)

    assert res.json()["errcode"] == SECRET_IN_URL and "access_token" not in res.json()
    (call,) = fake_wechat.secret_in_url()
    assert call.endpoint == "token" and call.params["appid"] == "wxold"


def test_fake_stable_token_keeps_its_token_until_forced(fake_wechat, appid):
    def fetch(force: bool) -> dict[str, Any]:
        body = {"grant_type": "client_credential", "appid": appid, "secret": "s", "force_refresh": force}
        return dict(requests.post(fake_wechat.base_url + "/cgi-bin/stable_token", json=body, timeout=5).json())

    def send(token: str) -> int:
        return int(requests.post(fake_wechat.base_url + "/cgi-bin/" + CUSTOM, params={"access_token": token},
                                 json={"touser": "o_probe", "msgtype": "text", "text": {"content": "x"}},
                                 timeout=5).json()["errcode"])

    first = fetch(False)["access_token"]
    assert fetch(False)["access_token"] == first
    forced = fetch(True)["access_token"]
    assert forced != first and fetch(False)["access_token"] == forced
    assert (send(first), send(forced)) == (40001, 0)  # forcing ended the old token at once
    assert fetch(True)["access_token"] == forced  # within 30 s of the last force: nothing refreshed

    fake_wechat.state.tokens[forced] = time.time() + RENEW_BEFORE  # its last 5 minutes
    renewed = fetch(False)
    assert renewed["access_token"] != forced and renewed["expires_in"] > RENEW_BEFORE
    assert send(forced) == send(renewed["access_token"]) == 0  # both work during the hand-over


def test_refused_token_is_force_refreshed_once_per_30_seconds(services, teacher, fake_wechat, deliver):
    appid = services.settings.wechat_appid
    queue_push(services, "张丽", "预热")
    deliver()
    warm = services.api.token()

    fake_wechat.script(CUSTOM, 40001)  # WeChat refuses a token its stable_token still answers
    first = queue_push(services, "张丽", "第一次被拒")
    deliver()
    fake_wechat.script(CUSTOM, 40001)  # and again, within 30 s of the force
    second = queue_push(services, "张丽", "又一次被拒")
    deliver()

    assert only(services, first).status == only(services, second).status == SENT
    assert len(fake_wechat.forced_refreshes(appid)) == 1
    forced = services.api.token()
    assert forced != warm
    refused, retried = [c for c in fake_wechat.calls if c.endpoint == CUSTOM][-2:]
    assert refused.errcode == 40001 and retried.errcode == 0
    assert refused.params["access_token"] == retried.params["access_token"] == forced  # kept, not forced again

    with services.factory() as s, s.begin():  # 30 s later
        s.execute(update(AccessToken).where(AccessToken.appid == appid)
                  .values(forced_at=utcnow() - timedelta(seconds=FORCE_SECONDS)))
    fake_wechat.force_window_passed()
    fake_wechat.script(CUSTOM, 40001)
    third = queue_push(services, "张丽", "三十秒后被拒")
    deliver()
    assert only(services, third).status == SENT
    assert len(fake_wechat.forced_refreshes(appid)) == 2
    assert services.api.token() not in (warm, forced)
    assert fake_wechat.secret_in_url() == []


def check_one_force_across_processes(fake: Any, apis: list[WeChatApi]) -> None:
    """Each api stands for another process; WeChat refuses each one's token once."""
    for api in apis:
        fake.script(CUSTOM, 40001)
        api.send_text("o_force_probe", "refused once")
    assert len(fake.forced_refreshes(apis[0].appid)) == 1
    assert len({api.token() for api in apis}) == 1
    sends = [c for c in fake.calls if c.endpoint == CUSTOM and c.openid == "o_force_probe"]
    assert [c.errcode for c in sends] == [40001, 0] * len(apis)


def api_for(settings: Settings, appid: str, store: Any) -> WeChatApi:
    return WeChatApi(settings.wechat_api_base, appid, settings.wechat_secret, store)


def test_processes_force_refresh_once_through_the_database(services, fake_wechat, appid):
    check_one_force_across_processes(fake_wechat, [
        api_for(services.settings, appid, DatabaseTokenStore(services.factory, appid)) for _ in range(3)])


def test_processes_force_refresh_once_through_redis(settings, fake_wechat, appid, redis_keys):
    check_one_force_across_processes(fake_wechat, [
        api_for(settings, appid, RedisTokenStore(REDIS_URL, appid)) for _ in range(3)])


def test_ip_not_whitelisted_is_shown_in_the_outbox(services, teacher, fake_wechat, deliver, houqin):
    fake_wechat.refuse_ip(WHITELIST_IP)
    push = queue_push(services, "张丽", "白名单之外")
    deliver()

    row = only(services, push)  # retried like a transient error (the tests' backoff is 0), then given up
    message = f"服务器IP未加入公众号白名单（微信看到的IP：{WHITELIST_IP}）"
    assert row.attempts == services.settings.push_max_attempts
    assert (row.status, row.last_error) == (FAILED, f"{message} (gave up after {row.attempts} attempts)")
    assert message in houqin("outbox").output
    assert not [c for c in fake_wechat.calls if c.endpoint == CUSTOM]  # no token, so nothing was sent

    fake_wechat.refuse_ip("")  # the office added the IP
    assert houqin("outbox", "retry", str(row.id)).exit_code == 0
    deliver()
    assert only(services, push).status == SENT


def test_upstream_errors_are_stored_without_token_or_secret(services, settings, teacher, fake_wechat, clock):
    store = DatabaseTokenStore(services.factory, settings.wechat_appid)
    store.refresh(lambda force: ("TOKEN_THAT_MUST_NOT_LEAK", 7200))
    with socket.socket() as sock:  # a port nothing listens on: the error names the URL it failed on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    cut_off = Services.from_settings(settings.with_overrides(wechat_api_base=dead, database_url=services.settings.database_url),
                                     schema=services.schema)
    cut_off.clock = clock
    push = queue_push(services, "张丽", "连不上微信")
    worker = cut_off.worker()
    worker.drain()
    worker.pool.shutdown(wait=True)

    error = only(services, push).last_error or ""
    assert "ConnectionRefusedError" in error and "/cgi-bin/" in error and "access_token=" not in error  # no query at all
    assert "TOKEN_THAT_MUST_NOT_LEAK" not in error and settings.wechat_secret not in error
    cut_off.db_engine.dispose()


def test_start_up_reports_an_ip_not_on_the_whitelist(tmp_path):
    fake = FakeWeChat(0, refused_ip=WHITELIST_IP).start()
    try:
        settings = make_settings(tmp_path, fake)
        engine = make_engine(settings.database_url)
        upgrade(engine)
        engine.dispose()
        worker = subprocess.Popen([*HOUQIN, "worker"], env=worker_env(tmp_path, settings), cwd=tmp_path, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while not fake.calls and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            assert stop(worker) == 0
        started = worker.stdout.read() if worker.stdout else ""
    finally:
        fake.stop()
    assert f"无法取得微信 access token：服务器IP未加入公众号白名单（微信看到的IP：{WHITELIST_IP}）" in started
    assert "IP白名单" in started.split("微信看到的IP")[1]
    assert settings.wechat_secret not in started
    assert [c.endpoint for c in fake.calls] == ["stable_token"]
