"""The one access token every process shares, refreshed by one process at a time.

The database store works on SQLite and PostgreSQL (a conditional UPDATE is the lock); the Redis
store is used when REDIS_URL is set. Either way, however many processes run, one fetch per token
lifetime: a process that finds a fresh token written by another uses it instead of fetching.

Tokens come from WeChat's stable_token. When WeChat refuses a token that its stable_token still
answers (40001 with nothing newer to fetch), the refresh asks WeChat to replace it (`force_refresh`),
which WeChat allows 20 times a day: across all processes at most once per FORCE_SECONDS. Inside that
window a refused token is kept and the call fails; the push worker retries it later.
"""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.wechat.gateway import NOT_WHITELISTED, ApiError, Fetch, TokenStore, WeChatApi
from models import AccessToken, utcnow

TOKEN_OK = "微信接口可用：已取得 access token。"
TOKEN_FAILED = "⚠ 无法取得微信 access token：{error}"
WHITELIST_HINT = "请在公众号后台「设置与开发 → 基本配置 → IP白名单」加入这个IP；在此之前推送排队，稍后重试。"

MARGIN_SECONDS = 300  # treat a token as expired this long before WeChat does
LOCK_SECONDS = 30
WAIT_SECONDS = 20
FORCE_SECONDS = 30  # at most one force_refresh per this many seconds, across processes


class _LockingStore(TokenStore):
    """The refresh protocol; subclasses supply read, try-lock, write and unlock."""

    def __init__(self) -> None:
        self._cached: tuple[str, float] | None = None  # (token, monotonic expiry) in this process

    def _read(self) -> tuple[str, float] | None:
        raise NotImplementedError

    def _try_lock(self) -> bool:
        raise NotImplementedError

    def _write(self, token: str, expires_in: int) -> None:
        raise NotImplementedError

    def _unlock(self) -> None:
        raise NotImplementedError

    def _claim_force(self) -> bool:
        """True for the one caller (in any process) allowed a force_refresh now."""
        raise NotImplementedError

    def _fetch(self, fetch: Fetch, stale: str | None) -> tuple[str, int]:
        """Under the lock: WeChat's current token; replaced by force if it is the one WeChat refused."""
        token, expires_in = fetch(False)
        if stale is not None and token == stale and self._claim_force():
            token, expires_in = fetch(True)
        return token, expires_in

    def get(self) -> str | None:
        if self._cached and self._cached[1] > time.time():
            return self._cached[0]
        found = self._read()
        self._cached = found
        return found[0] if found else None

    def refresh(self, fetch: Fetch, stale: str | None = None) -> str:
        deadline = time.monotonic() + WAIT_SECONDS
        self._cached = None
        while time.monotonic() < deadline:
            found = self._read()
            if found and found[0] != stale:
                self._cached = found
                return found[0]
            if self._try_lock():
                try:
                    found = self._read()  # another process may have written between read and lock
                    if found and found[0] != stale:
                        self._cached = found
                        return found[0]
                    token, expires_in = self._fetch(fetch, stale)
                    self._write(token, expires_in)
                    self._cached = (token, time.time() + expires_in - MARGIN_SECONDS)
                    return token
                finally:
                    self._unlock()
            time.sleep(0.05)
        raise ApiError(None, "timed out waiting for another process to refresh the access token")


class DatabaseTokenStore(_LockingStore):
    def __init__(self, factory: sessionmaker[Session], appid: str) -> None:
        super().__init__()
        self.factory = factory
        self.appid = appid

    def _row(self, session: Session) -> AccessToken:
        row = session.get(AccessToken, self.appid)
        if row is None:
            row = AccessToken(appid=self.appid)
            session.add(row)
            session.flush()
        return row

    def _read(self) -> tuple[str, float] | None:
        with self.factory() as session:
            row = session.scalar(select(AccessToken).where(AccessToken.appid == self.appid))
            if row is None or not row.token or row.expires_at is None:
                return None
            expiry = (row.expires_at - timedelta(seconds=MARGIN_SECONDS)).timestamp()
            return (row.token, expiry) if expiry > time.time() else None

    def _try_lock(self) -> bool:
        now = utcnow()
        try:
            with self.factory() as session, session.begin():
                self._row(session)
                result = session.execute(
                    update(AccessToken)
                    .where(AccessToken.appid == self.appid)
                    .where(or_(AccessToken.refreshing_until.is_(None), AccessToken.refreshing_until < now))
                    .values(refreshing_until=now + timedelta(seconds=LOCK_SECONDS))
                )
                return bool(result.rowcount == 1)  # type: ignore[attr-defined]
        except IntegrityError:  # two processes created the row at once; the next round sees it
            return False

    def _write(self, token: str, expires_in: int) -> None:
        with self.factory() as session, session.begin():
            row = self._row(session)
            row.token = token
            row.expires_at = utcnow() + timedelta(seconds=expires_in)
            row.fetches += 1

    def _unlock(self) -> None:
        with self.factory() as session, session.begin():
            session.execute(update(AccessToken).where(AccessToken.appid == self.appid).values(refreshing_until=None))

    def _claim_force(self) -> bool:
        now = utcnow()
        with self.factory() as session, session.begin():
            result = session.execute(
                update(AccessToken)
                .where(AccessToken.appid == self.appid)
                .where(or_(AccessToken.forced_at.is_(None),
                           AccessToken.forced_at <= now - timedelta(seconds=FORCE_SECONDS)))
                .values(forced_at=now)
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]


class RedisTokenStore(_LockingStore):
    def __init__(self, url: str, appid: str) -> None:
        import redis

        super().__init__()
        self.redis = redis.Redis.from_url(url, decode_responses=True)
        self.key = f"houqin:access_token:{appid}"
        self.lock_key = self.key + ":lock"
        self.fetches_key = self.key + ":fetches"
        self.force_key = self.key + ":forced"

    def _read(self) -> tuple[str, float] | None:
        pipe = self.redis.pipeline()
        pipe.get(self.key)
        pipe.ttl(self.key)
        token, ttl = pipe.execute()
        if not token or ttl is None or ttl <= 0:
            return None
        return str(token), time.time() + int(ttl)

    def _try_lock(self) -> bool:
        return bool(self.redis.set(self.lock_key, "1", nx=True, ex=LOCK_SECONDS))

    def _write(self, token: str, expires_in: int) -> None:
        self.redis.set(self.key, token, ex=max(expires_in - MARGIN_SECONDS, 1))
        self.redis.incr(self.fetches_key)

    def _unlock(self) -> None:
        self.redis.delete(self.lock_key)

    def _claim_force(self) -> bool:
        return bool(self.redis.set(self.force_key, "1", nx=True, ex=FORCE_SECONDS))


def check_token(api: WeChatApi) -> str:
    """What `houqin serve` and `houqin worker` say at start-up: whether WeChat gives this server a token."""
    try:
        api.token()
    except ApiError as exc:
        hint = f"\n{WHITELIST_HINT}" if exc.errcode == NOT_WHITELISTED else ""
        return TOKEN_FAILED.format(error=exc) + hint
    return TOKEN_OK
