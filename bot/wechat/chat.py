"""`houqin chat`: a terminal WeChat client for the running bot, printing replies and pushes."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import click
import requests
from sqlalchemy import select

from bot.services import Services
from bot.wechat.simulator import SimReply, WeChatUser, http_transport
from models import BindCode, Binding, Person

DEFAULT_URL = "http://127.0.0.1:5000"
CONNECTED = "已连接到 houqin serve（pid {pid}，{url}）"
RECONNECTED = "houqin serve 已重启，已重新连接（pid {pid}，{url}）"
UNREACHABLE = "无法连接 {url}：{error}（先运行 houqin serve）"
INTRO = ("已连接 {url}，以「{who}」的身份聊天（openid {openid}）。\n"
         "直接输入文字发送；/image 发图片，/location 纬度 经度 发位置，/scan 场景 扫码，/click 菜单键，/quit 退出。")


def _bind_hint(services: Services, openid: str, name: str | None) -> str:
    if not name:
        return ""
    with services.factory() as db:
        binding = db.get(Binding, openid)
        if binding is not None and binding.person_id is not None:
            return ""
        person = db.scalar(select(Person).where(Person.name == name))
        if person is None:
            return f"（找不到名为「{name}」的人员；发送「绑定 绑定码」可用任意绑定码绑定）"
        code = db.scalar(select(BindCode).where(BindCode.person_id == person.id, BindCode.used_at.is_(None))
                         .order_by(BindCode.id.desc()))
    return f"提示：{name} 的绑定码是 {code.code}，发送「绑定 {code.code}」完成绑定。" if code else ""


class ServeLink:
    """Where the running `houqin serve` and its fake WeChat are. After a failed call the runtime file is
    read again: a serve started since (another pid; a new fake, perhaps a new port) is taken up, and the
    user is told. A bot URL given with --url stays."""

    def __init__(self, locate: Callable[[], dict[str, Any]], url: str = "") -> None:
        runtime = locate()
        self.locate, self.fixed = locate, bool(url)
        self.bot_url = url or str(runtime.get("bot_url") or DEFAULT_URL)
        self.fake_url = str(runtime.get("fake_wechat_url") or "")
        self.pid = runtime.get("pid")
        self._post = http_transport(self.bot_url)
        self._lock = threading.Lock()

    def post(self, url: str, body: bytes) -> tuple[int, bytes]:
        return self._post(url, body)

    def refresh(self) -> bool:
        """True when another serve runs now than the one last seen (the link now points at it)."""
        with self._lock:
            runtime = self.locate()
            pid, before = runtime.get("pid"), self.pid
            if not isinstance(pid, int) or pid == before or not _alive(pid):  # a file left by a killed serve
                return False
            self.pid, self.fake_url = pid, str(runtime.get("fake_wechat_url") or "")
            if not self.fixed:
                self.bot_url = str(runtime.get("bot_url") or self.bot_url)
                self._post = http_transport(self.bot_url)
        click.secho("\n" + (RECONNECTED if before else CONNECTED).format(pid=pid, url=self.bot_url), fg="cyan")
        return True


def _alive(pid: int) -> bool:
    if pid <= 0:  # 0 and -n would name process groups
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _watch_pushes(link: ServeLink, openid: str, stop: threading.Event) -> None:
    since = time.time()
    while not stop.wait(1.0):
        fake_url = link.fake_url
        try:
            if not fake_url:
                raise ValueError("no fake WeChat known yet")
            calls = requests.get(f"{fake_url}/_fake/calls", params={"openid": openid, "since": str(since)},
                                 timeout=5).json()
        except (requests.RequestException, ValueError):
            link.refresh()
            continue
        for call in calls:
            since = max(since, call["at"])
            if call["endpoint"].startswith("message/") and not call["errcode"]:
                click.secho(f"\n[推送] {call['text']}", fg="yellow")


def _send(user: WeChatUser, line: str) -> SimReply:
    words = line.split()
    if words[0] == "/image":
        return user.image()
    if words[0] == "/location" and len(words) >= 3:
        return user.location(float(words[1]), float(words[2]))
    if words[0] == "/scan" and len(words) >= 2:
        return user.scan(words[1])
    if words[0] == "/click" and len(words) >= 2:
        return user.click(words[1])
    return user.say(line)


def run_chat(services: Services, link: ServeLink, openid: str, name: str | None, mode: str) -> None:
    from bot.county import webhook_path

    s = services.settings
    user = WeChatUser(openid, token=s.wechat_token, appid=s.wechat_appid, aes_key=s.wechat_aes_key,
                      transport=link.post, mode=mode, path=webhook_path(services))
    click.echo(INTRO.format(url=link.bot_url, who=name or openid, openid=openid))
    hint = _bind_hint(services, openid, name)
    if hint:
        click.secho(hint, fg="cyan")
    stop = threading.Event()
    threading.Thread(target=_watch_pushes, args=(link, openid, stop), daemon=True).start()
    try:
        while True:
            try:
                line = input("我> ").strip()
            except EOFError:
                break
            if not line:
                continue
            if line == "/quit":
                break
            try:
                try:
                    reply = _send(user, line)
                except requests.ConnectionError:  # nothing arrived: after a restart, send it to the new serve
                    if not link.refresh():
                        raise
                    reply = _send(user, line)
            except requests.RequestException as exc:
                click.secho(UNREACHABLE.format(url=link.bot_url, error=exc), fg="red")
                continue
            if reply.status != 200:
                click.secho(f"[HTTP {reply.status}] {reply.body[:200]}", fg="red")
            else:
                click.secho(f"后勤助手> {reply.text or '（无回复）'}", fg="green")
    finally:
        stop.set()
