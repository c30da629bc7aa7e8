"""The official account's menus: one per role combination (WeChat conditional menus matched by a user
tag), a default one for followers not yet bound; every entry is answered for whoever sees it;
`houqin wechat-menu --upload` sets them up, and the menu worker keeps each follower's tag in step with
their binding and roles."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.engine import HELP_MENU_KEY, NOT_UNDERSTOOD
from bot.wechat.fake import MAX_BATCH, TAG_NAME_BYTES, button_error
from bot.wechat.gateway import ApiError
from bot.wechat.menu import TAG_PREFIX, MenuWorker, menu_for, menu_plan, menu_worker
from handlers import CAPABILITIES
from models import Binding, Person, PersonRole, WeChatMenu
from models.identity import ROLES

PLAN = menu_plan(CAPABILITIES)
REFUSED = "仅限"  # the engine's refusal: 「…」仅限…使用
WORK_KEYS = {"REPAIR", "MY_REPAIRS", "CHECKIN"}


def keys(menu: dict[str, Any]) -> set[str]:
    return {b["key"] for top in menu.get("button", []) for b in top.get("sub_button") or [top] if "key" in b}


def click_keys(menu: dict[str, Any]) -> list[str]:
    return sorted({b["key"] for top in menu["button"] for b in top.get("sub_button") or [top] if b["type"] == "click"})


@pytest.fixture
def sync_menus(services: Any) -> Iterator[Callable[[], int]]:
    """Run the menu worker until no follower's menu is due; returns how many it handled."""
    yield menu_worker(services).drain


# -- what each follower is offered --------------------------------------------------------------------
@pytest.mark.parametrize("roles", [None, (), ("admin",), ("teacher",), ("staff",), ("parent",), ("bus_monitor",),
                                   ("canteen",), ("teacher", "bus_monitor"), ("canteen", "parent")],
                         ids=lambda r: "unbound" if r is None else "+".join(r) or "no-role")
def test_every_entry_of_a_menu_is_answered_for_whoever_sees_it(roles: tuple[str, ...] | None, wechat_user,
                                                                people) -> None:
    if roles is None:
        user = wechat_user("路人甲", bind=False)
    else:
        people.add("周春明", *roles)
        user = wechat_user("周春明")
    for key in click_keys(menu_for(CAPABILITIES, roles)):
        reply = user.click(key)
        assert reply.status == 200 and reply.text, key
        assert reply.text != NOT_UNDERSTOOD.format(text=key) and REFUSED not in reply.text, (key, reply.text)


def test_menus_fit_wechat_limits() -> None:
    for menu in [PLAN.default, *PLAN.menus.values()]:
        assert button_error(menu["button"]) is None, menu
    assert len(PLAN.menus) <= 100 and all(len(tag.encode()) <= TAG_NAME_BYTES for tag in PLAN.menus)
    assert len(PLAN.by_roles) == 2 ** len(ROLES)  # every combination of the roles has its one menu


# -- uploading ---------------------------------------------------------------------------------------
def test_upload_gives_each_follower_the_menu_of_their_roles(houqin, wechat_user, people, fake_wechat) -> None:
    people.add("张丽", "teacher")
    people.add("周春明", "teacher", "bus_monitor")
    people.add("宦欢", "canteen")
    people.student("陈小明")
    teacher, both, cook = wechat_user("张丽"), wechat_user("周春明"), wechat_user("宦欢")
    parent = wechat_user("陈小明")  # a parent, bound with the student's parent code
    stranger = wechat_user("路人甲", bind=False)
    assert "欢迎" in stranger.subscribe().text

    result = houqin("wechat-menu", "--upload")
    assert result.exit_code == 0, result.output
    assert "菜单已上传" in result.output and "已为 4 位已绑定的关注者设置角色菜单" in result.output

    seen = {name: fake_wechat.menu_seen_by(user.openid) for name, user in
            [("teacher", teacher), ("both", both), ("cook", cook), ("parent", parent), ("stranger", stranger)]}
    assert keys(seen["parent"]) == {"MENU", "CANTEEN", HELP_MENU_KEY}  # no 报修, no 值日
    assert keys(seen["teacher"]) >= WORK_KEYS and "BIND" not in keys(seen["teacher"])
    assert seen["both"] == seen["teacher"]  # teacher + bus monitor: one combined menu, not the newest role's
    assert keys(seen["cook"]) == {"MENU", HELP_MENU_KEY}
    assert keys(seen["stranger"]) == {"MENU", "BIND", HELP_MENU_KEY}  # the default menu
    assert fake_wechat.state.menus[-1] == PLAN.default
    for user in (teacher, both, cook, parent):  # one Houqin tag each
        assert len([t for t in fake_wechat.tags_of(user.openid) if t.startswith(TAG_PREFIX)]) == 1
    assert fake_wechat.tags_of(stranger.openid) == []


def test_upload_again_replaces_the_menus_and_reuses_the_tags(houqin, wechat_user, people, fake_wechat, db) -> None:
    people.add("张丽", "teacher")
    teacher = wechat_user("张丽")
    assert houqin("wechat-menu", "--upload").exit_code == 0
    first = {m.tag: (m.tag_id, m.menuid) for m in db.scalars(select(WeChatMenu))}
    assert set(first) == set(PLAN.menus)
    db.rollback()  # let go of SQLite before the next command writes

    again = houqin("wechat-menu", "--upload")
    assert again.exit_code == 0, again.output
    assert "新建标签 0 个" in again.output and f"替换旧的个性化菜单 {len(PLAN.menus)} 个" in again.output
    second = {m.tag: (m.tag_id, m.menuid) for m in db.scalars(select(WeChatMenu))}
    assert {t: i for t, (i, _) in second.items()} == {t: i for t, (i, _) in first.items()}
    assert not {m for _, m in second.values()} & {m for _, m in first.values()}
    assert len(fake_wechat.state.conditional) == len(PLAN.menus)  # the old ones are gone
    assert keys(fake_wechat.menu_seen_by(teacher.openid)) >= WORK_KEYS


def test_upload_tags_followers_in_batches_of_fifty(houqin, people, db, fake_wechat) -> None:
    parents = [Person(name=f"家长{i}", roles=[PersonRole(role="parent")]) for i in range(120)]
    db.add_all(parents)
    db.flush()
    db.add_all(Binding(openid=f"oParent{i:04d}", person_id=p.id) for i, p in enumerate(parents))
    db.commit()

    result = houqin("wechat-menu", "--upload")
    assert result.exit_code == 0, result.output
    batches = [c for c in fake_wechat.calls if c.endpoint == "tags/members/batchtagging"]
    assert [len(c.body["openid_list"]) for c in batches] == [50, 50, 20]
    assert all(keys(fake_wechat.menu_seen_by(f"oParent{i:04d}")) == {"MENU", "CANTEEN", HELP_MENU_KEY}
               for i in (0, 77, 119))


def test_a_refused_upload_says_why_and_changes_nothing(houqin, fake_wechat, db) -> None:
    fake_wechat.script("menu/create", 40016)
    refused = houqin("wechat-menu", "--upload")
    assert refused.exit_code != 0 and "40016" in refused.output
    assert db.scalars(select(WeChatMenu)).all() == []
    assert fake_wechat.state.conditional == []


def test_print_lists_the_default_menu_and_one_per_role_combination(houqin) -> None:
    import json

    result = houqin("wechat-menu")
    shown = json.loads(result.output)
    assert shown["default"] == PLAN.default
    assert {m["tag"]: m["roles"] for m in shown["conditional"]}[PLAN.tag_for({"parent"})] == "家长"


# -- keeping tags in step ----------------------------------------------------------------------------
def test_a_parent_who_binds_gets_the_parent_menu_from_the_worker_not_the_webhook(
        houqin, wechat_user, people, fake_wechat, sync_menus) -> None:
    assert houqin("wechat-menu", "--upload").exit_code == 0
    people.student("陈小明")
    parent = wechat_user("陈小明")
    assert keys(fake_wechat.menu_seen_by(parent.openid)) == {"MENU", "BIND", HELP_MENU_KEY}  # not yet
    assert not [c for c in fake_wechat.calls if c.endpoint.startswith("tags/members")]

    assert sync_menus() == 1
    assert keys(fake_wechat.menu_seen_by(parent.openid)) == {"MENU", "CANTEEN", HELP_MENU_KEY}
    assert sync_menus() == 0  # nothing left due


def test_a_role_change_by_import_moves_the_follower_to_the_new_menu(
        houqin, wechat_user, people, fake_wechat, sync_menus, tmp_path: Path) -> None:
    people.add("张丽", "teacher", phone="13800000001")
    teacher = wechat_user("张丽")
    assert houqin("wechat-menu", "--upload").exit_code == 0
    assert keys(fake_wechat.menu_seen_by(teacher.openid)) >= WORK_KEYS

    table = tmp_path / "people.csv"
    with table.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([["姓名", "角色", "手机"], ["张丽", "食堂", "13800000001"]])
    imported = houqin("people", "import", str(table))
    assert imported.exit_code == 0 and "更新 1" in imported.output, imported.output
    assert sync_menus() == 1
    assert keys(fake_wechat.menu_seen_by(teacher.openid)) == {"MENU", HELP_MENU_KEY}
    assert fake_wechat.tags_of(teacher.openid) == [PLAN.tag_for({"canteen"})]  # the old tag is gone


def test_an_unbound_follower_loses_the_role_menu(houqin, wechat_user, people, fake_wechat, sync_menus, db) -> None:
    people.add("张丽", "teacher")
    teacher = wechat_user("张丽")
    assert houqin("wechat-menu", "--upload").exit_code == 0
    assert "确认解绑" in teacher.say("解绑").text
    assert "已解绑" in teacher.say("确认解绑").text
    row = db.get(Binding, teacher.openid)
    assert row is not None and row.person_id is None
    db.commit()  # the read's transaction ends before the worker writes
    assert sync_menus() == 1
    assert keys(fake_wechat.menu_seen_by(teacher.openid)) == {"MENU", "BIND", HELP_MENU_KEY}
    assert fake_wechat.tags_of(teacher.openid) == []


def test_a_busy_wechat_is_retried_and_a_refused_follower_does_not_hold_up_the_rest(
        houqin, wechat_user, people, fake_wechat, sync_menus, db) -> None:
    assert houqin("wechat-menu", "--upload").exit_code == 0
    for name in ("张丽", "李伟", "王芳"):
        people.add(name, "teacher")
    users = [wechat_user(name) for name in ("张丽", "李伟", "王芳")]
    fake_wechat.state.unfollowed.add(users[1].openid)  # WeChat refuses the whole batch for this one
    fake_wechat.script("tags/members/batchtagging", -1)  # system busy, once

    assert sync_menus() >= 3
    assert keys(fake_wechat.menu_seen_by(users[0].openid)) >= WORK_KEYS
    assert keys(fake_wechat.menu_seen_by(users[2].openid)) >= WORK_KEYS
    refused = db.get(Binding, users[1].openid)
    assert refused is not None and refused.menu_error and "40003" in refused.menu_error and not refused.menu_due
    db.rollback()
    assert "1 位未能设置" in houqin("wechat-menu", "--upload").output


def test_before_any_upload_the_worker_records_that_menus_are_missing(wechat_user, people, sync_menus, db,
                                                                     fake_wechat) -> None:
    people.add("张丽", "teacher")
    teacher = wechat_user("张丽")
    assert sync_menus() == 1
    row = db.get(Binding, teacher.openid)
    assert row is not None and row.menu_error and "wechat-menu --upload" in row.menu_error and not row.menu_due
    assert not [c for c in fake_wechat.calls if c.endpoint.startswith("tags/")]


# -- the fake is as strict as WeChat -----------------------------------------------------------------
def test_the_fake_refuses_what_wechat_refuses(services, fake_wechat) -> None:
    api = services.api
    with pytest.raises(ApiError) as no_default:
        api.add_conditional_menu(PLAN.menus[PLAN.tag_for({"parent"})], 2)
    assert no_default.value.errcode == 65303
    with pytest.raises(ApiError) as long_name:
        api.create_tag("后" * 11)  # 33 bytes
    assert long_name.value.errcode == 45158
    tag = api.create_tag("houqin-test")
    with pytest.raises(ApiError) as twice:
        api.create_tag("houqin-test")
    assert twice.value.errcode == 45157
    with pytest.raises(ApiError) as too_many:
        api.tag_users(tag, [f"o{i}" for i in range(MAX_BATCH + 1)])
    assert too_many.value.errcode == 40032
    for i in range(19):
        api.tag_users(api.create_tag(f"t{i}"), ["oBusy"])
    api.tag_users(tag, ["oBusy"])  # the 20th
    with pytest.raises(ApiError) as crowded:
        api.tag_users(api.create_tag("t20"), ["oBusy"])
    assert crowded.value.errcode == 45059
    for i in range(21, 100):
        api.create_tag(f"t{i}")
    with pytest.raises(ApiError) as full:
        api.create_tag("t100")
    assert full.value.errcode == 45056
    with pytest.raises(ApiError) as bad_menu:
        api.create_menu({"button": [{"type": "click", "name": "一二三四五六", "key": "X"}]})  # 18 bytes
    assert bad_menu.value.errcode == 40018


class ChangesRolesMidway:
    """The WeChat API, but the person's roles change (as an import would) while the worker is tagging."""

    def __init__(self, api: Any, change: Callable[[], None]) -> None:
        self.api, self.change = api, change

    def __getattr__(self, name: str) -> Any:
        return getattr(self.api, name)

    def tag_users(self, tag_id: int, openids: list[str]) -> None:
        self.api.tag_users(tag_id, openids)
        change, self.change = self.change, lambda: None
        change()


def test_a_role_change_while_the_worker_tags_is_not_lost(houqin, wechat_user, people, fake_wechat, services) -> None:
    assert houqin("wechat-menu", "--upload").exit_code == 0
    people.add("张丽", "teacher")
    teacher = wechat_user("张丽")

    def now_the_canteen() -> None:
        with services.factory() as s, s.begin():
            person = s.scalar(select(Person).where(Person.name == "张丽"))
            assert person is not None
            person.roles = [PersonRole(role="canteen")]

    worker = MenuWorker(services.factory, services.settings, ChangesRolesMidway(services.api, now_the_canteen),
                        clock=services.now)
    assert worker.drain() == 2  # the teacher's tag, then (the binding changed meanwhile) the canteen's
    assert fake_wechat.tags_of(teacher.openid) == [PLAN.tag_for({"canteen"})]
    assert keys(fake_wechat.menu_seen_by(teacher.openid)) == {"MENU", HELP_MENU_KEY}


def test_a_follower_who_comes_back_is_given_their_menu_again(houqin, wechat_user, people, fake_wechat,
                                                              sync_menus) -> None:
    """Unfollowing and following again marks the follower's menu due: the webhook's own "writing means
    following" update, which runs before the subscribe handler, must mark it as the handler would."""
    people.add("张丽", "teacher")
    teacher = wechat_user("张丽")
    assert houqin("wechat-menu", "--upload").exit_code == 0
    assert sync_menus() == 0  # the upload tagged her already
    teacher.event("unsubscribe")
    fake_wechat.state.unfollowed.add(teacher.openid)
    assert sync_menus() == 0
    fake_wechat.state.unfollowed.discard(teacher.openid)
    assert "张丽" in teacher.subscribe().text  # welcomed back by name
    assert sync_menus() == 1
    assert keys(fake_wechat.menu_seen_by(teacher.openid)) >= WORK_KEYS
