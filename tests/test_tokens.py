"""The one access token every process shares (issue 2, section 5).

Several OS processes, each configured from environment variables like a `houqin worker`, call the
fake WeChat at once: through the database (SQLite file, PostgreSQL schema) or Redis, however many
processes run, WeChat sees one token fetch per token lifetime — also when the token goes stale.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from bot.config import Settings, load_settings
from bot.services import Services
from bot.tokens import DatabaseTokenStore, RedisTokenStore
from models import AccessToken

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
    ctx.set_forkserver_preload(["bot.services", "bot.config", "bot.tokens"])
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
    keys = [f"houqin:access_token:{appid}{suffix}" for suffix in ("", ":lock", ":fetches")]
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
