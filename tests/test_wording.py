"""Replies read as a person would write them: no bracket inside a bracket of the same kind (今天（11月30日（周一））)
and no two headings in a row (【校车警报·第2次提醒】【校车警报】), in any reply or push template, and in the
labels put inside brackets. The handlers' tests render the replies through the webhook; this one reads
every template, so that a new one is held to it too."""

from __future__ import annotations

import re
from datetime import date
from types import ModuleType

import pytest

import bot.engine
import handlers.bus
import handlers.canteen
import handlers.courtesy
import handlers.duty
import handlers.identity
import handlers.repair.chat
import handlers.repair.ledger
import handlers.safety
import scheduler.digest
import scheduler.repair
from bot.text import day_label

NESTED = re.compile(r"（[^（）]*（|\([^()]*\(|【[^【】]*【")
MODULES = [bot.engine, handlers.bus, handlers.canteen, handlers.courtesy, handlers.duty, handlers.identity,
           handlers.repair.chat, handlers.repair.ledger, handlers.safety, scheduler.digest, scheduler.repair]


def readable(text: str) -> bool:
    return NESTED.search(text) is None and "】【" not in text


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_no_template_nests_brackets_or_stacks_headings(module: ModuleType) -> None:
    templates = {name: value for name, value in vars(module).items() if name.isupper() and isinstance(value, str)}
    assert templates
    bad = {name: value for name, value in templates.items() if not readable(value)}
    assert bad == {}


def test_a_day_inside_brackets_is_labelled_without_its_own() -> None:
    monday = date(2026, 11, 30)
    assert f"今天（{day_label(monday, inside=True)}）" == "今天（11月30日 周一）"
    assert not readable(f"今天（{day_label(monday)}）")
    alarm = handlers.bus.ALARM_REPEAT.format(n=2) + handlers.bus.ALARM_TEXT.removeprefix(handlers.bus.ALARM_HEADING)
    assert readable(alarm)
