"""The official account's custom menu: the CLICK keys the capabilities answer (SPEC: REPAIR,
MY_REPAIRS, CHECKIN, MENU, CANTEEN, HELP). WeChat allows 3 buttons with up to 5 entries each.
Only entries some installed capability answers are uploaded, so the menu never offers a dead key."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.engine import HELP_MENU_KEY, Conversation

FULL_MENU: list[tuple[str, list[dict[str, str]]]] = [
    ("报修", [{"type": "click", "name": "我要报修", "key": "REPAIR"},
              {"type": "click", "name": "我的报修", "key": "MY_REPAIRS"}]),
    ("值日", [{"type": "click", "name": "值日签到", "key": "CHECKIN"},
              {"type": "location_select", "name": "发送位置签到", "key": "CHECKIN"}]),
    ("食堂·帮助", [{"type": "click", "name": "本周菜单", "key": "MENU"},
                   {"type": "click", "name": "评价食堂", "key": "CANTEEN"},
                   {"type": "click", "name": "使用帮助", "key": HELP_MENU_KEY}]),
]


def menu_for(capabilities: Sequence[Conversation]) -> dict[str, Any]:
    answered = {HELP_MENU_KEY} | {k for c in capabilities for k in c.menu_keys}
    buttons: list[dict[str, Any]] = []
    for name, entries in FULL_MENU:
        kept = [e for e in entries if e["key"] in answered]
        if len(kept) == 1:
            buttons.append({**kept[0], "name": kept[0]["name"]})
        elif kept:
            buttons.append({"name": name, "sub_button": kept})
    return {"button": buttons}
