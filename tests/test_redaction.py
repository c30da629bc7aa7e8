"""Upstream errors are kept without a URL query, access token or AppSecret: in the outbox row, the
console's outbox and ticket pages, the canteen ledger, and the log of `houqin -v` — with the errors
made by a fake WeChat that names the request URL (access_token and all) and quotes the AppSecret."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.export import read_ledger
from bot.services import Services
from bot.wechat.gateway import ApiError, WeChatApi, redact, remember_secret
from handlers.canteen import FEEDBACK_HEADER
from models import Delivery, FeedbackPhoto, TicketPhoto
from models.outbox import FAILED, PENDING
from tests.test_cli_outbox import queue
from tests.test_console import PASSWORD, sign_in

CUSTOM = "message/custom/send"
ROOT = Path(__file__).resolve().parent.parent


def leaky(secret: str) -> str:
    """A WeChat error text as a proxy's error page might give it: the URL with its query, and the secret."""
    return f"system error at {{url}}; appsecret={secret} (secret: {secret}); {{\"secret\": \"{secret}\"}}"


def leaks(text: str, fake_wechat, secret: str) -> list[str]:
    """Every token the fake issued, and the AppSecret, found in `text`."""
    found = [token for token in fake_wechat.state.tokens if token in text]
    return found + ([secret] if secret in text else []) + (["access_token="] if "access_token=F" in text else [])


@pytest.fixture
def office(people, houqin, wechat_user, clock):
    """An admin with a console password, and 张丽, a teacher bound through the webhook (window open)."""
    clock.set("2026-11-23 10:00")
    people.add("周春明", "admin")
    people.add("张丽", "teacher")
    assert houqin("console-password", "周春明", "--password", PASSWORD).exit_code == 0
    return wechat_user("张丽")


def last_error(services: Services, delivery_id: int) -> str:
    with services.factory() as s:
        row = s.get(Delivery, delivery_id)
        assert row is not None and row.status in (PENDING, FAILED)
        return row.last_error or ""


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_push_error_naming_the_url_and_secret_is_stored_and_shown_redacted(
        office, services: Services, settings, fake_wechat, deliver, client) -> None:
    fake_wechat.script(CUSTOM, 48001, errmsg=leaky(settings.wechat_secret))  # final: kept as it is
    delivery_id = queue(services, "张丽", "明天停水")
    deliver()
    stored = last_error(services, delivery_id)
    assert "system error at /cgi-bin/message/custom/send?" in stored  # the reason is kept…
    assert leaks(stored, fake_wechat, settings.wechat_secret) == []  # …without the token and the secret
    sign_in(client)
    page = client.get("/admin/outbox").get_data(as_text=True)
    assert "system error at /cgi-bin/message/custom/send" in page
    assert leaks(page, fake_wechat, settings.wechat_secret) == []


def test_an_unreachable_wechat_is_stored_without_the_token(office, services: Services, settings, fake_wechat,
                                                           make_worker) -> None:
    """The URL it could not reach is named, never with its access_token."""
    token = services.api.token()  # fetched while WeChat answered
    api = WeChatApi(f"http://127.0.0.1:{closed_port()}", settings.wechat_appid, settings.wechat_secret,
                    services.token_store, timeout=2)
    delivery_id = queue(services, "张丽", "明天停电")
    make_worker(api).run_once()
    stored = last_error(services, delivery_id)
    assert "ConnectionRefusedError" in stored and "/cgi-bin/message/custom/send" in stored
    assert token not in stored and "access_token=" not in stored


@pytest.fixture
def make_worker(services: Services):
    from bot.worker import PushWorker

    workers = []

    def make(api: WeChatApi) -> PushWorker:
        workers.append(PushWorker(services.factory, services.settings, api, clock=services.now))
        return workers[-1]

    yield make
    for worker in workers:
        worker.pool.shutdown(wait=True)


def test_photo_errors_are_stored_shown_and_exported_redacted(office, people, wechat_user, services: Services,
                                                             settings, fake_wechat, fetch_media, client, houqin,
                                                             clock, tmp_path: Path) -> None:
    clock.set("2026-11-23 12:10")  # lunch on a school day: canteen feedback is open
    people.add("程财宝", "staff", categories="电教")
    assert "R1" in office.say("报修 三(2)班 投影仪不亮").text
    office.image(media_id="media_projector")
    assert "F1" in office.say("食堂 4 米饭有点硬").text
    office.image(media_id="media_rice")
    fake_wechat.script("media/get", -1, -1, errmsg=leaky(settings.wechat_secret))
    assert fetch_media() == 2
    with services.factory() as s:
        errors = [p.last_error or "" for model in (TicketPhoto, FeedbackPhoto) for p in s.scalars(select(model))]
    assert len(errors) == 2 and all("system error at /cgi-bin/media/get?" in e for e in errors), errors
    assert leaks(" ".join(errors), fake_wechat, settings.wechat_secret) == []

    sign_in(client)
    ticket = client.get("/admin/repairs/R1").get_data(as_text=True)
    assert "system error at /cgi-bin/media/get" in ticket
    assert leaks(ticket, fake_wechat, settings.wechat_secret) == []
    canteen = client.get("/admin/canteen?month=2026-11").get_data(as_text=True)
    assert leaks(canteen, fake_wechat, settings.wechat_secret) == []

    out = tmp_path / "ledger.xlsx"
    assert houqin("export", "canteen", "--month", "2026-11", "--out", str(out)).exit_code == 0
    rows = list(read_ledger(out, "评价明细")[1:])
    photo = str(rows[0][FEEDBACK_HEADER.index("照片")])
    assert "system error at /cgi-bin/media/get" in photo
    assert leaks(" ".join(str(c) for row in rows for c in row), fake_wechat, settings.wechat_secret) == []


def test_verbose_logging_names_no_token_or_secret(services: Services, settings, fake_wechat, tmp_path: Path) -> None:
    """`houqin -v` logs urllib3's request lines (each URL with its access_token) and the refusal."""
    secret = "AppSecret0123456789abcdef"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "HOUQIN_", "DATABASE_URL"))}
    env.update(WECHAT_TOKEN=settings.wechat_token, WECHAT_APPID=settings.wechat_appid, WECHAT_SECRET=secret,
               HOUQIN_SECRET_KEY=settings.secret_key, DATABASE_URL=f"sqlite:///{tmp_path / 'verbose.db'}",
               WECHAT_API_BASE=fake_wechat.base_url, HOUQIN_INSTANCE=str(tmp_path / "instance"),
               PYTHONPATH=str(ROOT))
    fake_wechat.script("menu/create", -1, errmsg=leaky(secret))
    run = subprocess.run([sys.executable, "-m", "bot.cli", "-v", "wechat-menu", "--upload"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    said = run.stdout + run.stderr
    assert run.returncode != 0 and "微信拒绝了菜单：-1: system error at /cgi-bin/menu/create?" in said, said
    assert "urllib3.connectionpool" in said and "POST /cgi-bin/menu/create?" in said  # the debug lines are there
    assert fake_wechat.state.tokens and leaks(said, fake_wechat, secret) == [], said


@pytest.mark.parametrize("text", [
    "GET /cgi-bin/media/get?access_token=TOKEN_abcdef123&media_id=x HTTP/1.1",
    "HTTPConnectionPool(host='h', port=1): Max retries exceeded with url: /cgi-bin/x?access_token=TOKEN_abcdef123 (",
    '{"access_token": "TOKEN_abcdef123", "expires_in": 7200}',
    "token=access_token%3DTOKEN_abcdef123",
])
def test_an_api_error_names_no_token_however_it_is_written(text: str) -> None:
    remember_secret("TOKEN_abcdef123")  # as WeChatApi does with every token it uses
    assert "TOKEN_abcdef123" not in redact(text)
    assert "TOKEN_abcdef123" not in str(ApiError(-1, text))
    assert redact("Why? Because it rained.") == "Why? Because it rained."  # a question mark is no URL
