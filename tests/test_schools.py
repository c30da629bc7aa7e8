"""Several schools in one installation (issue 15): each in its own database namespace, nothing of one
seen by another; the CLI's --school; a school's own account; the shared account's routing."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import event, select, text

from bot.county import SCHOOLS_MISS_SECONDS, County, CountyError, mask, scene_for, school_database_url
from bot.outbox import Outbox
from bot.services import Services
from bot.wechat.simulator import WeChatUser
from models import CountySchool, Person, Push, RepairTicket, SeenNonce
from tests.conftest import People

OWN_TOKEN = "northtoken1234567890"
OWN_AES = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


@pytest.fixture
def county(services: Services) -> Iterator[County]:
    county = County.of(services)
    yield county
    schemas = [county.schema_of(e.slug) for e in county.schools() if not e.is_default]
    county.dispose()
    if services.db_engine.dialect.name == "postgresql":
        with services.db_engine.begin() as conn:
            for schema in schemas:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


def test_an_installation_is_its_default_school_alone(county: County, services: Services) -> None:
    (only,) = county.schools()
    assert only.is_default and only.slug == "default" and not county.several
    assert county.services("default") is services is county.default


def test_a_school_added_has_a_namespace_of_its_own(county: County, services: Services) -> None:
    entry = county.add("north", "北城小学", appid="wxnorth", token=OWN_TOKEN, secret="northsecret", aes_key=OWN_AES)
    county.add("south", "南城小学", tz_name="Asia/Urumqi")
    assert [e.slug for e in county.schools()] == ["default", "north", "south"] and county.several
    assert entry.own_account and county.school("south").shared
    north, south = county.services("north"), county.services("south")
    assert county.services("north") is north  # cached
    assert north.settings.wechat_appid == "wxnorth" and north.settings.wechat_token == OWN_TOKEN
    assert north.settings.wechat_aes_key == OWN_AES and north.settings.wechat_secret == "northsecret"
    assert south.settings.wechat_appid == services.settings.wechat_appid  # the shared account
    assert south.settings.tz_name == "Asia/Urumqi" and north.settings.tz_name == services.settings.tz_name
    assert north.settings.public_url.endswith("/s/north") and north.settings.storage_dir != services.settings.storage_dir
    with north.factory() as db, db.begin():
        db.add(Person(name="北城的人"))
    for other in (services, south):
        with other.factory() as db:
            assert db.scalar(select(Person).where(Person.name == "北城的人")) is None
    with services.factory() as db:  # the secrets are sealed, never stored as written
        row = db.get(CountySchool, "north")
        assert row is not None and OWN_TOKEN not in row.token_enc and "northsecret" not in row.secret_enc


def test_a_school_slug_must_be_usable_and_new(county: County) -> None:
    for bad in ("North", "1a", "default", "a", "名字"):
        with pytest.raises(CountyError):
            county.add(bad, "x")
    county.add("east", "东城")
    with pytest.raises(CountyError, match="已经存在"):
        county.add("east", "东城")
    with pytest.raises(CountyError, match="--appid"):
        county.add("west", "西城", appid="wxwest")
    with pytest.raises(CountyError, match="没有代号"):
        county.services("nowhere")


def test_sqlite_schools_sit_beside_the_main_file_and_secrets_are_masked() -> None:
    assert school_database_url("sqlite:////srv/instance/houqin.db", "north") == "sqlite:////srv/instance/houqin.north.db"
    assert school_database_url("postgresql://db/houqin", "north") == "postgresql://db/houqin"
    assert mask("northsecret") == "*********et" and mask("") == "-" and "abc" not in mask("abcdef")


# -- the CLI ---------------------------------------------------------------------------------------
def test_school_add_and_list_show_secrets_masked(houqin: Any, county: County) -> None:
    done = houqin("school", "add", "north", "--name", "北城小学", "--appid", "wxnorth", "--token", OWN_TOKEN,
                  "--secret", "northsecret99", "--aes-key", OWN_AES)
    assert done.exit_code == 0, done.output
    assert "北城小学" in done.output and "/wechat/north" in done.output
    assert houqin("school", "add", "south", "--name", "南城小学").exit_code == 0
    listed = houqin("school", "list", "--school", "north")  # --school is accepted everywhere, even here
    assert listed.exit_code == 0, listed.output
    for word in ("default", "north", "北城小学", "south", "南城小学", "wxnorth", "默认公众号"):
        assert word in listed.output
    assert OWN_TOKEN not in listed.output and "northsecret99" not in listed.output and "99" in listed.output
    again = houqin("school", "add", "north", "--name", "又一个")
    assert again.exit_code == 1 and "错误：" in again.output and "已经存在" in again.output
    bad = houqin("school", "add", "Bad-Slug", "--name", "x")
    assert bad.exit_code == 1 and "学校代号" in bad.output


def test_school_rename_names_the_default_school_and_refuses_a_bad_name(houqin: Any, county: County,
                                                                       services: Services) -> None:
    """本校 until the operator names it: `school rename default --name …` is what the bureau's overview and
    the shared account's question 「哪所学校」 show; recorded in 操作记录; a bad name or school changes nothing."""
    from models import AuditEntry

    assert houqin("school", "add", "north", "--name", "北城小学").exit_code == 0
    done = houqin("school", "rename", "default", "--name", "龙城实验小学")
    assert done.exit_code == 0 and "学校 default 已改名：本校 → 龙城实验小学" in done.output, done.output
    assert [e.name for e in county.schools()] == ["龙城实验小学", "北城小学"]
    assert "龙城实验小学" in houqin("school", "list").output
    assert "北城二小" in houqin("school", "rename", "north", "--name", " 北城二小 ").output
    for args, words in ((["north", "--name", " "], "学校名称须为 1–50 个字"),
                        (["north", "--name", "北" * 51], "学校名称须为 1–50 个字"),
                        (["nowhere", "--name", "某校"], "没有代号为「nowhere」的学校")):
        refused = houqin("school", "rename", *args)
        assert refused.exit_code == 1 and words in refused.output, refused.output
    assert [e.name for e in county.schools()] == ["龙城实验小学", "北城二小"]
    with services.factory() as db:
        renamed = [(e.action, e.target, e.detail, e.via) for e in db.scalars(select(AuditEntry).order_by(AuditEntry.id))
                   if e.action == "school_rename"]
    assert renamed == [("school_rename", "default", "本校 → 龙城实验小学", "cli"),
                       ("school_rename", "north", "北城小学 → 北城二小", "cli")]


def test_every_command_takes_school_and_refuses_to_guess_among_several(houqin: Any, county: County,
                                                                       services: Services) -> None:
    assert houqin("setting", "fire_check_day").exit_code == 0  # one school: --school may be left out
    assert houqin("school", "add", "north", "--name", "北城小学").exit_code == 0
    refused = houqin("setting", "fire_check_day")
    assert refused.exit_code == 2, refused.output
    assert "错误：" in refused.output and "north" in refused.output and "北城小学" in refused.output
    assert "--school" in refused.output
    assert houqin("setting", "fire_check_day", "9", "--school", "north").exit_code == 0
    assert "'5'" in houqin("--school", "default", "setting", "fire_check_day").output
    assert "'9'" in houqin("setting", "fire_check_day", env={"HOUQIN_SCHOOL": "north"}).output
    unknown = houqin("setting", "fire_check_day", "--school", "nowhere")
    assert unknown.exit_code == 1 and "没有代号" in unknown.output
    upgraded = houqin("db", "upgrade")  # migrations reach every school's namespace
    assert upgraded.exit_code == 0 and "north: database at head" in upgraded.output
    for command in (["codes", "--json"], ["outbox"], ["jobs", "list"]):  # groups and sub-commands alike
        assert houqin(*command, "--school", "north").exit_code == 0, command


def test_templates_set_is_per_school(houqin: Any, county: County, services: Services) -> None:
    assert houqin("school", "add", "north", "--name", "北城小学").exit_code == 0
    done = houqin("templates", "set", "repair_new=NORTHTPL", "--school", "north",
                  "--data", '{"thing1": "{title}"}')
    assert done.exit_code == 0, done.output
    fresh = County(services)  # as a process started after the change sees it
    assert fresh.services("north").settings.templates["repair_new"].template_id == "NORTHTPL"
    assert "repair_new" not in fresh.default.settings.templates
    assert houqin("templates", "set", "nonsense=1", "--school", "north").exit_code == 1
    assert houqin("templates", "set", "repair_new=", "--school", "north").exit_code == 0
    assert "repair_new" not in County(services).services("north").settings.templates


# -- isolation through the webhook, the console, exports and pages ----------------------------------------
PASSWORD = "correct-horse-1"


@dataclass
class School:
    slug: str
    services: Services
    people: People
    path: str  # its webhook
    token: str
    appid: str
    aes_key: str

    def user(self, client: FlaskClient, name: str, openid: str = "", bind: bool = True) -> WeChatUser:
        def post(url: str, body: bytes) -> tuple[int, bytes]:
            res = client.post(url, data=body, content_type="text/xml")
            return res.status_code, res.data

        user = WeChatUser(openid or "o" + uuid.uuid5(uuid.NAMESPACE_DNS, self.slug + name).hex[:27], token=self.token,
                          appid=self.appid, aes_key=self.aes_key, transport=post, path=self.path)
        if bind:
            reply = user.say(f"绑定 {self.people.code_of(name)}").text
            assert "绑定成功" in reply, reply
        return user

    def deliver(self) -> int:
        worker = self.services.worker()
        try:
            return worker.drain()
        finally:
            worker.pool.shutdown(wait=True)


@pytest.fixture
def schools(county: County, services: Services, clock: Any) -> dict[str, School]:
    """Three schools: the default one and 南城小学 on the default (shared) account, 北城小学 on its own."""
    clock.set("2026-11-24 08:00")
    county.add("north", "北城小学", appid="wxnorth", token=OWN_TOKEN, secret="northsecret", aes_key=OWN_AES)
    county.add("south", "南城小学")
    s = services.settings
    made = {}
    for slug in ("default", "north", "south"):
        svc = county.services(slug)
        own = slug == "north"
        made[slug] = School(slug, svc, People(svc), "/wechat/north" if own else "/wechat",
                            OWN_TOKEN if own else s.wechat_token, "wxnorth" if own else s.wechat_appid,
                            OWN_AES if own else s.wechat_aes_key)
    return made


def _sign_in(client: FlaskClient, school: str, name: str) -> None:
    page = client.get("/admin/login").get_data(as_text=True)
    assert "北城小学" in page and "南城小学" in page  # several schools: the sign-in asks which
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    res = client.post("/admin/login", data={"csrf": csrf[1], "school": school, "name": name, "password": PASSWORD})
    assert res.status_code == 302, res.get_data(as_text=True)


def test_two_schools_see_nothing_of_each_other(schools: dict[str, School], app: Flask, houqin: Any,
                                               fake_wechat: Any, clock: Any, tmp_path: Path) -> None:
    client = app.test_client()
    words = {"default": ("周春明", "张丽", "投影仪不亮", "本校的饭好吃"),
             "north": ("北校长", "北老师", "北城窗户漏风", "北城的饭太咸"),
             "south": ("南校长", "南老师", "南城水管漏水", "南城的汤很好")}
    users = {}
    for slug, (admin, teacher, _, _) in words.items():
        school = schools[slug]
        school.people.add(admin, "admin")
        school.people.add(teacher, "teacher")
        assert houqin("console-password", admin, "--password", PASSWORD, "--school", slug).exit_code == 0
        users[slug] = (school.user(client, admin), school.user(client, teacher))
    for slug, (admin, teacher) in users.items():
        _, _, fault, meal = words[slug]
        assert "R1" in teacher.say(f"报修 三(2)班 {fault}").text  # every school numbers its own tickets
        assert "F1" in teacher.say(f"食堂 4 {meal}").text
        assert "已记录" in admin.say("演练 完成 3.5 二楼拥挤").text
        for school in schools.values():
            school.deliver()
    for slug, (admin, teacher) in users.items():
        mine, others = words[slug], [w for s, w in words.items() if s != slug]
        seen = admin.say("R1").text + admin.say("我的报修").text + admin.say("评价汇总 今天").text
        seen += teacher.say("我的报修").text + teacher.say("我").text
        assert mine[2] in seen and mine[3] in seen
        for other in others:
            assert not any(word in seen for word in other), (slug, seen)
        # the admin was told of the ticket, by its own school, through its own account
        told = [c for c in fake_wechat.sent_to(admin.openid) if "R1" in c.text]
        assert told and all(mine[2] in c.text for c in told)
    north_token = fake_wechat.state.stable.get("wxnorth")
    assert north_token and any(c.params.get("access_token") == north_token
                               for c in fake_wechat.sent_to(users["north"][0].openid))
    # the console: each signed-in admin sees only their own school, on every page
    for slug, (admin_name, _, fault, meal) in words.items():
        browser = app.test_client()
        _sign_in(browser, slug, admin_name)
        pages = "".join(browser.get(path).get_data(as_text=True) for path in (
            "/admin/", "/admin/repairs", "/admin/repairs/R1", "/admin/people", "/admin/outbox",
            "/admin/canteen?month=2026-11", "/admin/assets"))
        assert fault in pages and meal in pages and admin_name in pages
        for other_slug, other in words.items():
            if other_slug != slug:
                assert not any(word in pages for word in other), (slug, other_slug)
    # exports: the school chosen, and only it
    for slug, (_, _, fault, _) in words.items():
        out = tmp_path / f"{slug}.xlsx"
        assert houqin("export", "repairs", "--month", "2026-11", "--out", str(out), "--school", slug).exit_code == 0
        cells = " ".join(str(c.value) for row in load_workbook(out).active.iter_rows() for c in row)
        assert fault in cells
        assert not any(words[o][2] in cells for o in words if o != slug)
    # push pages: a school's under /s/<slug>, not reachable as another school's
    for slug, school in schools.items():
        with school.services.factory() as db:
            token = db.scalar(select(Push.token).where(Push.token.is_not(None)).order_by(Push.id))
        if token is None:
            continue
        own = "" if slug == "default" else f"/s/{slug}"
        assert client.get(f"{own}/p/{token}").status_code == 200
        for other in schools:
            if other != slug:
                assert client.get(f"{'' if other == 'default' else '/s/' + other}/p/{token}").status_code == 404
    assert client.get("/s/nowhere/p/abc").status_code == 404
    # menu pages: a school's own, its links staying under its prefix
    this_week = client.get("/s/north/menu")
    assert this_week.status_code == 302 and this_week.headers["Location"].startswith("/s/north/menu/2026-W")
    unpublished = client.get(this_week.headers["Location"])
    assert unpublished.status_code == 404 and 'href="/s/north/menu"' in unpublished.get_data(as_text=True)
    # QR scenes: a school on the shared account names itself; its own account's and the default's are as before
    assert scene_for(schools["south"].services, "room:1") == "south/room:1"
    assert scene_for(schools["north"].services, "room:1") == "room:1" == scene_for(schools["default"].services, "room:1")
    assert client.post("/wechat/south").status_code == 404  # a shared-account school has no webhook of its own



def test_a_schools_own_account_refuses_replays_in_its_own_ledger(schools: dict[str, School], app: Flask) -> None:
    """/wechat/<slug> remembers a request's (timestamp, nonce) in the school's own namespace: the same
    request again is refused, while the default account, whose ledger is another, takes the same pair."""
    client = app.test_client()
    north, default = schools["north"], schools["default"]
    stamp, nonce = int(time.time()), "5550001111"
    walker = north.user(client, "路人", bind=False)
    url, body = walker.request(walker.message("text", Content="帮助"), timestamp=stamp, nonce=nonce)
    assert client.post(url, data=body, content_type="text/xml").status_code == 200
    assert client.post(url, data=body, content_type="text/xml").status_code == 403  # a replay

    def pairs(school: School) -> list[tuple[int, str]]:
        with school.services.factory() as db:
            return [(n.timestamp, n.nonce) for n in db.scalars(select(SeenNonce).where(SeenNonce.nonce == nonce))]

    assert pairs(north) == [(stamp, nonce)] and pairs(default) == []
    other = default.user(client, "路人", bind=False)
    url, body = other.request(other.message("text", Content="帮助"), timestamp=stamp, nonce=nonce)
    res = client.post(url, data=body, content_type="text/xml")
    assert res.status_code == 200 and pairs(default) == [(stamp, nonce)] and pairs(north) == [(stamp, nonce)]


def test_a_schools_statements_name_its_schema_and_set_no_search_path(schools: dict[str, School], app: Flask,
                                                                     backend: Any) -> None:
    """A school's webhook request writes its rows into the school's own namespace; on PostgreSQL every
    statement names the school's schema itself (schema_translate_map), so no transaction spends a round
    trip on `SET search_path` — and the default school's tables gain nothing."""
    client = app.test_client()
    south, default = schools["south"], schools["default"]
    south.people.add("南老师", "teacher")
    teacher = south.user(client, "南老师")
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    engine = south.services.db_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        assert "R1" in teacher.say("报修 三(2)班 南城门锁坏了").text
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert any("repair_tickets" in s for s in seen) and not any("search_path" in s.lower() for s in seen)
    with south.services.factory() as db:
        assert db.scalar(select(RepairTicket.description)) == "南城门锁坏了"
    with default.services.factory() as db:
        assert db.scalar(select(RepairTicket.id)) is None
    if backend.name == "postgresql":
        schema = County.of(default.services).schema_of("south")
        assert all(f'"{schema}".' in s or f"{schema}." in s for s in seen if "repair_tickets" in s)
        with default.services.db_engine.connect() as conn:
            rows = conn.execute(text(f'SELECT description FROM "{schema}".repair_tickets')).scalars().all()
        assert rows == ["南城门锁坏了"]
        with south.services.factory() as db:  # the school's transaction keeps the connection's search path
            assert schema not in str(db.execute(text("SHOW search_path")).scalar_one())


def test_a_school_added_by_the_cli_is_served_at_once_and_unknown_slugs_do_not_storm(
        schools: dict[str, School], app: Flask, county: County, services: Services, houqin: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """/wechat/<slug> right after `houqin school add` (another process, the same database): the webhook's
    cached school list misses it, reads the list again at once and serves the school; a stream of unknown
    slugs is 404 and reads the list again at most once per SCHOOLS_MISS_SECONDS."""
    ticks = [0.0]
    services.monotonic = lambda: ticks[0]
    client = app.test_client()
    assert client.post("/wechat/south").status_code == 404  # the list is cached now, without west
    added = houqin("school", "add", "west", "--name", "西城小学", "--appid", "wxwest", "--token", OWN_TOKEN,
                   "--secret", "westsecret", "--aes-key", OWN_AES)
    assert added.exit_code == 0, added.output
    ticks[0] += SCHOOLS_MISS_SECONDS
    west = School("west", county.services("west"), People(county.services("west")), "/wechat/west", OWN_TOKEN,
                  "wxwest", OWN_AES)
    west.people.add("西老师", "teacher")
    reply = west.user(client, "西老师", bind=False).say(f"绑定 {west.people.code_of('西老师')}")
    assert reply.status == 200 and "绑定成功" in reply.text, reply
    reads = []
    read_schools = county.schools
    monkeypatch.setattr(county, "schools", lambda: reads.append(1) or read_schools())
    ticks[0] += SCHOOLS_MISS_SECONDS
    walker = School("nowhere", services, schools["north"].people, "/wechat/nowhere", OWN_TOKEN, "wxwest",
                    OWN_AES).user(client, "路人", bind=False)
    assert walker.say("帮助").status == 404 and reads  # the first miss reads the list again
    after_first = len(reads)  # (1, or 2 had the cache's few seconds run out just then)
    assert all(walker.say("帮助").status == 404 for _ in range(20)) and len(reads) == after_first
    ticks[0] += SCHOOLS_MISS_SECONDS
    assert walker.say("帮助").status == 404 and len(reads) == after_first + 1


def test_a_follower_bound_in_two_schools_of_the_shared_account(schools: dict[str, School], app: Flask,
                                                                fake_wechat: Any, clock: Any) -> None:
    client = app.test_client()
    default, south = schools["default"], schools["south"]
    default.people.add("周春明", "admin")
    south.people.add("南校长", "admin")
    default.people.add("陈老师", "teacher")
    south.people.add("陈老师", "teacher")
    assert default.people.code_of("陈老师") != south.people.code_of("陈老师")
    openid = "o_teacher_in_two_schools"
    chen = default.user(client, "陈老师", openid=openid)
    assert "南城" not in chen.say("我").text
    # the same WeChat user binds the second school's code: the code decides the school
    assert "绑定成功" in south.user(client, "陈老师", openid=openid, bind=False).say(
        f"绑定 {south.people.code_of('陈老师')}").text
    asked = chen.say("报修 三(2)班 灯不亮").text
    assert "哪所学校" in asked and "1. 本校" in asked and "2. 南城小学" in asked
    with south.services.factory() as db:
        assert db.scalar(select(RepairTicket)) is None  # nothing filed on a guess
    picked = chen.say("2").text
    assert "南城小学" in picked and "R1" in picked  # the waiting message went to the school picked
    assert "R2" in chen.say("报修 三(2)班 门锁坏了").text  # remembered: not asked again
    with default.services.factory() as db:
        assert db.scalar(select(RepairTicket)) is None
    # pushes from both schools reach the follower
    with default.services.factory() as db, db.begin():
        person = db.scalar(select(Person).where(Person.name == "陈老师"))
        assert person is not None
        Outbox(db, default.services.settings, default.services.now()).notify([person], "drill_reminder", "本校明天演练")
    with south.services.factory() as db, db.begin():
        person = db.scalar(select(Person).where(Person.name == "陈老师"))
        assert person is not None
        Outbox(db, south.services.settings, south.services.now()).notify([person], "drill_reminder", "南城明天演练")
    default.deliver()
    south.deliver()
    texts = [c.text for c in fake_wechat.sent_to(openid)]
    assert any("本校明天演练" in t for t in texts) and any("南城明天演练" in t for t in texts)
    # 切换学校 asks again
    assert "哪所学校" in chen.say("切换学校").text
    assert "本校" in chen.say("1").text


# -- jobs: each school in its own timezone and calendar ------------------------------------------------
def test_jobs_run_per_school_in_its_own_timezone_and_calendar(county: County, services: Services) -> None:
    from datetime import UTC, date, datetime

    from models import CalendarDay, JobRun
    from models.school import HOLIDAY
    from scheduler.registry import JOBS
    from scheduler.runner import NOT_SCHOOL_DAY, CountyRunner, Runner

    county.add("north", "北城小学")  # Asia/Shanghai, like the default; but a holiday today
    county.add("west", "西城小学", tz_name="Asia/Urumqi")  # UTC+6: its 17:00 is two hours later
    with county.services("north").factory() as db, db.begin():
        db.add(CalendarDay(day=date(2026, 11, 24), kind=HOLIDAY, note="校庆"))
    jobs = [j for j in JOBS if j.id in ("send_daily_digest", "push_weekly_menu")]
    runner = CountyRunner(services, jobs)

    def digests(at: datetime) -> dict[str, str]:
        done = runner.tick(at)
        return {slug: run.result for slug, runs in done.items() for run in runs if run.job_id == "send_daily_digest"}

    at_shanghai_five = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # Tuesday 17:00 in Shanghai, 15:00 in Urumqi
    first = digests(at_shanghai_five)
    assert set(first) == {"default", "north"}
    assert first["north"] == NOT_SCHOOL_DAY and first["default"] != NOT_SCHOOL_DAY
    assert digests(at_shanghai_five) == {}  # a second scheduler tick: claimed, not run again
    assert set(digests(datetime(2026, 11, 24, 11, 0, tzinfo=UTC))) == {"west"}  # 17:00 in Urumqi
    other = CountyRunner(services, jobs)  # another scheduler process: nothing twice
    assert not any(other.tick(datetime(2026, 11, 24, 11, 0, tzinfo=UTC)).values())
    menu_runs = runner.tick(datetime(2026, 11, 26, 8, 0, tzinfo=UTC))  # Thursday 16:00 in Shanghai
    assert {slug for slug, runs in menu_runs.items() if any(r.job_id == "push_weekly_menu" for r in runs)} == {
        "default", "north"}
    for slug in ("default", "north", "west"):
        with county.services(slug).factory() as db:
            assert db.scalar(select(JobRun).where(JobRun.job_id == "send_daily_digest")) is not None, slug
    assert Runner(county.services("west")).tz.key == "Asia/Urumqi"
