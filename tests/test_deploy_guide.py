"""docs/deploy.md's template example, walked end to end: the HOUQIN_TEMPLATES block in the guide is read
as an operator would paste it, `houqin templates check` accepts it against the fake WeChat's template
library, and a repair for staff whose 48-hour window has closed arrives as the mapped template."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bot.config import Settings, load_settings
from bot.services import Services
from tests.test_templates import LONG, TEMPLATE, school_people  # noqa: F401 (school_people: a fixture)
from tests.test_webhook import client_transport, sibling_app, user_for

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "deploy.md"
MARKER = "<!-- houqin-templates-example"
JSON_BLOCK = re.compile(r"```json\n(.*?)\n```", re.S)
PUBLIC_URL = "https://houqin.example.edu.cn"
GUIDE_KINDS = {"repair_new", "repair_urgent", "bus_alarm", "weekly_menu", "drill_notice"}


def guide_templates() -> str:
    """The JSON block right after the guide's marker, as the operator copies it."""
    text = GUIDE.read_text(encoding="utf-8")
    assert MARKER in text, "docs/deploy.md lost its marked HOUQIN_TEMPLATES example"
    found = JSON_BLOCK.search(text, text.index(MARKER))
    assert found is not None
    return found.group(1)


def configured(raw: str) -> Settings:
    """HOUQIN_TEMPLATES and HOUQIN_PUBLIC_URL read the way start-up reads them."""
    return load_settings({"WECHAT_TOKEN": "deployGuideToken123", "WECHAT_APPID": "wxappid", "WECHAT_SECRET": "s",
                          "HOUQIN_SECRET_KEY": "s" * 32, "DATABASE_URL": "sqlite://",
                          "HOUQIN_TEMPLATES": raw, "HOUQIN_PUBLIC_URL": PUBLIC_URL})


@pytest.fixture
def settings(settings: Settings) -> Settings:
    guide = configured(guide_templates())
    return settings.with_overrides(templates=guide.templates, public_url=guide.public_url)


def test_the_guide_maps_the_kinds_it_promises():
    assert set(json.loads(guide_templates())) == GUIDE_KINDS
    assert configured(guide_templates()).templates["bus_alarm"].template_id == "TPL_ALARM"


@pytest.mark.usefixtures("school_people")
def test_the_guides_template_example_end_to_end(houqin, monkeypatch, fake_wechat, wechat_user, deliver, clock):
    monkeypatch.setenv("HOUQIN_TEMPLATES", guide_templates())
    monkeypatch.setenv("HOUQIN_PUBLIC_URL", PUBLIC_URL)
    checked = houqin("templates", "check")
    assert checked.exit_code == 0, checked.output
    assert f"{len(GUIDE_KINDS)} 类推送的模板均已核对" in checked.output

    wechat_user("程财宝")  # binds on Monday 2026-11-23 08:00 (school_people's clock)
    clock.advance(hours=72)  # 程财宝 has not written since binding: no customer-service message reaches him
    teacher = wechat_user("张丽")
    teacher.dialog([("报修", "地点"), ("三(2)班", "描述"), (LONG, "R1")])
    deliver()

    sent = fake_wechat.sent_to("程财宝")
    assert [c.endpoint for c in sent] == [TEMPLATE]
    (call,) = sent
    assert call.body["template_id"] == "TPL_REPAIR"
    assert call.body["data"] == {"character_string1": {"value": "R1"}, "thing2": {"value": "三(2)班"},
                                 "thing3": {"value": LONG[:19] + "…"},
                                 "time4": {"value": "2026年11月26日 08:00"}}
    assert call.body["url"].startswith(f"{PUBLIC_URL}/p/")
    assert call.warnings == []


def test_the_guides_mode_switch_answers_every_message_on_the_way(services: Services, settings: Settings):
    """Section 2: 明文 (no key) → key + WECHAT_ACCEPT_PLAINTEXT=1 → 兼容 → 安全 → the flag removed.
    At each step the messages WeChat may send in the account's mode at that moment are answered."""
    key = settings.wechat_aes_key
    steps = [({"wechat_aes_key": ""}, ["plain"]),
             ({"accept_plaintext": True}, ["plain", "compat", "safe"]),  # key set, not yet submitted
             ({}, ["safe"])]  # 安全模式 submitted, the flag removed
    openid = "oSwitchingTeacher"
    for overrides, modes in steps:
        transport = client_transport(sibling_app(services, **overrides).test_client())
        for mode in modes:
            reply = user_for(settings, transport, aes_key=key, mode=mode, openid=openid).say("随便说说")
            assert reply.status == 200 and "没有听懂" in reply.text, (overrides, mode)
    transport = client_transport(sibling_app(services).test_client())
    assert user_for(settings, transport, mode="plain", openid=openid).say("随便说说").status == 403
