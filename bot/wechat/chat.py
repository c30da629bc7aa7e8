"""`houqin chat`: a terminal WeChat client for the running bot, printing replies and pushes."""

from __future__ import annotations

import threading
import time

import click
import requests
from sqlalchemy import select

from bot.services import Services
from bot.wechat.simulator import WeChatUser, http_transport
from models import BindCode, Binding, Person

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


def _watch_pushes(fake_url: str, openid: str, stop: threading.Event) -> None:
    since = time.time()
    while not stop.wait(1.0):
        try:
            calls = requests.get(f"{fake_url}/_fake/calls", params={"openid": openid, "since": str(since)},
                                 timeout=5).json()
        except (requests.RequestException, ValueError):
            continue
        for call in calls:
            since = max(since, call["at"])
            if call["endpoint"].startswith("message/") and not call["errcode"]:
                click.secho(f"\n[推送] {call['text']}", fg="yellow")


def run_chat(services: Services, url: str, fake_url: str, openid: str, name: str | None, mode: str) -> None:
    s = services.settings
    user = WeChatUser(openid, token=s.wechat_token, appid=s.wechat_appid, aes_key=s.wechat_aes_key,
                      transport=http_transport(url), mode=mode)
    click.echo(INTRO.format(url=url, who=name or openid, openid=openid))
    hint = _bind_hint(services, openid, name)
    if hint:
        click.secho(hint, fg="cyan")
    stop = threading.Event()
    if fake_url:
        threading.Thread(target=_watch_pushes, args=(fake_url, openid, stop), daemon=True).start()
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
            words = line.split()
            try:
                if words[0] == "/image":
                    reply = user.image()
                elif words[0] == "/location" and len(words) >= 3:
                    reply = user.location(float(words[1]), float(words[2]))
                elif words[0] == "/scan" and len(words) >= 2:
                    reply = user.scan(words[1])
                elif words[0] == "/click" and len(words) >= 2:
                    reply = user.click(words[1])
                else:
                    reply = user.say(line)
            except requests.RequestException as exc:
                click.secho(f"无法连接 {url}：{exc}（先运行 houqin serve）", fg="red")
                continue
            if reply.status != 200:
                click.secho(f"[HTTP {reply.status}] {reply.body[:200]}", fg="red")
            else:
                click.secho(f"后勤助手> {reply.text or '（无回复）'}", fg="green")
    finally:
        stop.set()
