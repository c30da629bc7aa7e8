"""`GET/POST /wechat` through HTTP: signed (and in safe mode encrypted) XML in, XML out.

Everything here goes through the real webhook: the Flask test client, or a real threaded server on
loopback for concurrent retries. Requests are built by the simulator exactly as WeChat builds them.
"""

from __future__ import annotations

import base64
import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, event, func, select
from werkzeug.serving import make_server

from bot import create_app
from bot.config import Settings
from bot.engine import NOT_UNDERSTOOD, UNSUPPORTED, Context, Conversation, Engine, Incoming, Reply
from bot.inbox import APOLOGY, Inbox
from bot.services import Services
from bot.wechat.gateway import Crypto, parse_xml, signature
from bot.wechat.simulator import SimReply, WeChatUser, http_transport, to_xml
from bot.wechat.webhook import PathOnlyRequestHandler
from handlers import CAPABILITIES
from handlers.identity import BAD_CODE, NOT_BOUND_YET, WELCOME
from models import BindAttempt, Binding, ConversationState, InboundMessage, Person

Post = Callable[[str, bytes], tuple[int, bytes]]
LIMIT = 64 * 1024
ACCOUNT = "gh_houqin"


# -- helpers -----------------------------------------------------------------------------------
def new_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()[:43]


def count(services: Services, model: type[Any]) -> int:
    with services.factory() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def inbound(services: Services, openid: str) -> list[InboundMessage]:
    with services.factory() as s:
        return list(s.scalars(select(InboundMessage).where(InboundMessage.openid == openid)
                              .order_by(InboundMessage.id)))


@contextmanager
def statements_run(services: Services, *, whole: bool = False) -> Iterator[list[str]]:
    """The SQL statements the block runs (BEGIN and COMMIT are the driver's and not listed), each cut
    to its first 80 characters unless `whole`."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split())[:None if whole else 80])

    event.listen(services.db_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(services.db_engine, "before_cursor_execute", record)


@contextmanager
def no_database(services: Services) -> Iterator[None]:
    """Fails unless the block leaves the database alone: no statement run, no inbound row added."""
    before = count(services, InboundMessage)
    with statements_run(services) as statements:
        yield
    assert statements == [], f"the request ran SQL: {statements}"
    assert count(services, InboundMessage) == before


def with_query(url: str, **changes: str | None) -> str:
    """`url` with query arguments replaced (None removes one)."""
    path, _, query = url.partition("?")
    args = dict(parse_qsl(query))
    for name, value in changes.items():
        if value is None:
            args.pop(name, None)
        else:
            args[name] = value
    return f"{path}?{urlencode(args)}"


def signed_url(token: str, *, timestamp: int | None = None, nonce: str = "1357924680", **extra: str) -> str:
    ts = str(timestamp if timestamp is not None else int(time.time()))
    return "/wechat?" + urlencode({"signature": signature(token, ts, nonce), "timestamp": ts, "nonce": nonce,
                                   **extra})


def safe_request(settings: Settings, inner: str | bytes, aes_key: str = "") -> tuple[str, bytes]:
    """A safe-mode request whose encrypted payload is `inner`, whatever it is, correctly signed."""
    crypto = Crypto(settings.wechat_token, settings.wechat_appid, aes_key or settings.wechat_aes_key)
    plain = inner.decode("utf-8") if isinstance(inner, bytes) else inner
    encrypted = crypto.encrypt_payload(plain)
    ts, nonce = str(int(time.time())), "2468013579"
    url = "/wechat?" + urlencode({
        "signature": signature(settings.wechat_token, ts, nonce), "timestamp": ts, "nonce": nonce,
        "encrypt_type": "aes", "msg_signature": signature(settings.wechat_token, ts, nonce, encrypted)})
    return url, to_xml({"ToUserName": ACCOUNT, "Encrypt": encrypted}).encode()


def post(client: FlaskClient, url: str, body: bytes) -> Any:
    return client.post(url, data=body, content_type="text/xml")


def client_transport(client: FlaskClient) -> Post:
    def send(url: str, body: bytes) -> tuple[int, bytes]:
        res = post(client, url, body)
        return res.status_code, res.data

    return send


def sibling_app(services: Services, **overrides: Any) -> Flask:
    """Another app on the same database with some settings changed (say, the AES keys)."""
    other = Services(services.settings.with_overrides(**overrides), services.db_engine, services.schema,
                     clock=services.clock)
    return create_app(services=other)


def user_for(app_settings: Settings, transport: Post, *, aes_key: str | None = None, mode: str = "safe",
             openid: str = "") -> WeChatUser:
    return WeChatUser(openid or "o" + secrets.token_hex(14), token=app_settings.wechat_token,
                      appid=app_settings.wechat_appid, transport=transport, mode=mode,
                      aes_key=app_settings.wechat_aes_key if aes_key is None else aes_key)


def plaintext_mode(services: Services, *, accept: bool = False) -> None:
    """Serve as a bot without an AES key (plaintext mode) or, with `accept`, as one with its key and
    WECHAT_ACCEPT_PLAINTEXT=1 (the app reads services.codec per request)."""
    changes: dict[str, Any] = ({"accept_plaintext": True} if accept
                               else {"wechat_aes_key": "", "wechat_aes_key_previous": ""})
    services.settings = services.settings.with_overrides(**changes)
    services.__dict__.pop("codec", None)


def use_capabilities(services: Services, *extra: Conversation) -> None:
    """Serve the project's capabilities plus test-only ones (the app reads services.inbox per request)."""
    engine = Engine([*CAPABILITIES, *extra])
    services.__dict__["engine"] = engine
    services.__dict__["inbox"] = Inbox(services.db_engine, services.factory, engine, services.settings, clock=services.now,
                                       nonces=services.nonces)


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    """The app on a real threaded HTTP server on loopback, like several workers behind one port."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=PathOnlyRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


# -- GET handshake ------------------------------------------------------------------------------
def test_handshake_echoes_echostr(client: FlaskClient, settings: Settings, services: Services) -> None:
    with no_database(services):
        res = client.get(signed_url(settings.wechat_token, echostr="7203848526716938234"))
    assert res.status_code == 200
    assert res.get_data(as_text=True) == "7203848526716938234"


@pytest.mark.parametrize("change", [
    pytest.param({"signature": "0" * 40}, id="wrong-signature"),
    pytest.param({"signature": None}, id="no-signature"),
    pytest.param({"nonce": "9999999999"}, id="signed-for-another-nonce"),
    pytest.param({"timestamp": None}, id="no-timestamp"),
])
def test_handshake_refuses_bad_signature(client: FlaskClient, settings: Settings, services: Services,
                                         change: dict[str, str | None]) -> None:
    url = with_query(signed_url(settings.wechat_token, echostr="echo-me"), **change)
    with no_database(services):
        res = client.get(url)
    assert res.status_code == 403
    assert "echo-me" not in res.get_data(as_text=True)


@pytest.mark.parametrize(("offset", "status"), [(-301, 403), (301, 403), (-3600, 403), (-290, 200), (290, 200)])
def test_handshake_timestamp_window(client: FlaskClient, settings: Settings, offset: int, status: int) -> None:
    res = client.get(signed_url(settings.wechat_token, timestamp=int(time.time()) + offset, echostr="e"))
    assert res.status_code == status


def test_handshake_signature_with_another_token_is_refused(client: FlaskClient) -> None:
    assert client.get(signed_url("someone-elses-token", echostr="e")).status_code == 403


# -- the three modes ----------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["plain", "compat", "safe"])
def test_each_mode_is_answered_in_kind(wechat_user: Any, people: Any, services: Services, settings: Settings,
                                       mode: str) -> None:
    if mode == "plain":
        plaintext_mode(services)
    people.add("郑老师", "teacher")
    user: WeChatUser = wechat_user("郑老师", mode=mode)  # binds through the webhook in this mode
    reply = user.say("我")
    assert reply.status == 200
    assert "郑老师" in reply.text and "教师" in reply.text
    assert reply.fields["ToUserName"] == user.openid and reply.fields["FromUserName"] == ACCOUNT
    assert reply.fields["MsgType"] == "text"
    outer = parse_xml(reply.body)
    if mode == "plain":
        assert "Encrypt" not in outer and "郑老师" in reply.body
    else:  # the simulator has already checked MsgSignature and decrypted; the raw body must hide the text
        assert set(outer) == {"Encrypt", "MsgSignature", "TimeStamp", "Nonce"}
        assert "郑老师" not in reply.body
        assert outer["MsgSignature"] == signature(settings.wechat_token, outer["TimeStamp"], outer["Nonce"],
                                                  outer["Encrypt"])
    row = inbound(services, user.openid)[-1]
    assert row.payload["Content"] == "我" and "Encrypt" not in row.payload  # the opened message is stored


def test_plaintext_only_bot_answers_plain_and_refuses_encrypted(services: Services, settings: Settings) -> None:
    app = sibling_app(services, wechat_aes_key="", wechat_aes_key_previous="")
    transport = client_transport(app.test_client())
    plain = user_for(settings, transport, aes_key="", mode="plain")
    reply = plain.say("随便说说")
    assert reply.status == 200 and "<Encrypt>" not in reply.body and "没有听懂" in reply.text
    safe = user_for(settings, transport, mode="safe")
    with no_database(services):
        assert safe.say("随便说说").status == 400


def test_encrypted_reply_uses_the_request_nonce_and_a_fresh_timestamp(wechat_user: Any) -> None:
    user: WeChatUser = wechat_user("路人", bind=False)
    url, body = user.request(user.message("text", Content="随便说说"), nonce="1122334455")
    reply = user.post(url, body)
    outer = parse_xml(reply.body)
    assert outer["Nonce"] == "1122334455"
    assert abs(int(outer["TimeStamp"]) - time.time()) < 60
    assert "没有听懂" in reply.text


# -- refused before the database ------------------------------------------------------------------
def _tampered(user: WeChatUser, settings: Settings, how: str) -> tuple[str, bytes]:
    now = int(time.time())
    fields = user.message("text", Content="绑定 ABCDEF")
    if how == "stale":
        return user.request(fields, timestamp=now - 301)
    if how == "future":
        # well past the window: a loaded machine may take a second or two to answer, which brings
        # a timestamp just past it back inside
        return user.request(fields, timestamp=now + settings.timestamp_tolerance_seconds + 60)
    if how == "an-hour-old":
        return user.request(fields, timestamp=now - 3600)
    url, body = user.request(fields)
    if how == "wrong-signature":
        return with_query(url, signature=signature("x", "y", "z")), body
    if how == "no-signature":
        return with_query(url, signature=None), body
    if how == "wrong-msg_signature":
        return with_query(url, msg_signature=signature("x", "y", "z")), body
    if how == "no-msg_signature":
        return with_query(url, msg_signature=None), body
    if how == "not-a-timestamp":
        return with_query(url, timestamp="yesterday"), body
    if how == "tampered-ciphertext":
        outer = parse_xml(body)
        cipher = outer["Encrypt"]
        flipped = cipher[:20] + ("A" if cipher[20] != "A" else "B") + cipher[21:]
        return url, to_xml({**outer, "Encrypt": flipped}).encode()
    if how == "another-key":
        stranger = user_for(settings, user.transport, aes_key=new_key(), openid=user.openid)
        return stranger.request(fields)
    if how == "another-appid":
        stranger = WeChatUser(user.openid, token=settings.wechat_token, appid="wxsomeoneelse0000",
                              aes_key=settings.wechat_aes_key, transport=user.transport)
        return stranger.request(fields)
    raise AssertionError(how)


@pytest.mark.parametrize("mode", ["plain", "safe"])
@pytest.mark.parametrize("how", ["wrong-signature", "no-signature", "stale", "future", "an-hour-old",
                                 "not-a-timestamp"])
def test_bad_signature_or_timestamp_is_403(wechat_user: Any, services: Services, settings: Settings, mode: str,
                                            how: str) -> None:
    if mode == "plain":
        plaintext_mode(services)
    user: WeChatUser = wechat_user("路人", bind=False, mode=mode)
    url, body = _tampered(user, settings, how)
    with no_database(services):
        assert user.post(url, body).status == 403


@pytest.mark.parametrize("how", ["wrong-msg_signature", "no-msg_signature", "tampered-ciphertext", "another-key",
                                 "another-appid"])
def test_bad_safe_mode_envelope_is_403(wechat_user: Any, services: Services, settings: Settings,
                                       how: str) -> None:
    user: WeChatUser = wechat_user("路人", bind=False, mode="safe")
    url, body = _tampered(user, settings, how)
    with no_database(services):
        assert user.post(url, body).status == 403


def test_a_timestamp_inside_the_window_is_accepted(wechat_user: Any) -> None:
    user: WeChatUser = wechat_user("路人", bind=False)
    reply = user.post(*user.request(user.message("text", Content="随便说说"), timestamp=int(time.time()) - 280))
    assert reply.status == 200 and "没有听懂" in reply.text


def _padded(user: WeChatUser, size: int) -> tuple[str, bytes]:
    """A plaintext request whose body is exactly `size` bytes (white space after the root is allowed)."""
    url, body = user.request(user.message("text", Content="随便说说"))
    assert len(body) <= size
    return url, body + b" " * (size - len(body))


def test_body_of_exactly_64_kib_is_accepted(wechat_user: Any, services: Services) -> None:
    plaintext_mode(services)
    user: WeChatUser = wechat_user("路人", bind=False, mode="plain")
    reply = user.post(*_padded(user, LIMIT))
    assert reply.status == 200 and "没有听懂" in reply.text


@pytest.mark.parametrize("mode", ["plain", "safe"])
def test_body_over_64_kib_is_413(wechat_user: Any, services: Services, mode: str) -> None:
    user: WeChatUser = wechat_user("路人", bind=False, mode=mode)
    with no_database(services):
        assert user.post(*_padded(user, LIMIT + 1)).status == 413
        assert user.send("text", Content="很长" * 20000).status == 413


def test_chunked_body_over_64_kib_is_413(client: FlaskClient, wechat_user: Any, services: Services) -> None:
    """No Content-Length (chunked transfer): the webhook stops reading at the limit."""
    import io

    user: WeChatUser = wechat_user("路人", bind=False, mode="plain")
    url, body = _padded(user, LIMIT + 10)
    with no_database(services):
        res = client.post(url, input_stream=io.BytesIO(body), content_type="text/xml",
                          environ_overrides={"wsgi.input_terminated": True})
    assert res.status_code == 413


def _message_xml(content: str = "随便说说") -> str:
    return ("<xml><ToUserName><![CDATA[gh_houqin]]></ToUserName><FromUserName><![CDATA[oEVIL]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content>{content}</Content><MsgId>1234567890123456</MsgId></xml>")


LAUGHS = ('<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY lol "lol">'
          + "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'
                    for i in range(1, 10))
          + "]>" + _message_xml("&lol9;"))
BAD_BODIES = {
    "empty": b"",
    "not-xml": b"hello, world",
    "json": b'{"MsgType": "text"}',
    "truncated": _message_xml().encode()[:-7],
    "mismatched-tags": b"<xml><MsgType>text</Content></xml>",
    "two-roots": (_message_xml() + "<xml></xml>").encode(),
    "not-utf8": b"<xml><Content>\xff\xfe\xfa</Content></xml>",
    "wrong-root": _message_xml().replace("xml>", "message>").encode(),
    "no-MsgType": b"<xml><FromUserName>oX</FromUserName><CreateTime>1</CreateTime></xml>",
    "no-FromUserName": b"<xml><MsgType>text</MsgType><Content>hi</Content></xml>",
    "doctype": ("<!DOCTYPE xml>" + _message_xml()).encode(),
    "doctype-lowercase": ("<!doctype xml>" + _message_xml()).encode(),
    "internal-entity": ('<!DOCTYPE xml [<!ENTITY who "张三">]>' + _message_xml("&who;")).encode(),
    "billion-laughs": LAUGHS.encode(),
    "external-entity-file": ('<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
                             + _message_xml("&xxe;")).encode(),
    "parameter-entity": ('<!DOCTYPE xml [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>'
                         + _message_xml()).encode(),
    "utf16-doctype": ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE xml [<!ENTITY who "x">]>'
                      + _message_xml("&who;")).encode("utf-16"),
    "undeclared-entity": _message_xml("&nbsp;").encode(),
    # 990 nested elements: a recursive walk of the tree ran out of stack (RecursionError, a 500)
    "deeply-nested": ("<xml>" + "<a>" * 990 + "</a>" * 990 + "</xml>").encode(),
    "deeply-nested-field": _message_xml("<b>" * 990 + "x" + "</b>" * 990).encode(),
    "nested-past-wechat-depth": ("<xml>" + "<a>" * 12 + "</a>" * 12 + "</xml>").encode(),
}


@pytest.mark.parametrize("name", list(BAD_BODIES))
def test_bad_xml_is_400_in_plaintext(client: FlaskClient, settings: Settings, services: Services,
                                     name: str) -> None:
    plaintext_mode(services)
    with no_database(services):
        res = post(client, signed_url(settings.wechat_token), BAD_BODIES[name])
    assert res.status_code == 400
    assert b"root:" not in res.data and b"lollol" not in res.data


@pytest.mark.parametrize("name", ["not-xml", "truncated", "doctype", "internal-entity", "billion-laughs",
                                  "external-entity-file", "parameter-entity", "no-MsgType", "deeply-nested",
                                  "deeply-nested-field"])
def test_bad_xml_inside_the_encryption_is_400(client: FlaskClient, settings: Settings, services: Services,
                                              name: str) -> None:
    with no_database(services):
        res = post(client, *safe_request(settings, BAD_BODIES[name]))
    assert res.status_code == 400


@pytest.mark.parametrize("name", ["doctype", "internal-entity", "billion-laughs"])
def test_bad_xml_around_the_encryption_is_400(client: FlaskClient, settings: Settings, services: Services,
                                              name: str) -> None:
    url, body = safe_request(settings, _message_xml())
    encrypted = parse_xml(body)["Encrypt"]
    dtd = BAD_BODIES[name].decode()
    evil = dtd[: dtd.index("<xml>")] + to_xml({"ToUserName": ACCOUNT, "Encrypt": encrypted})
    with no_database(services):
        assert post(client, url, evil.encode()).status_code == 400


def test_encrypted_body_without_encrypt_type_is_400(client: FlaskClient, settings: Settings,
                                                    services: Services) -> None:
    url, body = safe_request(settings, _message_xml())
    with no_database(services):
        assert post(client, with_query(url, encrypt_type=None, msg_signature=None), body).status_code == 400
        assert post(client, url, to_xml({"ToUserName": ACCOUNT}).encode()).status_code == 400


def test_external_dtd_and_entities_are_never_fetched(client: FlaskClient, settings: Settings,
                                                     services: Services) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        listener.settimeout(0.3)
        where = f"http://127.0.0.1:{listener.getsockname()[1]}/evil"
        bodies = [
            f'<!DOCTYPE xml SYSTEM "{where}.dtd">' + _message_xml(),
            f'<!DOCTYPE xml [<!ENTITY xxe SYSTEM "{where}">]>' + _message_xml("&xxe;"),
            f'<!DOCTYPE xml [<!ENTITY % remote SYSTEM "{where}.dtd"> %remote;]>' + _message_xml(),
        ]
        with no_database(services):
            for body in bodies:
                assert post(client, signed_url(settings.wechat_token), body.encode()).status_code == 400
                assert post(client, *safe_request(settings, body)).status_code == 400
        with pytest.raises(TimeoutError):
            listener.accept()  # nobody came to fetch it


def test_billion_laughs_is_refused_quickly(client: FlaskClient, settings: Settings) -> None:
    started = time.monotonic()
    assert post(client, signed_url(settings.wechat_token), BAD_BODIES["billion-laughs"]).status_code == 400
    assert time.monotonic() - started < 1.0


# -- key rotation -------------------------------------------------------------------------------
def test_previous_aes_key_is_accepted_and_answered_with_that_key(services: Services, settings: Settings,
                                                                 people: Any) -> None:
    old, new = settings.wechat_aes_key, new_key()
    people.add("钱主任", "admin")
    app = sibling_app(services, wechat_aes_key=new, wechat_aes_key_previous=old)
    transport = client_transport(app.test_client())
    openid = "o" + secrets.token_hex(14)
    on_old = user_for(settings, transport, aes_key=old, openid=openid)  # WeChat not yet switched
    on_new = user_for(settings, transport, aes_key=new, openid=openid)
    # the simulator decrypts each reply with its own key: a reply sealed with the other key fails there
    assert "绑定成功" in on_old.say(f"绑定 {people.code_of('钱主任')}").text
    assert "钱主任" in on_new.say("我").text
    assert "钱主任" in on_old.say("我").text
    assert "钱主任" in user_for(settings, transport, aes_key=old, openid=openid, mode="compat").say("我").text
    with no_database(services):
        assert user_for(settings, transport, aes_key=new_key(), openid=openid).say("我").status == 403


def test_previous_key_is_refused_once_the_rotation_is_over(services: Services, settings: Settings) -> None:
    old, new = settings.wechat_aes_key, new_key()
    transport = client_transport(sibling_app(services, wechat_aes_key=new).test_client())
    with no_database(services):
        assert user_for(settings, transport, aes_key=old).say("我").status == 403
    assert user_for(settings, transport, aes_key=new).say("我").status == 200


# -- every message and event type ---------------------------------------------------------------
TEXT = "any text reply"
SUCCESS = "exactly success"
EITHER = "a text reply or success"
PICS = {"Count": 2, "PicList": {"item": [{"PicMd5Sum": "1b5f7c23b5bf75682a53e7b6d163e185"},
                                         {"PicMd5Sum": "6c8f0e1ff1d3b9a8d2b3d0e1a2b3c4d5"}]}}
ONE_PIC = {"Count": 1, "PicList": {"item": {"PicMd5Sum": "1b5f7c23b5bf75682a53e7b6d163e185"}}}
SCAN_INFO = {"ScanType": "qrcode", "ScanResult": "https://example.edu.cn/asset/17"}

MESSAGES = [
    pytest.param("text", {"Content": "今天天气怎么样"}, "没有听懂", id="text"),
    pytest.param("text", {"Content": "emoji 😀 and ]]> and <tags> & ampersands"}, "没有听懂", id="text-odd"),
    pytest.param("image", {"PicUrl": "http://mmbiz.qpic.cn/mmbiz_jpg/abc/0", "MediaId": "media_img_1"}, TEXT,
                 id="image"),
    pytest.param("voice", {"MediaId": "media_voice_1", "Format": "amr", "MediaId16K": "media_voice_1_16k"},
                 TEXT, id="voice"),
    pytest.param("voice", {"MediaId": "media_voice_2", "Format": "speex", "Recognition": ""}, TEXT,
                 id="voice-unrecognised"),
    pytest.param("video", {"MediaId": "media_video_1", "ThumbMediaId": "media_thumb_1"}, TEXT, id="video"),
    pytest.param("shortvideo", {"MediaId": "media_sv_1", "ThumbMediaId": "media_thumb_2"}, TEXT,
                 id="shortvideo"),
    pytest.param("location", {"Location_X": 23.134521, "Location_Y": 113.358803, "Scale": 20,
                              "Label": "浙江省杭州市某小学"}, EITHER, id="location"),
    pytest.param("link", {"Title": "秋季开学安全告家长书", "Description": "请家长阅读",
                          "Url": "https://mp.weixin.qq.com/s/abcdef"}, TEXT, id="link"),
    pytest.param("file", {"Title": "维修清单.xlsx", "Description": "", "FileKey": "filekey_1",
                          "FileMd5": "d41d8cd98f00b204e9800998ecf8427e", "FileTotalLen": 10240}, TEXT,
                 id="file"),
    pytest.param("event", {"Event": "subscribe", "EventKey": ""}, WELCOME[:8], id="subscribe"),
    pytest.param("event", {"Event": "subscribe"}, WELCOME[:8], id="subscribe-no-key"),
    pytest.param("event", {"Event": "subscribe", "EventKey": "qrscene_123123", "Ticket": "gQH47joAAAAAAAAAAS"},
                 TEXT, id="subscribe-qrscene"),
    pytest.param("event", {"Event": "unsubscribe", "EventKey": ""}, SUCCESS, id="unsubscribe"),
    pytest.param("event", {"Event": "SCAN", "EventKey": "123123", "Ticket": "gQH47joAAAAAAAAAAS"}, EITHER,
                 id="SCAN"),
    pytest.param("event", {"Event": "LOCATION", "Latitude": 23.137466, "Longitude": 113.352425,
                           "Precision": 119.385040}, EITHER, id="LOCATION"),
    pytest.param("event", {"Event": "CLICK", "EventKey": "V1001_SOMETHING_NEW"}, EITHER, id="CLICK-unknown-key"),
    pytest.param("event", {"Event": "VIEW", "EventKey": "https://houqin.example.edu.cn/menu", "MenuId": 208379533},
                 EITHER, id="VIEW"),
    pytest.param("event", {"Event": "scancode_push", "EventKey": "rselfmenu_0_1", "ScanCodeInfo": SCAN_INFO},
                 EITHER, id="scancode_push"),
    pytest.param("event", {"Event": "scancode_waitmsg", "EventKey": "rselfmenu_0_0", "ScanCodeInfo": SCAN_INFO},
                 EITHER, id="scancode_waitmsg"),
    pytest.param("event", {"Event": "pic_sysphoto", "EventKey": "rselfmenu_1_0", "SendPicsInfo": ONE_PIC},
                 EITHER, id="pic_sysphoto"),
    pytest.param("event", {"Event": "pic_photo_or_album", "EventKey": "rselfmenu_1_1", "SendPicsInfo": PICS},
                 EITHER, id="pic_photo_or_album"),
    pytest.param("event", {"Event": "pic_weixin", "EventKey": "rselfmenu_1_2", "SendPicsInfo": PICS}, EITHER,
                 id="pic_weixin"),
    pytest.param("event", {"Event": "location_select", "EventKey": "rselfmenu_2_0", "SendLocationInfo": {
        "Location_X": 23, "Location_Y": 113, "Scale": 15, "Label": " 广州市海珠区客村艺苑路 106号",
        "Poiname": ""}}, EITHER, id="location_select"),
    pytest.param("event", {"Event": "TEMPLATESENDJOBFINISH", "MsgID": 200163836, "Status": "success"}, SUCCESS,
                 id="TEMPLATESENDJOBFINISH"),
    pytest.param("event", {"Event": "TEMPLATESENDJOBFINISH", "MsgID": 200163840,
                           "Status": "failed:user block"}, SUCCESS, id="TEMPLATESENDJOBFINISH-blocked"),
    pytest.param("event", {"FromUserName": "mphelper", "Event": "MASSSENDJOBFINISH", "MsgID": 1988,
                           "Status": "sendsuccess", "TotalCount": 100, "FilterCount": 80, "SentCount": 75,
                           "ErrorCount": 5, "CopyrightCheckResult": {"Count": 0, "ResultList": "", "CheckState": 1},
                           "ArticleUrlResult": {"Count": 1, "ResultList": {"item": {
                               "ArticleIdx": 1, "ArticleUrl": "https://mp.weixin.qq.com/s/xyz"}}}},
                 SUCCESS, id="MASSSENDJOBFINISH"),
    pytest.param("event", {"Event": "subscribe_msg_popup_event", "SubscribeMsgPopupEvent": {"List": {
        "TemplateId": "VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc", "SubscribeStatusString": "accept",
        "PopupScene": 2}}}, EITHER, id="future-event"),
    pytest.param("event", {"Event": "some_future_event_" + "x" * 60, "EventKey": "k" * 300}, EITHER,
                 id="future-event-long-name-and-key"),
    pytest.param("event", {}, EITHER, id="event-without-Event"),
    pytest.param("miniprogrampage", {"Title": "后勤小程序", "AppId": "wxabcdef0123456789",
                                     "PagePath": "pages/index", "ThumbUrl": "http://mmbiz.qpic.cn/x",
                                     "ThumbMediaId": "media_thumb_3"}, EITHER, id="future-message-type"),
    pytest.param("future_message_type_with_a_rather_long_name", {"Data": "x"}, EITHER,
                 id="future-message-type-long-name"),
]


def _stringified(value: Any) -> Any:
    """What XML gives back for a value: strings all the way down."""
    if isinstance(value, dict):
        return {k: _stringified(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stringified(v) for v in value]
    return str(value)


@pytest.mark.parametrize(("msg_type", "fields", "expected"), MESSAGES)
def test_every_message_and_event_type_is_answered_and_stored(wechat_user: Any, services: Services,
                                                             msg_type: str, fields: dict[str, Any],
                                                             expected: str) -> None:
    user: WeChatUser = wechat_user("路人", bind=False)
    message = user.message(msg_type, **fields)
    reply = user.post(*user.request(message))
    assert reply.status == 200, reply.body
    if expected == SUCCESS:
        assert reply.body == "success"
    elif expected == TEXT:
        assert reply.text.strip(), reply.body
    elif expected == EITHER:
        assert reply.body == "success" or reply.text.strip(), reply.body
    else:
        assert expected in reply.text
    rows = inbound(services, str(message["FromUserName"]))
    assert len(rows) == 1
    row = rows[0]
    assert row.status == "handled", row.error
    assert row.payload == _stringified(message)
    assert row.msg_type == msg_type.lower()[:32]  # the whole name stays in the payload
    assert row.reply == (reply.text or "")


@pytest.mark.parametrize("mode", ["plain", "compat"])
@pytest.mark.parametrize(("msg_type", "fields", "expected"), [
    p for p in MESSAGES if p.id in {"text", "image", "location", "subscribe", "pic_weixin", "location_select",
                                    "MASSSENDJOBFINISH", "future-event"}])
def test_message_types_in_other_modes(wechat_user: Any, services: Services, mode: str, msg_type: str,
                                      fields: dict[str, Any], expected: str) -> None:
    if mode == "plain":
        plaintext_mode(services)
    user: WeChatUser = wechat_user("路人", bind=False, mode=mode)
    message = user.message(msg_type, **fields)
    reply = user.post(*user.request(message))
    assert reply.status == 200
    assert reply.body == "success" or reply.text.strip()
    assert inbound(services, str(message["FromUserName"]))[0].payload == _stringified(message)


@pytest.mark.parametrize(("msg_type", "fields"), [("text", {"Content": "随便说说"}), ("event", {"Event": "subscribe"})])
def test_oversized_identifiers_are_answered_not_500(wechat_user: Any, services: Services, msg_type: str,
                                                    fields: dict[str, Any]) -> None:
    user: WeChatUser = wechat_user("路人", bind=False)
    openid = "o" + "x" * 99
    message = user.message(msg_type, FromUserName=openid, MsgId="9" * 300, **fields)
    replies = [user.post(*user.request(message)) for _ in range(2)]
    assert [r.status for r in replies] == [200, 200]
    assert replies[0].body == "success" or replies[0].text
    assert replies[0].text == replies[1].text
    rows = inbound(services, openid[:64])
    assert len(rows) == 1 and rows[0].payload["FromUserName"] == openid


def test_subscribe_then_unsubscribe_keeps_the_person(wechat_user: Any, people: Any, services: Services) -> None:
    people.add("孙老师", "teacher")
    user: WeChatUser = wechat_user("孙老师")
    assert user.event("unsubscribe").body == "success"
    with services.factory() as s:
        binding = s.get(Binding, user.openid)
        assert binding is not None and not binding.subscribed and binding.person is not None
    assert "孙老师" in user.subscribe().text  # welcome back, by name
    with services.factory() as s:
        assert s.get(Binding, user.openid).subscribed  # type: ignore[union-attr]


def test_subscribe_with_a_bind_scene_binds(wechat_user: Any, people: Any) -> None:
    people.add("周师傅", "staff")
    user: WeChatUser = wechat_user("周师傅", bind=False)
    reply = user.subscribe(f"bind:{people.code_of('周师傅')}")
    assert "欢迎" in reply.text and "绑定成功" in reply.text
    assert "周师傅" in user.say("我").text


# -- voice ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("recognition", ["我。", "我", "我是谁？", "whoami！"])
def test_voice_recognition_is_handled_as_that_text(wechat_user: Any, people: Any, services: Services,
                                                   recognition: str) -> None:
    people.add("吴老师", "teacher")
    user: WeChatUser = wechat_user("吴老师")
    reply = user.voice(recognition)
    assert "吴老师" in reply.text and "教师" in reply.text
    row = inbound(services, user.openid)[-1]
    assert row.msg_type == "voice" and row.payload["Recognition"] == recognition


def test_voice_help_for_an_unbound_user(wechat_user: Any) -> None:
    user: WeChatUser = wechat_user("路人", bind=False)
    assert user.voice("帮助。").text == user.say("帮助").text


# -- unknown commands, binding hints -----------------------------------------------------------------
def test_unknown_command_is_not_understood(wechat_user: Any, people: Any) -> None:
    people.add("冯老师", "teacher")
    for user in (wechat_user("冯老师"), wechat_user("路人", bind=False)):
        said = user.say("随便说说").text  # 没有听懂, and a pointer to something this sender can do
        assert said.startswith("没有听懂「随便说说」。") and "「帮助」" in said
        long = "这是一句非常非常长的没有任何意义的话机器人不会懂"
        assert user.say(long).text.startswith(NOT_UNDERSTOOD.split("「")[0] + f"「{long[:20]}…」。")


def test_unbound_user_gets_a_binding_hint(wechat_user: Any, people: Any, services: Services) -> None:
    calls: list[str] = []
    roster = Conversation("roster_test", title="点名测试", keywords=["点名测试"], roles={"bus_monitor"})

    @roster.entry
    def start(msg: Incoming, ctx: Context) -> Reply:
        calls.append(ctx.openid)
        return Reply("开始点名", next="count")

    use_capabilities(services, roster)
    stranger: WeChatUser = wechat_user("路人", bind=False)
    assert stranger.say("我").text == NOT_BOUND_YET
    hint = stranger.say("点名测试").text
    assert "点名测试" in hint and "绑定 绑定码" in hint and "跟车老师" in hint
    people.add("褚老师", "teacher")
    teacher: WeChatUser = wechat_user("褚老师")
    refusal = teacher.say("点名测试").text
    assert "跟车老师" in refusal and "教师" in refusal
    assert calls == []  # nothing ran, nothing recorded
    people.add("卫老师", "bus_monitor")
    assert wechat_user("卫老师").say("点名测试").text == "开始点名"
    assert len(calls) == 1


# -- retries ------------------------------------------------------------------------------------
def test_retried_message_is_handled_once_with_the_same_reply(wechat_user: Any, services: Services) -> None:
    user: WeChatUser = wechat_user("路人", bind=False)
    message = user.message("text", Content="绑定 ZZZZZ9")
    replies = [user.post(*user.request(message)) for _ in range(4)]  # the first and WeChat's three retries
    assert replies[0].text == BAD_CODE.format(code="ZZZZZ9")
    assert {r.text for r in replies} == {replies[0].text}
    assert len(inbound(services, user.openid)) == 1
    assert count(services, BindAttempt) == 1  # the wrong code counts once towards the lockout
    assert user.say("绑定 ZZZZZ9").text == replies[0].text  # a new message (new MsgId) counts again
    assert count(services, BindAttempt) == 2


def test_retried_event_is_handled_once_with_the_same_reply(wechat_user: Any, services: Services) -> None:
    user: WeChatUser = wechat_user("路人", bind=False)
    message = user.message("event", Event="subscribe", EventKey="qrscene_bind:QQQQQ9", Ticket="gQH47joAAAA")
    replies = [user.post(*user.request(message)) for _ in range(3)]
    assert "QQQQQ9" in replies[0].text  # the code is refused by name
    assert {r.text for r in replies} == {replies[0].text}
    assert len(inbound(services, user.openid)) == 1
    assert count(services, BindAttempt) == 1


def test_events_differing_in_time_key_or_kind_are_distinct(wechat_user: Any, services: Services) -> None:
    user: WeChatUser = wechat_user("路人", bind=False)
    now = int(time.time())
    for fields in ({"Event": "CLICK", "EventKey": "A"}, {"Event": "CLICK", "EventKey": "B"},
                   {"Event": "VIEW", "EventKey": "A"}, {"Event": "CLICK", "EventKey": "A", "CreateTime": now + 1}):
        assert user.post(*user.request(user.message("event", **{"CreateTime": now, **fields}))).status == 200
    assert len(inbound(services, user.openid)) == 4


def test_job_finished_events_in_the_same_second_are_all_kept(wechat_user: Any, services: Services) -> None:
    """Two template pushes to one user finishing in one second are two events; an ordinary message
    whose MsgId happens to equal a template's MsgID is not a retry of it."""
    user: WeChatUser = wechat_user("路人", bind=False)
    now = int(time.time())
    for msg_id in (500001, 500002, 500002):  # the last is WeChat's retry of the second
        done = user.message("event", Event="TEMPLATESENDJOBFINISH", MsgID=msg_id, Status="success", CreateTime=now)
        assert user.post(*user.request(done)).body == "success"
    text = user.message("text", Content="随便说说", MsgId=500001, CreateTime=now)
    assert "没有听懂" in user.post(*user.request(text)).text
    assert len(inbound(services, user.openid)) == 3


def _slow_capability(calls: list[float], delay: float) -> Conversation:
    slow = Conversation("slow_test", title="慢", keywords=["慢慢来"])

    @slow.entry
    def start(msg: Incoming, ctx: Context) -> Reply:
        calls.append(time.monotonic())
        time.sleep(delay)  # longer than the gap between WeChat's copies
        ctx.db.add(BindAttempt(openid=ctx.openid, code="SLOW", at=ctx.now))
        return Reply.end(f"第{len(calls)}次处理")

    return slow


def _concurrently(app: Flask, settings: Settings, sender: WeChatUser, message: dict[str, Any],
                  copies: int) -> list[SimReply]:
    """Post the same message `copies` times at once over real HTTP, each copy signed afresh (with its
    own nonce) as WeChat signs each retry."""
    barrier = threading.Barrier(copies)
    replies: list[SimReply] = []
    errors: list[BaseException] = []

    def one(base: str) -> None:
        try:
            user = WeChatUser(sender.openid, token=settings.wechat_token, appid=settings.wechat_appid,
                              aes_key=settings.wechat_aes_key, transport=http_transport(base, timeout=20),
                              mode=sender.mode)
            url, body = user.request(message)
            barrier.wait(timeout=10)
            replies.append(user.post(url, body))
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    with serving(app) as base:
        threads = [threading.Thread(target=one, args=(base,)) for _ in range(copies)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    return replies


@pytest.mark.parametrize("mode", ["plain", "safe"])
def test_concurrent_retries_are_handled_once_with_the_same_reply(app: Flask, services: Services,
                                                                 settings: Settings, mode: str) -> None:
    if mode == "plain":
        plaintext_mode(services)
    calls: list[float] = []
    use_capabilities(services, _slow_capability(calls, delay=0.3))
    user = user_for(settings, client_transport(app.test_client()), mode=mode)
    replies = _concurrently(app, settings, user, user.message("text", Content="慢慢来"), copies=4)
    assert [r.status for r in replies] == [200] * 4
    assert [r.text for r in replies] == ["第1次处理"] * 4
    assert len(calls) == 1
    assert len(inbound(services, user.openid)) == 1
    assert count(services, BindAttempt) == 1


def test_concurrent_retries_of_a_wrong_bind_code_count_once(app: Flask, services: Services,
                                                            settings: Settings) -> None:
    user = user_for(settings, client_transport(app.test_client()))
    replies = _concurrently(app, settings, user, user.message("text", Content="绑定 YYYYY8"), copies=4)
    assert {r.text for r in replies} == {BAD_CODE.format(code="YYYYY8")}
    assert len(inbound(services, user.openid)) == 1
    assert count(services, BindAttempt) == 1


# -- the audit log and handler bugs ----------------------------------------------------------------
def test_message_is_stored_before_it_is_handled(wechat_user: Any, services: Services) -> None:
    seen: list[tuple[str, str]] = []
    audit = Conversation("audit_test", title="审计", keywords=["审计"])

    @audit.entry
    def look(msg: Incoming, ctx: Context) -> Reply:
        row = ctx.db.scalar(select(InboundMessage).where(InboundMessage.openid == ctx.openid)
                            .order_by(InboundMessage.id.desc()))
        assert row is not None
        seen.append((row.content, row.status))
        return Reply.end("已查")

    use_capabilities(services, audit)
    user: WeChatUser = wechat_user("路人", bind=False)
    assert user.say("审计 一下").text == "已查"
    assert seen == [("审计 一下", "received")]
    row = inbound(services, user.openid)[-1]
    assert (row.status, row.reply, row.error) == ("handled", "已查", None)
    assert row.handled_at is not None and row.received_at is not None


def _failing_capabilities(calls: list[str]) -> list[Conversation]:
    boom = Conversation("boom_test", title="故障", keywords=["故障"])
    clash = Conversation("clash_test", title="冲突", keywords=["冲突"])

    @boom.entry
    def explode(msg: Incoming, ctx: Context) -> Reply:
        calls.append("boom")
        ctx.db.add(Person(name="不该留下", phone="13800000000"))
        ctx.db.add(BindAttempt(openid=ctx.openid, code="BOOM", at=ctx.now))
        ctx.db.flush()
        raise RuntimeError("deliberate failure in a test handler")

    @clash.entry
    def violate(msg: Incoming, ctx: Context) -> Reply:  # a database error, which aborts a PG transaction
        calls.append("clash")
        ctx.db.add(Person(name="重复", phone="13900000000"))
        ctx.db.flush()
        ctx.db.add(Person(name="重复", phone="13900000000"))
        ctx.db.flush()
        return Reply.end("不会到这里")

    return [boom, clash]


@pytest.mark.parametrize("word", ["故障", "冲突"])
def test_handler_bug_rolls_back_logs_and_apologises(wechat_user: Any, services: Services, people: Any,
                                                    caplog: pytest.LogCaptureFixture, word: str) -> None:
    calls: list[str] = []
    use_capabilities(services, *_failing_capabilities(calls))
    people.add("陈老师", "teacher")
    user: WeChatUser = wechat_user("陈老师")
    people_before = count(services, Person)
    message = user.message("text", Content=f"{word} 请处理")
    with caplog.at_level(logging.ERROR, logger="bot.inbox"):
        first = user.post(*user.request(message))
    assert first.status == 200 and first.text == APOLOGY
    assert any(r.exc_info for r in caplog.records), "the traceback is logged"
    # stored, with what went wrong; the handler's writes are gone
    row = inbound(services, user.openid)[-1]
    assert row.status == "failed" and row.reply == APOLOGY
    assert row.payload["Content"] == f"{word} 请处理" and row.content == f"{word} 请处理"
    assert row.error is not None and "Traceback" in row.error
    assert ("deliberate failure" in row.error) if word == "故障" else ("IntegrityError" in row.error)
    assert count(services, Person) == people_before
    assert count(services, BindAttempt) == 0
    # a retry gets the same apology without running the handler again; the user can go on
    assert user.post(*user.request(message)).text == APOLOGY
    assert len(calls) == 1
    assert "陈老师" in user.say("我").text


def test_handler_bug_in_safe_mode_still_answers_encrypted(wechat_user: Any, services: Services) -> None:
    use_capabilities(services, *_failing_capabilities([]))
    user: WeChatUser = wechat_user("路人", bind=False, mode="safe")
    reply = user.say("故障")
    assert reply.text == APOLOGY and "<Encrypt>" in reply.body


@contextmanager
def transactions_begun(services: Services) -> Iterator[list[int]]:
    """How many transactions the block began on the database (autocommit ones included)."""
    begun = [0]

    def count_one(conn: Any) -> None:
        begun[0] += 1

    event.listen(services.db_engine, "begin", count_one)
    try:
        yield begun
    finally:
        event.remove(services.db_engine, "begin", count_one)


def test_a_message_is_stored_and_its_sender_read_in_one_statement(wechat_user: Any, people: Any,
                                                                  services: Services) -> None:
    """The hot path, one transaction: the request's nonce is claimed and the message stored — on
    PostgreSQL by one statement (the claim a CTE of the message's INSERT), on SQLite by two — and that
    INSERT returns the sender's binding, roles and conversation state; the reply is stored by one
    UPDATE. A bound teacher's 帮助 asks whether she is the bus manager: the setting comes with the message
    (ROUTING_SETTINGS), so with none named nothing more is read. (A process's first request also purges
    the nonces past the window: done here first.)"""
    if services.db_engine.dialect.name == "postgresql":
        expected = [("WITH claimed AS (INSERT INTO seen_nonces", "INSERT INTO inbound_messages"), ("UPDATE",)]
    else:
        expected = [("INSERT INTO seen_nonces",), ("INSERT INTO inbound_messages",), ("UPDATE",)]

    def kinds(statements: list[str]) -> list[tuple[str, ...]]:
        return [tuple(part for part in expected[i] if part in full) if i < len(expected) else (full,)
                for i, full in enumerate(statements)]

    stranger = wechat_user("路人", bind=False)
    stranger.say("随便说说")
    with statements_run(services, whole=True) as statements, transactions_begun(services) as begun:
        assert "你还没有绑定身份" in stranger.say("帮助").text
    assert kinds(statements) == expected, statements
    assert begun == [1]  # the nonce is claimed in the message's transaction, not one of its own

    people.add("张丽", "teacher")
    teacher = wechat_user("张丽")
    with statements_run(services, whole=True) as statements:
        help_text = teacher.say("帮助").text
    assert "报修" in help_text and "你还没有绑定身份" not in help_text
    assert kinds(statements) == expected, statements


def test_conversation_state_survives_its_row_going_mid_message(wechat_user: Any, services: Services) -> None:
    """The state read with the message can be gone by the time a step moves on (another message of
    the sender's ended the conversation meanwhile): the next step is stored all the same."""
    relay = Conversation("relay_test", title="接力测试", keywords=["接力测试"])

    @relay.entry
    def start(msg: Incoming, ctx: Context) -> Reply:
        return Reply("第1棒", next="leg")

    @relay.on("leg")
    def leg(msg: Incoming, ctx: Context) -> Reply:
        ctx.db.execute(delete(ConversationState).where(ConversationState.openid == ctx.openid))  # as if ended
        return Reply(f"第{int(ctx.data.get('n', 1)) + 1}棒", next="leg", data={"n": int(ctx.data.get("n", 1)) + 1})

    use_capabilities(services, relay)
    runner: WeChatUser = wechat_user("跑者", bind=False)
    assert runner.say("接力测试").text == "第1棒"
    assert runner.say("跑").text == "第2棒"
    assert runner.say("跑").text == "第3棒"  # the state was stored again, so the conversation went on
    with services.factory() as s:
        state = s.get(ConversationState, runner.openid)
        assert state is not None and (state.conversation, state.step, state.data) == ("relay_test", "leg", {"n": 3})


# -- honest in every mode: plaintext, compatible mode, replays, refusals logged ---------------------
def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "bot.wechat.webhook"]


def test_plaintext_to_a_bot_with_a_key_is_refused(wechat_user: Any, services: Services,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """Its body is not covered by the URL signature: anyone who saw one logged URL could post as anyone."""
    user: WeChatUser = wechat_user("路人", bind=False, mode="plain")
    with no_database(services):
        assert user.say("绑定 ABCDEF").status == 403
    assert any("plaintext in safe mode" in line for line in refusals(caplog))


def test_accept_plaintext_takes_plaintext_with_a_warning_at_start_up_and_for_each_message(
        services: Services, settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    plaintext_mode(services, accept=True)
    caplog.set_level(logging.INFO)
    app = create_app(services=services)
    assert any("WECHAT_ACCEPT_PLAINTEXT" in r.getMessage() and r.levelno == logging.WARNING
               for r in caplog.records if r.name == "bot")
    transport = client_transport(app.test_client())
    plain = user_for(settings, transport, mode="plain")
    caplog.clear()
    reply = plain.say("随便说说")
    assert reply.status == 200 and "没有听懂" in reply.text and "<Encrypt>" not in reply.body
    assert [r.getMessage() for r in caplog.records if r.name == "bot.wechat.gateway"] == [
        "accepted a plaintext message despite WECHAT_AES_KEY (WECHAT_ACCEPT_PLAINTEXT=1): "
        "plaintext in safe mode (the URL signature does not cover the body)"]
    safe = user_for(settings, transport, mode="safe")  # safe mode still works, and is not logged
    caplog.clear()
    assert "<Encrypt>" in safe.say("随便说说").body
    assert [r for r in caplog.records if r.name == "bot.wechat.gateway"] == []


def test_compatible_mode_to_a_bot_without_a_key_is_answered_from_the_plaintext(services: Services,
                                                                                settings: Settings) -> None:
    app = sibling_app(services, wechat_aes_key="", wechat_aes_key_previous="")
    user = user_for(settings, client_transport(app.test_client()), mode="compat")  # encrypted with a key we lack
    reply = user.say("随便说说")
    assert reply.status == 200 and "没有听懂" in reply.text and "<Encrypt>" not in reply.body
    assert inbound(services, user.openid)[0].payload["Content"] == "随便说说"


def test_compatible_mode_with_a_wrong_key_is_refused_unless_plaintext_is_accepted(
        services: Services, settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    user = user_for(settings, client_transport(sibling_app(services, wechat_aes_key=new_key()).test_client()),
                    mode="compat")
    with no_database(services):
        assert user.say("随便说说").status == 403
    assert any(line.endswith("wrong key: the message does not decrypt with WECHAT_AES_KEY "
                             "(or WECHAT_AES_KEY_PREVIOUS) (compatible mode)") for line in refusals(caplog))
    lenient = sibling_app(services, wechat_aes_key=new_key(), accept_plaintext=True)
    user.transport = client_transport(lenient.test_client())
    reply = user.say("随便说说")
    assert reply.status == 200 and "没有听懂" in reply.text and "<Encrypt>" not in reply.body


def test_safe_mode_with_a_wrong_key_is_refused_saying_so(wechat_user: Any, services: Services, settings: Settings,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    user: WeChatUser = wechat_user("路人", bind=False)
    lenient = sibling_app(services, wechat_aes_key=new_key(), accept_plaintext=True)  # no plaintext to fall to
    user.transport = client_transport(lenient.test_client())
    with no_database(services):
        assert user.say("随便说说").status == 403
    assert any("wrong key" in line for line in refusals(caplog))


def test_the_same_msgid_from_two_senders_is_two_messages(wechat_user: Any, people: Any, services: Services) -> None:
    """MsgIds are unique per sender only: the second sender must get their own answer, and be stored."""
    people.add("郑老师", "teacher")
    people.add("钱老师", "teacher")
    zheng: WeChatUser = wechat_user("郑老师")
    qian: WeChatUser = wechat_user("钱老师")
    assert "郑老师" in zheng.send("text", Content="我", MsgId=7777777777777777).text
    assert "钱老师" in qian.send("text", Content="我", MsgId=7777777777777777).text
    assert "钱老师" in (inbound(services, qian.openid)[-1].reply or "")
    assert "郑老师" in zheng.send("text", Content="我", MsgId=7777777777777777).text  # a retry: the same answer
    assert len([r for r in inbound(services, zheng.openid) if r.payload.get("MsgId") == "7777777777777777"]) == 1


def test_a_replayed_timestamp_and_nonce_is_refused_in_every_process(wechat_user: Any, services: Services,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    user: WeChatUser = wechat_user("路人", bind=False)
    url, body = user.request(user.message("text", Content="随便说说"))
    assert user.post(url, body).status == 200
    assert user.post(url, body).status == 403
    other = user_for(services.settings, client_transport(sibling_app(services).test_client()),
                     openid=user.openid)  # another web process on the same database
    assert other.post(url, body).status == 403
    query = dict(parse_qsl(url.partition("?")[2]))
    again = user.request(user.message("text", Content="随便说说"), timestamp=int(query["timestamp"]),
                         nonce=query["nonce"])
    assert user.post(*again).status == 403  # the same pair with another body: still the same pair
    assert len(inbound(services, user.openid)) == 1
    assert refusals(caplog).count("refused POST /wechat (403): replayed nonce "
                                  "(this timestamp and nonce were used before)") == 3


def test_with_redis_a_replay_is_refused_in_every_process(services: Services, settings: Settings) -> None:
    from tests.test_tokens import REDIS_URL, _redis_why

    if why := _redis_why():
        pytest.skip(why)
    first, second = (sibling_app(services, redis_url=REDIS_URL) for _ in range(2))
    user = user_for(settings, client_transport(first.test_client()))
    url, body = user.request(user.message("text", Content="随便说说"))
    assert user.post(url, body).status == 200
    user.transport = client_transport(second.test_client())
    with statements_run(services) as statements:
        assert user.post(url, body).status == 403
    assert statements == []  # refused by Redis alone
    assert len(inbound(services, user.openid)) == 1


NONCE = "8642097531"


def _refused_request(user: WeChatUser, services: Services, how: str) -> tuple[str, bytes]:
    fields = user.message("text", Content="随便说说")
    if how == "replayed nonce":
        url, body = user.request(fields, nonce=NONCE)
        assert user.post(url, body).status == 200
        return url, body
    if how == "plaintext in safe mode":
        user.mode = "plain"
        return user.request(fields, nonce=NONCE)
    if how == "body too large":
        return user.request(user.message("text", Content="很长" * 20000), nonce=NONCE)
    if how == "bad XML":
        url, _ = user.request(fields, nonce=NONCE)
        return url, b"<xml><Content>"
    if how == "wrong key":
        user.crypto = Crypto(user.token, services.settings.wechat_appid, new_key())
        return user.request(fields, nonce=NONCE)
    if how == "stale timestamp":
        return user.request(fields, nonce=NONCE, timestamp=int(time.time()) - 3600)
    url, body = user.request(fields, nonce=NONCE)
    return with_query(url, signature=signature("x", "y", "z")), body


@pytest.mark.parametrize(("how", "status"), [
    ("signature mismatch", 403), ("stale timestamp", 403), ("replayed nonce", 403), ("wrong key", 403),
    ("plaintext in safe mode", 403), ("body too large", 413), ("bad XML", 400)])
def test_every_refusal_is_logged_with_its_reason_and_no_secret(wechat_user: Any, services: Services,
                                                               settings: Settings, caplog: pytest.LogCaptureFixture,
                                                               how: str, status: int) -> None:
    caplog.set_level(logging.DEBUG)
    user: WeChatUser = wechat_user("路人", bind=False)
    url, body = _refused_request(user, services, how)
    caplog.clear()
    assert user.post(url, body).status == status
    [line] = refusals(caplog)
    assert line.startswith(f"refused POST /wechat ({status}): {how}")
    query = dict(parse_qsl(url.partition("?")[2]))
    logged = caplog.text + "".join(r.getMessage() for r in caplog.records)
    for secret in (url.partition("?")[2], query["signature"], query.get("msg_signature", "-" * 40), NONCE,
                   settings.wechat_token, settings.wechat_secret, settings.wechat_aes_key, "signature=", "nonce="):
        assert secret not in logged


def test_a_refused_handshake_is_logged_without_its_query(client: FlaskClient, settings: Settings,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    url = with_query(signed_url(settings.wechat_token, nonce=NONCE, echostr="e"), signature="0" * 40)
    assert client.get(url).status_code == 403
    assert refusals(caplog) == ["refused GET /wechat (403): signature mismatch"]
    assert NONCE not in caplog.text and "0" * 40 not in caplog.text


def test_the_served_request_log_has_no_query_string(app: Flask, settings: Settings,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """`houqin serve`'s server logs each request: the path, never the signature and nonce after it."""
    caplog.set_level(logging.INFO, logger="werkzeug")
    with serving(app) as base:
        user = user_for(settings, http_transport(base))
        url, body = user.request(user.message("text", Content="随便说说"), nonce=NONCE)
        assert user.post(url, body).status == 200
        assert user.post(with_query(url, signature="0" * 40), body).status == 403
    # this server's request lines: other servers of the run (a fake WeChat's handler threads) share
    # the werkzeug logger
    lines = [r.getMessage() for r in caplog.records
             if r.name == "werkzeug" and r.levelno == logging.INFO and "/wechat" in r.getMessage()]
    assert len(lines) == 2 and all("POST /wechat HTTP/1.1" in line for line in lines), lines
    assert not any(NONCE in line or "signature" in line for line in lines)


def test_the_reply_nonce_is_cdata_escaped(wechat_user: Any) -> None:
    """The nonce is the request's own, any characters WeChat (or someone) put in it."""
    user: WeChatUser = wechat_user("路人", bind=False)
    reply = user.post(*user.request(user.message("text", Content="随便说说"), nonce="12]]><x/>34"))
    assert reply.status == 200 and "没有听懂" in reply.text  # the simulator verified MsgSignature over it
    assert parse_xml(reply.body)["Nonce"] == "12]]><x/>34"


@pytest.mark.parametrize(("msg_type", "fields"), [
    ("miniprogrampage", {"Title": "小程序", "AppId": "wx1234567890", "PagePath": "pages/index",
                         "ThumbUrl": "http://mmbiz.qpic.cn/t.jpg", "ThumbMediaId": "thumb_1"}),
    ("somethingnew", {"Whatever": "x"}),
    ("video", {"MediaId": "video_1", "ThumbMediaId": "thumb_1"}),
])
def test_cards_and_unknown_types_get_the_unsupported_hint(wechat_user: Any, services: Services, msg_type: str,
                                                          fields: dict[str, Any]) -> None:
    user: WeChatUser = wechat_user("路人", bind=False)
    reply = user.send(msg_type, **fields)
    assert reply.text == UNSUPPORTED
    assert inbound(services, user.openid)[-1].msg_type == msg_type
