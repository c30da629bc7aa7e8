"""The gateway's inbound half on its own: XML parsing, signatures, safe-mode crypto and key rotation.
The webhook tests (tests/test_webhook.py) cover the same ground end to end; these pin the edges."""

from __future__ import annotations

import base64
import http.client
import logging
import secrets
import socket
import time
from collections.abc import Callable

import pytest

from bot.wechat.fake import FakeWeChat, KeepAliveHandler
from bot.wechat.gateway import (
    ApiError,
    BadMessage,
    BadSignature,
    Codec,
    Crypto,
    TokenStore,
    WeChatApi,
    check_timestamp,
    parse_xml,
    render_text,
    signature,
)
from bot.wechat.simulator import to_xml

TOKEN, APPID = "gatewayToken0001", "wxgateway000000001"


def key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()[:43]


def args(encrypted: str = "", timestamp: int | None = None, nonce: str = "42") -> dict[str, str]:
    ts = str(timestamp if timestamp is not None else int(time.time()))
    out = {"signature": signature(TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce}
    if encrypted:
        out.update(encrypt_type="aes", msg_signature=signature(TOKEN, ts, nonce, encrypted))
    return out


def test_parse_xml_reads_nested_and_repeated_elements() -> None:
    body = to_xml({"MsgType": "event", "Event": "pic_weixin", "SendPicsInfo": {
        "Count": 2, "PicList": {"item": [{"PicMd5Sum": "a"}, {"PicMd5Sum": "b"}]}}})
    assert parse_xml(body) == {"MsgType": "event", "Event": "pic_weixin", "SendPicsInfo": {
        "Count": "2", "PicList": {"item": [{"PicMd5Sum": "a"}, {"PicMd5Sum": "b"}]}}}


@pytest.mark.parametrize("body", [
    b"", b"<xml>", b"<notxml/>", b"plain text", b'<!DOCTYPE xml><xml><a>1</a></xml>',
    b'<!DOCTYPE xml [<!ENTITY e "x">]><xml><a>&e;</a></xml>',
    '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE xml [<!ENTITY e "x">]><xml><a>&e;</a></xml>'.encode("utf-16"),
])
def test_parse_xml_refuses_malformed_and_dtd_bodies(body: bytes) -> None:
    with pytest.raises(BadMessage):
        parse_xml(body)


def test_render_text_survives_cdata_terminators() -> None:
    xml = render_text("o]]>user", "gh_houqin", "echo: ]]><b>&amp; 😀")
    fields = parse_xml(xml)
    assert fields["Content"] == "echo: ]]><b>&amp; 😀" and fields["ToUserName"] == "o]]>user"


@pytest.mark.parametrize(("offset", "ok"), [(0, True), (300, True), (-300, True), (301, False), (-301, False)])
def test_timestamp_tolerance_is_300_seconds(offset: int, ok: bool) -> None:
    now = 1_800_000_000.0
    if ok:
        check_timestamp(str(int(now) + offset), 300, now=now)
    else:
        with pytest.raises(BadSignature):
            check_timestamp(str(int(now) + offset), 300, now=now)


def test_codec_opens_with_the_previous_key_and_seals_with_it() -> None:
    old, new = key(), key()
    codec = Codec(TOKEN, APPID, aes_key=new, previous_key=old)
    message = to_xml({"ToUserName": "gh", "FromUserName": "oUser", "CreateTime": 1, "MsgType": "text",
                      "Content": "我", "MsgId": 1})
    for sender_key in (new, old):
        sender = Crypto(TOKEN, APPID, sender_key)
        encrypted = sender.encrypt_payload(message)
        data, crypto = codec.open(args(encrypted), to_xml({"ToUserName": "gh", "Encrypt": encrypted}).encode())
        assert data["Content"] == "我"
        sealed = parse_xml(codec.seal(data, "你好", crypto, "42"))
        assert parse_xml(sender.decrypt(sealed["Encrypt"]))["Content"] == "你好"  # the sender can read it
    stranger = Crypto(TOKEN, APPID, key()).encrypt_payload(message)
    with pytest.raises(BadSignature):
        codec.open(args(stranger), to_xml({"ToUserName": "gh", "Encrypt": stranger}).encode())


def test_codec_plaintext_reply_and_success() -> None:
    codec = Codec(TOKEN, APPID)  # plaintext mode
    data, crypto = codec.open(args(), to_xml({"FromUserName": "oUser", "ToUserName": "gh", "MsgType": "text",
                                              "Content": "hi"}).encode())
    assert crypto is None
    assert codec.seal(data, "", crypto, "42") == "success"
    assert parse_xml(codec.seal(data, "好", crypto, "42"))["Content"] == "好"


class _Store(TokenStore):
    def __init__(self, token: str | None) -> None:
        self.token = token

    def get(self) -> str | None:
        return self.token

    def refresh(self, fetch: Callable[[bool], tuple[str, int]], stale: str | None = None) -> str:
        return fetch(False)[0]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("token", [None, "TOKEN_abc123"], ids=["token-fetch", "api-call"])
def test_an_unreachable_wechat_error_names_no_secret_or_token(token: str | None) -> None:
    """requests' error names the URL it failed on, query and all: the AppSecret, the access token."""
    api = WeChatApi(f"http://127.0.0.1:{_closed_port()}", APPID, "AppSecret_0123456789", _Store(token), timeout=2)
    with pytest.raises(ApiError) as caught:
        api.send_text("oUser", "你好")
    assert "Connection" in str(caught.value) and "/cgi-bin/" in str(caught.value)
    assert "AppSecret_0123456789" not in str(caught.value) and "TOKEN_abc123" not in str(caught.value)
    assert "secret=" not in str(caught.value) and "access_token=" not in str(caught.value)


def test_sends_keep_their_connection_to_wechat_open(services, people, wechat_user, fake_wechat,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Like WeChat's API, the fake keeps connections alive (HTTP/1.1): a process's sends reuse them
    instead of a TCP handshake per call, and a route that leaves a request's body unread (an unknown
    path) does not stall or spoil the next request on the same connection."""
    people.add("张丽", "teacher")
    wechat_user("张丽")
    api = services.api
    api.send_text(fake_wechat.names["张丽"], "预热")  # the token fetched, a connection open
    connects: list[int] = []
    connect = http.client.HTTPConnection.connect

    def counting(conn: http.client.HTTPConnection) -> None:
        connects.append(conn.port or 0)
        connect(conn)

    monkeypatch.setattr(http.client.HTTPConnection, "connect", counting)
    started = time.monotonic()
    status, _ = api._sends.post("/cgi-bin/no/such/api", b"x" * 5000)
    assert status == 404
    for i in range(5):
        api.send_text(fake_wechat.names["张丽"], f"第{i}条通知")
    assert time.monotonic() - started < 5.0
    assert [c.body["text"]["content"] for c in fake_wechat.sent_to("张丽")][-5:] == [f"第{i}条通知" for i in range(5)]
    assert len(connects) <= 1, connects  # a TCP handshake per call, closed after each, would be 6
    took = []
    for i in range(15):  # headers and body of an answer go out at once (no Nagle wait for a delayed ACK)
        started = time.monotonic()
        api.send_text(fake_wechat.names["张丽"], f"快{i}")
        took.append(time.monotonic() - started)
    assert sorted(took)[len(took) // 2] < 0.03, took  # ~0.045 s a call with Nagle's algorithm


def test_a_stopped_fake_closes_the_connections_it_kept_open() -> None:
    fake = FakeWeChat().start()
    store = _Store(None)
    api = WeChatApi(fake.base_url, APPID, "AppSecret_0123456789", store, timeout=2)
    store.token = api.refresh_token(None)  # the fake's token, kept: the next calls only send
    api.send_text("oUser", "你好")  # answered, over a connection kept open
    assert [c.body["text"]["content"] for c in fake.sent()] == ["你好"]
    fake.stop()
    with pytest.raises(ApiError) as caught:  # not answered by the stopped fake's idle connection
        api.send_text("oUser", "再见")
    assert caught.value.errcode is None
    assert [c.body["text"]["content"] for c in fake.sent()] == ["你好"]


def test_the_fake_closes_an_idle_kept_connection_without_logging_an_error(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Closing a kept-alive connection left idle is routine for WeChat's servers, and for the fake: no
    "Request timed out" error in the werkzeug log (it used to land in other tests' captured logs)."""
    monkeypatch.setattr(KeepAliveHandler, "timeout", 0.2)
    caplog.set_level(logging.INFO, logger="werkzeug")
    fake = FakeWeChat().start()
    try:
        store = _Store(None)
        api = WeChatApi(fake.base_url, APPID, "AppSecret_0123456789", store, timeout=2)
        store.token = api.refresh_token(None)
        api.send_text("oUser", "第一条")
        time.sleep(0.6)  # the fake closes the idle connection; the next send opens a new one
        api.send_text("oUser", "第二条")
    finally:
        fake.stop()
    assert [c.body["text"]["content"] for c in fake.sent()] == ["第一条", "第二条"]
    werkzeug = [r for r in caplog.records if r.name == "werkzeug"]
    assert werkzeug and all(r.levelno == logging.INFO for r in werkzeug), [r.getMessage() for r in werkzeug]


def test_a_kept_connection_the_server_closed_while_idle_is_opened_again() -> None:
    """WeChat closes an idle kept-alive connection after a while: the next push goes out on a new one
    instead of failing on the dead one (and being retried minutes later)."""
    fake = FakeWeChat().start()
    port = int(fake.base_url.rsplit(":", 1)[1])
    store = _Store(None)
    api = WeChatApi(fake.base_url, APPID, "AppSecret_0123456789", store, timeout=2)
    store.token = api.refresh_token(None)
    api.send_text("oUser", "第一条")
    fake.stop()  # closes the connection it kept for us
    again = FakeWeChat(port).start()
    try:
        again.state.tokens = fake.state.tokens  # the same WeChat behind the same address
        api.send_text("oUser", "第二条")
        assert [c.body["text"]["content"] for c in again.sent()] == ["第二条"]
    finally:
        again.stop()
