"""The bureau's 通知 to schools' admins (issue 15): one notice N<n> in each chosen school's own namespace,
tied together in the main one, sent from `houqin county notify` and the 区县概览 page, with who has read it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select, text

from bot.county import County
from bot.services import Services
from handlers.identity import parse_roles
from handlers.notices import confirm_notice
from models import AuditEntry, CountyNotice, Notice, Person
from tests.conftest import People
from tests.test_console import PASSWORD, csrf


@pytest.fixture
def county(services: Services, clock, people: People) -> Iterator[County]:
    """本校 (周春明 admin, 教育局王科长 bureau, 宦欢 canteen), 北城小学 (北城李校长 admin), 南城小学 (no admin)."""
    clock.set("2026-11-24 10:00")
    county = County.of(services)
    county.add("north", "北城小学")
    county.add("south", "南城小学")
    people.add("周春明", "admin")
    people.add("教育局王科长", "bureau")
    people.add("宦欢", "canteen")
    People(county.services("north")).add("北城李校长", "admin")
    People(county.services("south")).add("南城张老师", "teacher")
    yield county
    schemas = [county.schema_of(e.slug) for e in county.schools() if not e.is_default]
    county.dispose()
    if services.db_engine.dialect.name == "postgresql":
        with services.db_engine.begin() as conn:
            for schema in schemas:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


def notices_in(services: Services) -> list[tuple[int, str, str]]:
    with services.factory() as db:
        return [(n.number, n.title, n.audience) for n in db.scalars(select(Notice).order_by(Notice.number))]


def confirm_in(services: Services, name: str) -> None:
    with services.factory() as db, db.begin():
        person = db.scalar(select(Person).where(Person.name == name))
        notice, answer = confirm_notice(db, person, services.now())
        assert notice is not None, answer


def test_the_bureau_role_can_be_given_by_import() -> None:
    assert parse_roles("教育局") == (["bureau"], [])
    assert parse_roles("bureau") == (["bureau"], [])


def test_houqin_county_notify_reaches_every_schools_admins_and_shows_who_confirmed(county: County, houqin) -> None:
    sent = houqin("county", "notify", "--title", "防溺水安全检查", "--body", "请各校于周五前完成自查。")
    assert sent.exit_code == 0, sent.output
    assert "教育局通知 1「防溺水安全检查」已发出" in sent.output
    assert "北城小学：通知 N1 发给 1 位管理员" in sent.output
    assert "南城小学：未发送（「管理员」目前没有人。）" in sent.output
    home, north, south = (county.services(s) for s in ("default", "north", "south"))
    assert notices_in(home) == [(1, "防溺水安全检查", "管理员")]
    assert notices_in(north) == [(1, "防溺水安全检查", "管理员")]
    assert notices_in(south) == []
    confirm_in(north, "北城李校长")
    shown = houqin("county", "notices", "1")
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert "北城小学（N1）：已确认 1/1" in lines and "  已确认：北城李校长（11-24 10:00）" in lines
    assert "本校（N1）：已确认 0/1" in lines and "  未确认：周春明" in lines
    assert "南城小学：未发送（「管理员」目前没有人。）" in lines
    listed = houqin("county", "notices")
    assert "1 11-24 10:00 防溺水安全检查（3 所学校，已确认 1/2）" in listed.output


def test_county_notify_to_chosen_schools_only_and_refusals_change_nothing(county: County, houqin) -> None:
    sent = houqin("county", "notify", "--title", "食堂检查", "--body", "本周抽查。", "--schools", "north")
    assert sent.exit_code == 0, sent.output
    assert notices_in(county.services("north")) == [(1, "食堂检查", "管理员")]
    assert notices_in(county.default) == []
    bad = houqin("county", "notify", "--title", "食堂检查", "--body", "本周抽查。", "--schools", "north,east")
    assert bad.exit_code != 0 and "没有代号为「east」的学校" in bad.output
    empty = houqin("county", "notify", "--title", " ", "--body", "x")
    assert empty.exit_code != 0 and "请填写通知标题" in empty.output
    with county.default.factory() as db:
        assert db.scalar(select(func.count()).select_from(CountyNotice)) == 1
    assert len(notices_in(county.services("north"))) == 1
    missing = houqin("county", "notices", "9")
    assert missing.exit_code != 0 and "没有第 9 号教育局通知" in missing.output


def sign_in(client, houqin, name: str) -> None:
    assert houqin("console-password", name, "--password", PASSWORD, "--school", "default").exit_code == 0
    signed = client.post("/admin/login", data={"csrf": csrf(client), "name": name, "password": PASSWORD,
                                               "school": "default"})
    assert signed.status_code == 302, signed.get_data(as_text=True)


def test_the_bureau_sends_from_the_county_page_and_sees_who_confirmed(county: County, houqin, client) -> None:
    sign_in(client, houqin, "教育局王科长")
    page = client.get("/admin/county").get_data(as_text=True)
    assert "教育局通知" in page and 'value="north"' in page and "还没有发过通知" in page
    sent = client.post("/admin/county/notify", data={"csrf": csrf(client), "scope": "some", "school": ["north", "south"],
                                                     "title": "宿舍消防检查", "body": "请本周内完成。"})
    assert sent.status_code == 302 and sent.location.endswith("/admin/county/notices/1")
    assert notices_in(county.services("north")) == [(1, "宿舍消防检查", "管理员")] and notices_in(county.default) == []
    confirm_in(county.services("north"), "北城李校长")
    status = client.get("/admin/county/notices/1").get_data(as_text=True)
    assert "北城李校长（11-24 10:00）" in status and "南城小学" in status and "未发送" in status
    with county.default.factory() as db:
        (entry,) = db.scalars(select(AuditEntry).where(AuditEntry.action == "county_notice"))
        assert entry.actor == "教育局王科长" and "宿舍消防检查" in entry.detail
    overview = client.get("/admin/county").get_data(as_text=True)
    assert "宿舍消防检查" in overview and "1/1" in overview
    assert client.get("/admin/county/notices/5").status_code == 404


@pytest.mark.parametrize("form, says", [
    ({"scope": "some", "title": "检查", "body": "内容"}, "请选择「全部学校」或勾选学校。"),
    ({"scope": "all", "title": "", "body": "内容"}, "请填写通知标题。"),
    ({"scope": "all", "title": "检查", "body": "x" * 1001}, "最多 1000 个字"),
    ({"scope": "some", "school": ["east"], "title": "检查", "body": "内容"}, "没有代号为「east」的学校"),
])
def test_bad_input_is_refused_in_chinese_and_sends_nothing(county: County, houqin, client, form, says) -> None:
    sign_in(client, houqin, "教育局王科长")
    refused = client.post("/admin/county/notify", data={"csrf": csrf(client), **form})
    assert refused.status_code == 400 and says in refused.get_data(as_text=True)
    for slug in ("default", "north", "south"):
        assert notices_in(county.services(slug)) == []
    with county.default.factory() as db:
        assert db.scalar(select(func.count()).select_from(CountyNotice)) == 0


def test_other_roles_may_not_send(county: County, houqin, client) -> None:
    sign_in(client, houqin, "宦欢")
    refused = client.post("/admin/county/notify", data={"csrf": csrf(client), "scope": "all", "title": "x", "body": "y"})
    assert refused.status_code == 403
    assert all(notices_in(county.services(s)) == [] for s in ("default", "north", "south"))
