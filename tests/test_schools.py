"""Several schools in one installation (issue 15): each in its own database namespace, nothing of one
seen by another; the CLI's --school; a school's own account; the shared account's routing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, text

from bot.county import County, CountyError, mask, school_database_url
from bot.services import Services
from models import CountySchool, Person

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
