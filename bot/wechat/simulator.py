"""A simulated WeChat user: builds the XML WeChat would send, signs it, encrypts it in safe mode,
POSTs it to /wechat and opens the reply. Used by the tests, `houqin chat` and the benchmarks."""

from __future__ import annotations

import itertools
import random
import secrets
import string
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from bot.wechat.gateway import Crypto, parse_xml, signature

Transport = Callable[[str, bytes], tuple[int, bytes]]
_msg_ids = itertools.count(random.randint(10**15, 10**16))


def cdata(value: object) -> str:
    text = str(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return text
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def to_xml(fields: dict[str, Any]) -> str:
    def node(key: str, value: Any) -> str:
        if isinstance(value, list):  # a repeated element, e.g. <item> in SendPicsInfo's PicList
            return "".join(node(key, item) for item in value)
        if isinstance(value, dict):
            return f"<{key}>" + "".join(node(k, v) for k, v in value.items()) + f"</{key}>"
        return f"<{key}>{cdata(value)}</{key}>"

    return "<xml>" + "".join(node(k, v) for k, v in fields.items()) + "</xml>"


@dataclass
class SimReply:
    status: int
    body: str
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The reply's text content; "" for "success" or an empty answer."""
        return str(self.fields.get("Content", ""))

    def __contains__(self, needle: str) -> bool:
        return needle in self.text


class WeChatUser:
    """One WeChat follower talking to the bot; `mode` is "plain", "compat" or "safe"."""

    def __init__(self, openid: str, *, token: str, appid: str, transport: Transport, aes_key: str = "",
                 mode: str = "safe", account: str = "gh_houqin", path: str = "/wechat") -> None:
        if mode not in ("plain", "compat", "safe"):
            raise ValueError(f"unknown mode {mode!r}")
        if mode != "plain" and not aes_key:
            mode = "plain"
        self.openid = openid
        self.token = token
        self.account = account
        self.mode = mode
        self.path = path
        self.transport = transport
        self.crypto = Crypto(token, appid, aes_key) if aes_key else None

    # -- building --------------------------------------------------------------------------------
    def message(self, msg_type: str, **fields: Any) -> dict[str, Any]:
        base: dict[str, Any] = {"ToUserName": self.account, "FromUserName": self.openid,
                                "CreateTime": int(time.time()), "MsgType": msg_type}
        base.update(fields)
        if msg_type != "event" and "MsgId" not in base:
            base["MsgId"] = next(_msg_ids)
        return base

    def request(self, fields: dict[str, Any], *, timestamp: int | None = None,
                nonce: str | None = None) -> tuple[str, bytes]:
        """The URL (path + query) and body WeChat would POST for `fields`."""
        ts = str(timestamp if timestamp is not None else int(time.time()))
        nonce = nonce or "".join(secrets.choice(string.digits) for _ in range(10))
        plain = to_xml(fields)
        query = {"signature": signature(self.token, ts, nonce), "timestamp": ts, "nonce": nonce,
                 "openid": self.openid}
        if self.mode == "plain" or self.crypto is None:
            return f"{self.path}?{urlencode(query)}", plain.encode()
        encrypted = self.crypto.encrypt_payload(plain)
        outer = {**fields} if self.mode == "compat" else {"ToUserName": self.account}
        query.update(encrypt_type="aes", msg_signature=signature(self.token, ts, nonce, encrypted))
        return f"{self.path}?{urlencode(query)}", to_xml({**outer, "Encrypt": encrypted}).encode()

    # -- sending ---------------------------------------------------------------------------------
    def post(self, url: str, body: bytes) -> SimReply:
        status, raw = self.transport(url, body)
        text = raw.decode("utf-8", "replace")
        if status != 200 or not text.startswith("<xml>"):
            return SimReply(status, text)
        fields = parse_xml(text)
        if "Encrypt" in fields:
            assert self.crypto is not None, "an encrypted reply to a plaintext request"
            expected = signature(self.token, str(fields["TimeStamp"]), str(fields["Nonce"]), str(fields["Encrypt"]))
            if expected != fields.get("MsgSignature"):
                raise AssertionError("the reply's MsgSignature does not verify")
            fields = parse_xml(self.crypto.decrypt(str(fields["Encrypt"])))
        return SimReply(status, text, fields)

    def send(self, msg_type: str, **fields: Any) -> SimReply:
        return self.post(*self.request(self.message(msg_type, **fields)))

    def say(self, text: str) -> SimReply:
        return self.send("text", Content=text)

    def image(self, media_id: str = "", pic_url: str = "http://mmbiz.qpic.cn/fake.jpg") -> SimReply:
        return self.send("image", PicUrl=pic_url, MediaId=media_id or "media_" + secrets.token_hex(6))

    def voice(self, recognition: str, media_id: str = "") -> SimReply:
        return self.send("voice", MediaId=media_id or "voice_" + secrets.token_hex(6), Format="amr",
                         Recognition=recognition)

    def location(self, latitude: float, longitude: float, label: str = "", scale: int = 15) -> SimReply:
        return self.send("location", Location_X=latitude, Location_Y=longitude, Scale=scale, Label=label)

    def event(self, event: str, key: str = "", **fields: Any) -> SimReply:
        extra = {"EventKey": key} if key or event in ("subscribe", "SCAN", "CLICK", "VIEW") else {}
        return self.send("event", Event=event, **extra, **fields)

    def subscribe(self, scene: str = "") -> SimReply:
        return self.event("subscribe", f"qrscene_{scene}" if scene else "")

    def scan(self, scene: str) -> SimReply:
        return self.event("SCAN", scene, Ticket="ticket_" + secrets.token_hex(4))

    def click(self, key: str) -> SimReply:
        return self.event("CLICK", key)

    def dialog(self, turns: Iterable[tuple[str, str]]) -> list[SimReply]:
        """Send each text and check its reply contains the expected words."""
        replies = []
        for said, expected in turns:
            reply = self.say(said)
            if expected not in reply.text:
                raise AssertionError(f"after {said!r} expected {expected!r} in the reply, got {reply.text!r}")
            replies.append(reply)
        return replies


def http_transport(base_url: str, timeout: float = 10.0) -> Transport:
    """Send to a running bot over HTTP (for `houqin chat` and the benchmarks)."""
    import requests

    session = requests.Session()

    def post(url: str, body: bytes) -> tuple[int, bytes]:
        res = session.post(base_url.rstrip("/") + url, data=body, timeout=timeout,
                           headers={"Content-Type": "text/xml"})
        return res.status_code, res.content

    return post
