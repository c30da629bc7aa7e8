"""The official account's menu: every entry is answered, and `houqin wechat-menu --upload` sends it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.engine import NOT_UNDERSTOOD
from bot.wechat.menu import menu_for
from handlers import CAPABILITIES

MENU = menu_for(CAPABILITIES)
CLICK_KEYS = sorted({b["key"] for top in MENU["button"] for b in top.get("sub_button", [top])
                     if b["type"] == "click"})


@pytest.mark.parametrize("key", CLICK_KEYS)
def test_every_menu_click_is_answered(key: str, wechat_user, people) -> None:
    people.add("周春明", "admin", "staff", "teacher", "canteen", "bus_monitor")
    user = wechat_user("周春明")
    reply = user.click(key)
    assert reply.status == 200 and reply.text
    assert reply.text != NOT_UNDERSTOOD.format(text=key)


def test_menu_fits_wechat_limits() -> None:
    assert 1 <= len(MENU["button"]) <= 3
    for top in MENU["button"]:
        assert len(top.get("sub_button", [])) <= 5
        assert len(top["name"].encode()) <= 16


def test_upload_sends_the_menu_to_wechat(fake_wechat, tmp_path: Path) -> None:
    env = {"WECHAT_TOKEN": "menuToken1234567", "WECHAT_APPID": "wxmenu", "WECHAT_SECRET": "s", "WECHAT_AES_KEY": "",
           "HOUQIN_SECRET_KEY": "x" * 32, "DATABASE_URL": f"sqlite:///{tmp_path / 'm.db'}",
           "WECHAT_API_BASE": fake_wechat.base_url, "HOUQIN_INSTANCE": str(tmp_path)}
    result = CliRunner().invoke(main, ["wechat-menu", "--upload"], env=env)
    assert result.exit_code == 0, result.output
    assert fake_wechat.state.menus[-1] == MENU
    fake_wechat.script("menu/create", 40016)
    refused = CliRunner().invoke(main, ["wechat-menu", "--upload"], env=env)
    assert refused.exit_code != 0 and "40016" in refused.output
