"""Settings from environment variables (and an optional `.env`), validated once at start-up.

A missing or invalid setting stops start-up with a `ConfigError` naming it. The embedded default
(`houqin serve`) fills what is missing from `instance/houqin.env`, which it writes once with
random secrets, so nothing secret is ever hard-coded.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from bot.private import write_private
from bot.wechat.templates import Template, parse_templates

N = TypeVar("N", int, float)
DEFAULT_API_BASE = "https://api.weixin.qq.com"
INSTANCE_DIR = Path(os.environ.get("HOUQIN_INSTANCE", "instance")).resolve()
EMBEDDED_ENV = "houqin.env"
DEFAULT_DATABASE = "houqin.db"  # in the instance folder, without DATABASE_URL
_BLANK_MEANS_OFF = ("WECHAT_AES_KEY", "WECHAT_AES_KEY_PREVIOUS")
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "0.0.0.0")
# one signature captured off the wire lets a short token be found offline (SHA-1 of token+timestamp+nonce)
MIN_TOKEN_LENGTH = 16
SHORT_TOKEN = ("WECHAT_TOKEN 太短（{length} 个字符）：至少要 {minimum} 个字母或数字，公众号后台「基本配置 → 令牌(Token)」"
               "允许 3–32 个；短令牌凭一次截获的签名即可离线猜出。请换一个 {minimum}–32 位的随机令牌"
               "（确需保留旧令牌时设 WECHAT_ALLOW_SHORT_TOKEN=1）。"
               " / WECHAT_TOKEN is too short ({length} characters): use {minimum}-32 random letters or digits "
               "(or set WECHAT_ALLOW_SHORT_TOKEN=1 to keep it).")
PUBLIC_URL_LOOPBACK = ("HOUQIN_PUBLIC_URL 仍是本机地址 {url}：推送里的链接（{url}/p/…）家长和老师在手机上打不开，"
                       "请设为公众号用户能访问的学校网址")


class ConfigError(RuntimeError):
    """A setting is missing or invalid; the message names it."""


class NoInstance(ConfigError):
    """Neither a configuration nor an instance: a command that must not create a school stops here."""


NO_INSTANCE = ("这里没有 Houqin 的学校：\n{looked}\n本命令没有创建任何文件夹或文件。\n"
               "请在项目文件夹里运行（或用 HOUQIN_INSTANCE 指向实例文件夹）；第一次使用请先运行 houqin serve，"
               "它会创建本地实例并载入演示学校；正式部署请设置 WECHAT_TOKEN、WECHAT_APPID、WECHAT_SECRET、"
               "HOUQIN_SECRET_KEY 和 DATABASE_URL（见 docs/deploy.md）。")
LOOKED_ENVIRONMENT = "  环境变量和 {dotenv} 中没有公众号配置（WECHAT_TOKEN 等）"
LOOKED_INSTANCE = "  实例文件夹 {instance} 中没有 {file}"
LOOKED_DATABASE = "  环境变量和 {dotenv} 中没有 DATABASE_URL，默认数据库 {database} 不存在"


@dataclass(frozen=True)
class Settings:
    wechat_token: str
    wechat_appid: str
    wechat_secret: str
    secret_key: str
    database_url: str
    wechat_aes_key: str = ""
    wechat_aes_key_previous: str = ""
    # with a key, a plaintext POST is refused unless this is on (the minutes of a mode switch)
    accept_plaintext: bool = False
    wechat_api_base: str = DEFAULT_API_BASE
    tz_name: str = "Asia/Shanghai"
    redis_url: str = ""
    instance_dir: Path = INSTANCE_DIR
    public_url: str = "http://127.0.0.1:5000"
    # reverse proxies in front of the app (nginx: 1) whose X-Forwarded-For/-Proto are believed: the
    # console counts failed sign-ins per client address, which behind a proxy is in that header
    trusted_proxies: int = 0
    # outbox / worker
    # 32 sends in flight keep ~300 messages/s going at 100 ms per call; WeChat sets a daily quota
    # on template messages (100,000 by default), not a per-second one: the rate is only a guard
    push_concurrency: int = 32
    # one pool of send threads per process, shared by all the schools it serves (each still at most
    # push_concurrency at once); 0 = push_concurrency x 8, started only as sends need them
    send_threads: int = 0
    # PostgreSQL: at most this many connections per process (HOUQIN_DB_POOL), shared by every school it
    # serves, plus the LISTEN connection; 0 = SQLAlchemy's 10 kept open and 20 more at a peak
    db_pool: int = 0
    push_rate_per_second: float = 500.0
    push_max_attempts: int = 6
    push_backoff_seconds: float = 5.0
    push_lease_seconds: float = 60.0
    # template messages this account may send per day (HOUQIN_TEMPLATE_DAILY_QUOTA): WeChat's default
    # for a verified service account is 100,000 a day for the account (higher with 100k/1M/10M followers:
    # the figure on 开发 → 接口权限 is the one that counts); sends past it wait for the next day
    template_daily_quota: int = 100_000
    templates: Mapping[str, Template] = field(default_factory=dict)  # push kind -> template (HOUQIN_TEMPLATES)
    # photos the media worker downloads: at most this many bytes, within this many seconds
    photo_max_bytes: int = 10 * 1024 * 1024
    photo_deadline_seconds: float = 60.0
    # webhook
    max_body_bytes: int = 64 * 1024
    timestamp_tolerance_seconds: int = 300
    retry_wait_seconds: float = 4.0
    # how long the webhook waits for its turn to write on SQLite; longer, and the message is spooled
    webhook_db_wait_seconds: float = 1.0
    # school
    quiet_start: str = "21:00"
    quiet_end: str = "07:00"
    # the school these settings serve (bot.county); "" is the default school
    school: str = ""

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.tz_name)

    @property
    def safe_mode(self) -> bool:
        return bool(self.wechat_aes_key)

    @property
    def school_dir(self) -> Path:
        """The instance folder, or for a school other than the default one its own folder inside it."""
        return self.instance_dir / "schools" / self.school if self.school else self.instance_dir

    @property
    def storage_dir(self) -> Path:
        return self.school_dir / "storage"

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def _check_aes_key(name: str, value: str) -> None:
    if not value:
        return
    if len(value) != 43:
        raise ConfigError(f"{name} must be the 43-character EncodingAESKey from the WeChat console")
    try:
        if len(base64.b64decode(value + "=")) != 32:
            raise ConfigError(f"{name} does not decode to a 32-byte key")
    except binascii.Error as exc:
        raise ConfigError(f"{name} is not valid base64: {exc}") from exc


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "")
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from exc


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "")
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc


def _positive(value: N, name: str) -> N:
    if value <= 0:
        raise ConfigError(f"{name} must be more than 0, got {value}")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(f"{name} must be 1 or 0, got {raw!r}")


def read_environment(environ: Mapping[str, str] | None = None, dotenv: Path | None = None) -> dict[str, str]:
    """Merge `.env` (if present) under the real environment: the environment wins."""
    path = dotenv if dotenv is not None else Path(".env")
    merged: dict[str, str] = {}
    if path.is_file():
        merged.update({k: v for k, v in dotenv_values(path).items() if v is not None})
    merged.update(os.environ if environ is None else environ)
    return merged


def load_settings(env: Mapping[str, str]) -> Settings:
    """Validate a mapping of environment variables into Settings."""
    required = ("WECHAT_TOKEN", "WECHAT_APPID", "WECHAT_SECRET", "HOUQIN_SECRET_KEY")
    missing = [n for n in required if not env.get(n, "").strip()]  # blank is as good as missing
    if missing:
        raise ConfigError("missing setting(s): " + ", ".join(missing))
    token = env["WECHAT_TOKEN"]
    if not (3 <= len(token) <= 32) or not token.isalnum():
        raise ConfigError("WECHAT_TOKEN must be 3-32 letters or digits, as the WeChat console requires")
    allow_short = _flag(env, "WECHAT_ALLOW_SHORT_TOKEN")
    if len(token) < MIN_TOKEN_LENGTH and not allow_short:
        raise ConfigError(SHORT_TOKEN.format(length=len(token), minimum=MIN_TOKEN_LENGTH))
    aes_key = env.get("WECHAT_AES_KEY", "")
    previous = env.get("WECHAT_AES_KEY_PREVIOUS", "")
    _check_aes_key("WECHAT_AES_KEY", aes_key)
    _check_aes_key("WECHAT_AES_KEY_PREVIOUS", previous)
    if previous and not aes_key:
        raise ConfigError("WECHAT_AES_KEY_PREVIOUS is set but WECHAT_AES_KEY is empty")
    api_base = env.get("WECHAT_API_BASE", "") or DEFAULT_API_BASE
    if not api_base.startswith(("http://", "https://")):
        raise ConfigError(f"WECHAT_API_BASE must start with http:// or https://, got {api_base!r}")
    tz_name = env.get("HOUQIN_TZ", "") or "Asia/Shanghai"
    try:
        ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"HOUQIN_TZ is not a known time zone: {tz_name!r}") from exc
    if len(env["HOUQIN_SECRET_KEY"]) < 16:
        raise ConfigError("HOUQIN_SECRET_KEY must be at least 16 characters")
    instance_dir = Path(env.get("HOUQIN_INSTANCE", "") or INSTANCE_DIR).resolve()
    database_url = env.get("DATABASE_URL", "") or f"sqlite:///{instance_dir / DEFAULT_DATABASE}"
    if "://" not in database_url:
        raise ConfigError(f"DATABASE_URL is not a database URL: {database_url!r}")
    try:
        templates = parse_templates(env.get("HOUQIN_TEMPLATES", ""))
    except ValueError as exc:
        raise ConfigError(f"HOUQIN_TEMPLATES: {exc}") from exc
    return Settings(
        wechat_token=token,
        wechat_appid=env["WECHAT_APPID"],
        wechat_secret=env["WECHAT_SECRET"],
        secret_key=env["HOUQIN_SECRET_KEY"],
        database_url=database_url,
        wechat_aes_key=aes_key,
        wechat_aes_key_previous=previous,
        accept_plaintext=_flag(env, "WECHAT_ACCEPT_PLAINTEXT"),
        wechat_api_base=api_base.rstrip("/"),
        tz_name=tz_name,
        redis_url=env.get("REDIS_URL", ""),
        instance_dir=instance_dir,
        public_url=(env.get("HOUQIN_PUBLIC_URL", "") or "http://127.0.0.1:5000").rstrip("/"),
        trusted_proxies=_int(env, "HOUQIN_TRUSTED_PROXIES", 0),
        push_concurrency=_int(env, "HOUQIN_PUSH_CONCURRENCY", 32),
        send_threads=max(0, _int(env, "HOUQIN_SEND_THREADS", 0)),
        db_pool=max(0, _int(env, "HOUQIN_DB_POOL", 0)),
        push_rate_per_second=_float(env, "HOUQIN_PUSH_RATE", 500.0),
        push_max_attempts=_int(env, "HOUQIN_PUSH_MAX_ATTEMPTS", 6),
        push_backoff_seconds=_float(env, "HOUQIN_PUSH_BACKOFF", 5.0),
        templates=templates,
        template_daily_quota=_positive(_int(env, "HOUQIN_TEMPLATE_DAILY_QUOTA", 100_000),
                                       "HOUQIN_TEMPLATE_DAILY_QUOTA"),
        photo_max_bytes=_positive(_int(env, "HOUQIN_PHOTO_MAX_BYTES", 10 * 1024 * 1024), "HOUQIN_PHOTO_MAX_BYTES"),
        photo_deadline_seconds=_positive(_float(env, "HOUQIN_PHOTO_DEADLINE", 60.0), "HOUQIN_PHOTO_DEADLINE"),
    )


def public_url_warning(settings: Settings) -> str | None:
    """A production process warns when links in pushes would point at this machine's loopback."""
    from urllib.parse import urlsplit

    host = urlsplit(settings.public_url).hostname or ""
    return PUBLIC_URL_LOOPBACK.format(url=settings.public_url) if host in _LOOPBACK_HOSTS else None


def embedded_environment(instance_dir: Path = INSTANCE_DIR) -> dict[str, str]:
    """Secrets for the embedded default, generated once into instance/houqin.env."""
    path = instance_dir / EMBEDDED_ENV
    if not path.exists():
        alphabet = string.ascii_letters + string.digits
        values = {
            "WECHAT_TOKEN": "".join(secrets.choice(alphabet) for _ in range(24)),
            "WECHAT_APPID": "wxdemo" + secrets.token_hex(5),
            "WECHAT_SECRET": secrets.token_hex(16),
            "WECHAT_AES_KEY": base64.b64encode(secrets.token_bytes(32)).decode()[:43],
            "HOUQIN_SECRET_KEY": secrets.token_urlsafe(32),
        }
        # 0600 from its first byte; a second process starting at the same moment keeps the first one's
        write_private(path, "".join(f"{k}={v}\n" for k, v in values.items()), replace=False)
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def settings_from_environment(embedded: bool = False, create: bool = True) -> Settings:
    """Settings for a process: the environment (+ .env); with `embedded`, gaps come from the instance file.

    Without `create` (every command but `houqin serve` and `houqin demo`) nothing is created: an
    embedded set-up needs the instance's secrets file, a configured one without DATABASE_URL needs the
    instance's database; otherwise `NoInstance` says where it looked.
    """
    env = read_environment()
    instance_dir = Path(env.get("HOUQIN_INSTANCE", "") or INSTANCE_DIR).resolve()
    dotenv = Path(".env").resolve()
    if embedded:
        if not create and not (instance_dir / EMBEDDED_ENV).is_file():
            raise NoInstance(NO_INSTANCE.format(looked="\n".join((
                LOOKED_ENVIRONMENT.format(dotenv=dotenv),
                LOOKED_INSTANCE.format(instance=instance_dir, file=EMBEDDED_ENV)))))
        # a blank setting is filled from the instance file, except the AES keys: `WECHAT_AES_KEY=`
        # says plaintext mode
        env = {**embedded_environment(instance_dir),
               **{k: v for k, v in env.items() if v or k in _BLANK_MEANS_OFF}}
    settings = load_settings(env)
    database = instance_dir / DEFAULT_DATABASE
    if not create and not env.get("DATABASE_URL") and not database.is_file():
        raise NoInstance(NO_INSTANCE.format(looked=LOOKED_DATABASE.format(dotenv=dotenv, database=database)))
    return settings
