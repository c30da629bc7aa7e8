"""Test fixtures: the app on SQLite and (when it answers) PostgreSQL, the fake WeChat on loopback,
simulated WeChat users that sign and encrypt like WeChat, and a `deliver()` that runs the worker.

    def test_bind(wechat_user, people):
        people.add("张丽", "teacher")
        user = wechat_user("张丽")          # binds through the webhook with the person's code
        assert "张丽" in user.say("我").text
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from bot import create_app
from bot.config import Settings
from bot.db import make_engine, upgrade
from bot.services import Services
from bot.wechat.fake import Call, FakeWeChat
from bot.wechat.simulator import SimReply, WeChatUser
from handlers.identity import issue_code
from models import Base, BindCode, Person, PersonRole, Student

PG_DEFAULT = "postgresql://127.0.0.1:5432/test"
TOKEN = "houqinTestToken42"
APPID = "wxtest0123456789"


def _postgres_url() -> tuple[str | None, str]:
    url = os.environ.get("TEST_DATABASE_URL") or PG_DEFAULT
    try:
        import psycopg

        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=2):
            return url, ""
    except Exception as exc:  # noqa: BLE001 - any failure means "no PostgreSQL here"
        return None, f"PostgreSQL not reachable at {url}: {type(exc).__name__}"


PG_URL, PG_WHY = _postgres_url()


# Where a test's clock starts when the test does not set it: a school day in term, mid-morning.
# `HOUQIN_TEST_NOW="2026-12-26 23:30" pytest` runs the suite from another instant, to find a test
# that silently depends on the day or the hour (it should set its clock); the machine's own date
# and time never reach the app under test.
TEST_NOW = os.environ.get("HOUQIN_TEST_NOW") or "2026-11-24 10:00"


@dataclass
class Clock:
    """A settable clock for the app: `clock.set("2026-11-23 08:00")` (school time) or `advance(minutes=5)`.
    Until set, it ticks in real time from TEST_NOW, so the machine's date never matters."""

    fixed: datetime | None = None
    started: float = field(default_factory=time.monotonic)
    anchor: datetime | None = None

    def __post_init__(self) -> None:
        self.anchor = self._parse(TEST_NOW, "Asia/Shanghai")

    @staticmethod
    def _parse(local: str, tz: str) -> datetime:
        from zoneinfo import ZoneInfo

        return datetime.strptime(local, "%Y-%m-%d %H:%M").replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)

    def __call__(self) -> datetime:
        if self.fixed is not None:
            return self.fixed
        assert self.anchor is not None
        return self.anchor + timedelta(seconds=time.monotonic() - self.started)

    def set(self, local: str, tz: str = "Asia/Shanghai") -> datetime:
        self.fixed = self._parse(local, tz)
        return self.fixed

    def advance(self, **delta: float) -> datetime:
        self.fixed = self() + timedelta(**delta)
        return self.fixed


@dataclass
class Backend:
    name: str
    url: str
    schema: str | None = None
    template: Path | None = None


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """A migrated database per backend for the whole run; each test gets it empty."""
    if request.param == "sqlite":
        template = tmp_path_factory.mktemp("db") / "template.db"
        engine = make_engine(f"sqlite:///{template}")
        upgrade(engine)
        engine.dispose()
        yield Backend("sqlite", "", template=template)
        return
    if PG_URL is None:
        pytest.skip(PG_WHY)
    schema = "houqin_test_" + uuid.uuid4().hex[:10]
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(PG_URL, schema=schema)
    upgrade(engine)
    engine.dispose()
    try:
        yield Backend("postgresql", PG_URL, schema=schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeWeChat]:
    fake = FakeWeChat(seed=7).start()
    yield fake
    fake.stop()


class FakeView:
    """The fake WeChat as tests see it: what was sent, to whom (by name or openid)."""

    def __init__(self, fake: FakeWeChat) -> None:
        self.fake = fake
        self.names: dict[str, str] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fake, name)

    def sent_to(self, who: str) -> list[Call]:
        return self.fake.sent_to_openid(self.names.get(who, who))


@pytest.fixture
def fake_wechat(fake_server: FakeWeChat) -> Iterator[FakeView]:
    fake_server.reset()
    yield FakeView(fake_server)
    fake_server.reset()


def make_settings(tmp_path: Path, fake: FakeWeChat | None = None, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        wechat_token=TOKEN,
        wechat_appid=APPID,
        wechat_secret="test-secret",
        secret_key=secrets.token_urlsafe(32),
        database_url=f"sqlite:///{tmp_path / 'houqin.db'}",
        wechat_aes_key=base64.b64encode(secrets.token_bytes(32)).decode()[:43],
        wechat_api_base=fake.base_url if fake else "http://127.0.0.1:9",
        instance_dir=tmp_path / "instance",
        push_backoff_seconds=0.0,
        push_rate_per_second=0.0,
        retry_wait_seconds=1.0,
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings(tmp_path: Path, fake_server: FakeWeChat) -> Settings:
    return make_settings(tmp_path, fake_server)


@pytest.fixture
def services(backend: Backend, settings: Settings, tmp_path: Path, clock: Clock) -> Iterator[Services]:
    if backend.name == "sqlite":
        assert backend.template is not None
        shutil.copy(backend.template, tmp_path / "houqin.db")
        svc = Services.from_settings(settings)
    else:
        svc = Services.from_settings(settings.with_overrides(database_url=backend.url), schema=backend.schema)
    svc.clock = clock
    yield svc
    if backend.name == "postgresql":  # empty every table and restart ids; far cheaper than TRUNCATE
        with svc.db_engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())
            sequences = conn.execute(text("SELECT sequence_name FROM information_schema.sequences "
                                          "WHERE sequence_schema = :schema"), {"schema": backend.schema}).scalars()
            for name in list(sequences):
                conn.execute(text(f'ALTER SEQUENCE "{backend.schema}"."{name}" RESTART'))
    svc.db_engine.dispose()


@pytest.fixture
def app(services: Services) -> Flask:
    return create_app(services=services)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def db(services: Services) -> Iterator[Session]:
    """A session for arranging and checking rows; commit what you arrange."""
    with services.factory() as session:
        yield session


class People:
    """Arranges people and students the way an operator's import would."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def add(self, name: str, *roles: str, phone: str = "", categories: str = "", class_name: str = "",
            route: str = "") -> Person:
        with self.services.factory() as s, s.begin():
            person = Person(name=name, phone=phone, categories=categories, class_name=class_name, route=route,
                            roles=[PersonRole(role=r) for r in roles])
            s.add(person)
            issue_code(s, self.services.now(), person=person)
        return person

    def student(self, name: str, class_name: str = "三(2)班", route: str = "", stop: str = "") -> Student:
        with self.services.factory() as s, s.begin():
            student = Student(name=name, class_name=class_name, route=route, stop=stop)
            s.add(student)
            issue_code(s, self.services.now(), student=student)
        return student

    def code_of(self, name: str) -> str:
        with self.services.factory() as s:
            row = s.scalar(select(BindCode).join(Person).where(Person.name == name).order_by(BindCode.id.desc()))
            if row is None:
                row = s.scalar(select(BindCode).join(Student).where(Student.name == name)
                               .order_by(BindCode.id.desc()))
            assert row is not None, f"no bind code for {name}"
            return row.code


@pytest.fixture
def people(services: Services) -> People:
    return People(services)


# -- helpers the capability tests share (import them: `from tests.conftest import at, heard …`) ------
SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(local: str) -> datetime:
    """A school time, "2026-11-23 08:00" in Shanghai, as UTC."""
    return datetime.strptime(local, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI).astimezone(UTC)


def heard(fake_wechat: Any, name: str, *needles: str) -> bool:
    """Whether `name` received a message containing all of `needles` (one batch may arrive in any order)."""
    return any(call.mentions(*needles) for call in fake_wechat.sent_to(name))


def seeds_staff(people: People) -> People:
    """The 分工 of seeds/001: 程财宝 looks after 水电 门窗 桌椅 消防 安全 其他, 殷奇 电教; 周春明 is admin;
    张丽 and 王强 teach 三(2)班 and 四(1)班; 陈建国 is a parent."""
    people.add("周春明", "admin")
    people.add("程财宝", "staff", categories="水电;门窗;桌椅;消防;安全;其他", phone="13800000002")
    people.add("殷奇", "staff", categories="电教")
    people.add("张丽", "teacher", class_name="三(2)班", phone="13800000011")
    people.add("王强", "teacher", class_name="四(1)班")
    people.add("陈建国", "parent")
    return people


def import_register(services: Services, tmp_path: Path, rooms: str, assets: str,
                    import_assets: Callable[..., int], **kwargs: Any) -> None:
    """Import the rooms CSV `rooms`, then the assets CSV `assets` through `import_assets` (the repair
    one, or the register's with more columns), in one transaction, as the operator's commands would."""
    from handlers.repair.ledger import import_rooms

    (tmp_path / "rooms.csv").write_text(rooms, encoding="utf-8")
    (tmp_path / "assets.csv").write_text(assets, encoding="utf-8")
    with services.factory() as s, s.begin():
        import_rooms(s, tmp_path / "rooms.csv")
        import_assets(s, tmp_path / "assets.csv", **kwargs)


def room_id(services: Services, name: str) -> int:
    from models import Room

    with services.factory() as s:
        return int(s.scalar(select(Room.id).where(Room.name == name)))


def asset_id(services: Services, code: str) -> int:
    from models import Asset

    with services.factory() as s:
        return int(s.scalar(select(Asset.id).where(Asset.code == code)))


@pytest.fixture
def transport(client: FlaskClient) -> Callable[[str, bytes], tuple[int, bytes]]:
    def post(url: str, body: bytes) -> tuple[int, bytes]:
        res = client.post(url, data=body, content_type="text/xml")
        return res.status_code, res.data

    return post


@dataclass
class UserFactory:
    settings: Settings
    transport: Callable[[str, bytes], tuple[int, bytes]]
    people: People
    fake: FakeView
    made: dict[str, WeChatUser] = field(default_factory=dict)

    def __call__(self, name: str, *, bind: bool = True, mode: str = "safe", openid: str = "") -> WeChatUser:
        if name in self.made and not openid and self.made[name].mode == mode:
            return self.made[name]  # the same person again in one test: already bound
        openid = openid or "o" + uuid.uuid5(uuid.NAMESPACE_DNS, name).hex[:27]
        user = WeChatUser(openid, token=self.settings.wechat_token, appid=self.settings.wechat_appid,
                          aes_key=self.settings.wechat_aes_key, transport=self.transport, mode=mode)
        self.fake.names[name] = openid
        self.made[name] = user
        if bind:
            reply: SimReply = user.say(f"绑定 {self.people.code_of(name)}")
            assert "绑定成功" in reply.text, reply.text
        return user


@pytest.fixture
def wechat_user(settings: Settings, transport: Callable[[str, bytes], tuple[int, bytes]], people: People,
                fake_wechat: FakeView) -> UserFactory:
    return UserFactory(settings, transport, people, fake_wechat)


@pytest.fixture
def deliver(services: Services) -> Iterator[Callable[[], int]]:
    """Run the push worker until nothing is due; returns how many deliveries it handled."""
    worker = services.worker()
    yield worker.drain
    worker.pool.shutdown(wait=True)


@dataclass
class Queued:
    name: str
    kind: str
    text: str
    status: str
    due: datetime
    safety: bool


@pytest.fixture
def queued(services: Services) -> Callable[..., list[Queued]]:
    """What the outbox holds, oldest first: `queued()`, or `queued(kind="drill_reminder")`."""
    from models import Delivery, Push

    def look(kind: str | None = None) -> list[Queued]:
        with services.factory() as s:
            query = (select(Delivery, Push, Person.name).join(Push, Delivery.push_id == Push.id)
                     .outerjoin(Person, Delivery.person_id == Person.id).order_by(Delivery.id))
            if kind:
                query = query.where(Push.kind == kind)
            return [Queued(name or d.openid, p.kind, p.text, d.status, d.next_attempt_at, p.safety)
                    for d, p, name in s.execute(query).unique()]

    return look


@pytest.fixture
def runner(services: Services) -> Any:
    from scheduler.runner import Runner

    return Runner(services)


@pytest.fixture
def fetch_media(services: Services) -> Callable[[], int]:
    """Run the media worker until no photo is due (downloads from the fake WeChat into the storage folder)."""
    from bot.wechat.media import media_worker

    return media_worker(services).drain


@pytest.fixture
def houqin(services: Services, tmp_path: Path) -> Callable[..., Any]:
    """Run `houqin ARGS...` as an operator would, against this test's database (SQLite file or
    PostgreSQL schema) and the fake WeChat."""
    from urllib.parse import quote

    from click.testing import CliRunner

    from bot.cli import main

    s = services.settings
    url = s.database_url
    if services.schema:
        url += ("&" if "?" in url else "?") + "options=" + quote(f"-csearch_path={services.schema}")
    base_env = {"WECHAT_TOKEN": s.wechat_token, "WECHAT_APPID": s.wechat_appid, "WECHAT_SECRET": s.wechat_secret,
           "WECHAT_AES_KEY": s.wechat_aes_key, "HOUQIN_SECRET_KEY": s.secret_key, "DATABASE_URL": url,
           "WECHAT_API_BASE": s.wechat_api_base, "HOUQIN_INSTANCE": str(tmp_path / "instance"), "REDIS_URL": "",
                "HOUQIN_SCHOOL": ""}

    def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Any:
        return CliRunner().invoke(main, list(args), input=input, env={**base_env, **(env or {})},
                                  catch_exceptions=False,
                                  obj={"clock": services.clock})

    return run
