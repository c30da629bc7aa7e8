"""The fake WeChat's template reports (TEMPLATESENDJOBFINISH) for a county: each school with an account of
its own is reported to at its own /wechat/<slug>, a school added while the fake and the bot run included —
the embedded fake of `houqin serve` and `houqin fake-wechat --webhook` alike."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import requests
from flask import Flask
from sqlalchemy import create_engine, select, text

from bot.county import County, report_webhooks
from bot.services import Services
from bot.wechat.fake import RESOLVE_AGAIN
from bot.wechat.gateway import WeChatApi
from bot.wechat.simulator import WeChatUser, http_transport
from bot.wechat.tokens import DatabaseTokenStore
from models import Delivery, InboundMessage, Push
from tests import test_schools
from tests.conftest import People
from tests.test_processes import HOUQIN, clean_env, free_port, stop, wait_for, wait_for_row

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


def test_the_fake_asks_about_an_account_no_school_has_once_in_a_while(
        services: Services, county: County, fake_wechat: Any, transport: Any, houqin: Any) -> None:
    """Reports on sends by an account no school has go to the default account's /wechat, as before, but the
    fake asks the county about that appid at most once per RESOLVE_AGAIN seconds (it reads the schools each
    time); once a school has the account (`houqin school add`), the next ask after that finds its webhook."""
    fake = fake_wechat.fake
    default_hook, resolve = report_webhooks(county, transport)
    asked: list[str] = []
    ticks = [0.0]
    fake.webhook = default_hook
    fake.state.resolve = lambda appid: asked.append(appid) or resolve(appid)
    fake.state.monotonic = lambda: ticks[0]
    api = WeChatApi(fake.base_url, "wxeast", "eastsecret", DatabaseTokenStore(services.factory, "wxeast"))
    msgids = [api.send_template("oStranger", "TPL_NOTICE", {"thing1": {"value": f"通知{i}"}}) for i in range(3)]
    assert [fake_wechat.finish_template_job(m) for m in msgids] == [200, 200, 200]
    assert asked == ["wxeast"]  # one ask for three reports; each went to the default /wechat
    with services.factory() as db:
        assert sum(m.event == "templatesendjobfinish" for m in db.scalars(select(InboundMessage))) == 3
    assert houqin(*EAST).exit_code == 0
    ticks[0] += RESOLVE_AGAIN - 0.5
    assert fake_wechat.finish_template_job(msgids[0]) == 200 and asked == ["wxeast"]
    ticks[0] += 0.5
    assert fake_wechat.finish_template_job(msgids[0]) == 200 and asked == ["wxeast", "wxeast"]
    assert fake.state.webhooks["wxeast"].path == "/wechat/east"
    with county.services("east").factory() as db:
        assert any(m.event == "templatesendjobfinish" for m in db.scalars(select(InboundMessage)))


def test_fake_wechat_command_reports_each_schools_own_account_to_its_webhook(tmp_path: Path) -> None:
    """`houqin fake-wechat --webhook …/wechat --finish success` started first; then a school with its own
    account is added and `houqin serve` runs: its repair push is reported to /wechat/east, signed with
    east's token and key, and confirmed in east's outbox — nothing reaches the default school."""
    fake_port, bot_port = free_port(), free_port()
    account = {"WECHAT_TOKEN": "fakeReportToken42", "WECHAT_APPID": "wxcounty", "WECHAT_SECRET": "s" * 32,
               "WECHAT_AES_KEY": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"}
    env = clean_env(tmp_path, **account, HOUQIN_SECRET_KEY="k" * 32, DATABASE_URL=f"sqlite:///{tmp_path / 'c.db'}",
                    WECHAT_API_BASE=f"http://127.0.0.1:{fake_port}", HOUQIN_PUBLIC_URL="https://houqin.example.edu.cn")

    def houqin(*args: str) -> str:
        done = subprocess.run([*HOUQIN, *args], env=env, cwd=tmp_path, text=True, capture_output=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    fake = subprocess.Popen([*HOUQIN, "fake-wechat", "--port", str(fake_port), "--webhook",
                             f"http://127.0.0.1:{bot_port}/wechat", "--finish", "success"],
                            env=env, cwd=tmp_path, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    bot = None
    try:
        wait_for(f"http://127.0.0.1:{fake_port}/_fake/calls")  # the fake runs before the school exists
        houqin(*EAST)
        houqin("templates", "set", "repair_new=TPL_REPAIR", "--school", "east", "--data", json.dumps(REPAIR_DATA))
        (tmp_path / "east.csv").write_text("姓名,角色\n东校长,管理员\n东老师,教师\n", encoding="utf-8")
        houqin("people", "import", "--school", "east", str(tmp_path / "east.csv"))
        codes = {c["name"]: c["code"] for c in json.loads(houqin("codes", "--json", "--school", "east"))}
        bot = subprocess.Popen([*HOUQIN, "serve", "--port", str(bot_port)], env=env, cwd=tmp_path, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert wait_for(f"http://127.0.0.1:{bot_port}/healthz").status_code == 200
        for name in ("东校长", "东老师"):
            user = WeChatUser(f"o-east-{name}", token=EAST_TOKEN, appid="wxeast", aes_key=EAST_AES,
                              transport=http_transport(f"http://127.0.0.1:{bot_port}"), path="/wechat/east")
            assert "绑定成功" in user.say(f"绑定 {codes[name]}").text
        assert "已提交报修" in user.say("报修 三(2)班 东城窗户漏风").text
        east = create_engine(f"sqlite:///{tmp_path / 'c.east.db'}")
        main = create_engine(env["DATABASE_URL"])
        confirmed = text("SELECT d.confirmed_at FROM deliveries d JOIN pushes p ON p.id = d.push_id "
                         "WHERE p.kind = 'repair_new' AND d.openid = 'o-east-东校长'")
        row = wait_for_row(east, confirmed, lambda r: r[0] is not None)
        assert row is not None and row[0] is not None, row
        sends = [c for c in requests.get(f"http://127.0.0.1:{fake_port}/_fake/calls", timeout=5).json()
                 if c["endpoint"] == "message/template/send"]
        assert [c["openid"] for c in sends] == ["o-east-东校长"]
        with main.connect() as conn:  # the default school heard no report
            assert conn.execute(text("SELECT count(*) FROM inbound_messages "
                                     "WHERE event = 'templatesendjobfinish'")).scalar_one() == 0
        east.dispose()
        main.dispose()
    finally:
        if bot is not None:
            stop(bot)
        stop(fake)
