"""The fake WeChat's template reports (TEMPLATESENDJOBFINISH) for a county: each school with an account of
its own is reported to at its own /wechat/<slug>, a school added while the fake and the bot run included —
the embedded fake of `houqin serve` and `houqin fake-wechat --webhook` alike."""

from __future__ import annotations

import json
import uuid
from typing import Any

from flask import Flask
from sqlalchemy import select

from bot.county import County, report_webhooks
from bot.services import Services
from bot.wechat.simulator import WeChatUser
from models import Delivery, InboundMessage, Push
from tests import test_schools
from tests.conftest import People

county = test_schools.county  # the fixture: the schools a test adds are dropped afterwards

EAST_TOKEN = "eastToken2026abc"
EAST_AES = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq"
REPAIR_DATA = {"character_string1": "{code}", "thing2": "{place}", "thing3": "{description}", "time4": "{time}"}
EAST = ("school", "add", "east", "--name", "东城小学", "--appid", "wxeast", "--token", EAST_TOKEN,
        "--aes-key", EAST_AES, "--secret", "eastsecret")


def test_a_school_added_while_serving_is_reported_to_at_its_own_webhook(
        services: Services, county: County, app: Flask, houqin: Any, fake_wechat: Any, transport: Any,
        clock: Any) -> None:
    """The fake is wired as `houqin serve` wires it at start, before the school exists; `houqin school add`
    then adds 东城小学 with its own account, and its repair push's report reaches /wechat/east."""
    fake = fake_wechat.fake
    fake.webhook, fake.state.resolve = report_webhooks(county, transport)  # at start: the default school alone
    assert houqin(*EAST).exit_code == 0
    assert houqin("templates", "set", "repair_new=TPL_REPAIR", "--school", "east", "--data",
                  json.dumps(REPAIR_DATA)).exit_code == 0
    east = county.services("east")
    people = People(east)
    people.add("东校长", "admin")
    people.add("东老师", "teacher")
    client = app.test_client()

    def post(url: str, body: bytes) -> tuple[int, bytes]:
        res = client.post(url, data=body, content_type="text/xml")
        return res.status_code, res.data

    for name in ("东校长", "东老师"):
        user = WeChatUser("o" + uuid.uuid5(uuid.NAMESPACE_DNS, "east" + name).hex[:27], token=EAST_TOKEN,
                          appid="wxeast", aes_key=EAST_AES, transport=post, path="/wechat/east")
        assert "绑定成功" in user.say(f"绑定 {people.code_of(name)}").text
    assert "R1" in user.say("报修 三(2)班 东城窗户漏风").text
    worker = east.worker()
    try:
        worker.drain()
    finally:
        worker.pool.shutdown(wait=True)
    with east.factory() as db:
        sent = db.scalars(select(Delivery).join(Push).where(Push.kind == "repair_new")).one()
    assert sent.msgid and sent.confirmed_at is None
    assert fake_wechat.finish_template_job(sent.msgid, "success") == 200
    with east.factory() as db:
        assert db.get(Delivery, sent.id).confirmed_at is not None  # type: ignore[union-attr]
        assert any(m.event == "templatesendjobfinish" for m in db.scalars(select(InboundMessage)))
    with services.factory() as db:  # not the default account's /wechat
        assert not any(m.event == "templatesendjobfinish" for m in db.scalars(select(InboundMessage)))
