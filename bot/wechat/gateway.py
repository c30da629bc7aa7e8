"""The WeChat gateway: the only module that imports wechatpy.

Inbound: signatures (constant time), safe-mode crypto with key rotation, XML parsing that refuses
DTDs and entities. Outbound: reply rendering and an API client whose every call, the token fetch
included, goes to `WECHAT_API_BASE` + `/cgi-bin/...`.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import re
import ssl
import threading
import time
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
import requests.adapters
import requests.utils
import urllib3
import urllib3.exceptions
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as defused_fromstring
from urllib3.util.wait import wait_for_read
from wechatpy.client import WeChatClient
from wechatpy.crypto import PrpCrypto
from wechatpy.exceptions import WeChatClientException
from wechatpy.replies import TextReply

log = logging.getLogger(__name__)

MAX_QR_SECONDS = 30 * 24 * 3600  # WeChat's limit for a temporary QR code

PLAINTEXT_IN_SAFE_MODE = "plaintext in safe mode (the URL signature does not cover the body)"
WRONG_KEY = "wrong key: the message does not decrypt with WECHAT_AES_KEY (or WECHAT_AES_KEY_PREVIOUS)"


class BadMessage(ValueError):
    """The body is not a well-formed, entity-free WeChat XML message (HTTP 400)."""


class BadSignature(ValueError):
    """The signature or timestamp does not check out (HTTP 403)."""


def signature(*parts: str) -> str:
    """WeChat's signature: SHA-1 of the sorted, concatenated parts."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def check_signature(expected_parts: tuple[str, ...], given: str, what: str = "signature") -> None:
    if not given or not hmac.compare_digest(signature(*expected_parts), given.lower()):
        raise BadSignature(f"{what} mismatch" if given else f"no {what}")


def check_timestamp(timestamp: str, tolerance: int, now: float | None = None) -> None:
    try:
        ts = int(timestamp)
    except (TypeError, ValueError) as exc:
        raise BadSignature("timestamp is not a number") from exc
    if abs((now if now is not None else time.time()) - ts) > tolerance:
        raise BadSignature("stale timestamp (outside the window)")


# WeChat's deepest messages (SendPicsInfo/PicList/item/PicMd5Sum, a mass-send report's items) are 4 below <xml>
MAX_XML_DEPTH = 8


def _element_to_value(element: ET.Element, depth: int = 0) -> Any:
    """The element as a str (a leaf) or a dict; deeper than MAX_XML_DEPTH is no WeChat message, and
    refusing it keeps this walk from running out of stack (990 nested elements did)."""
    children = list(element)
    if not children:
        return element.text or ""
    if depth >= MAX_XML_DEPTH:
        raise BadMessage(f"nested deeper than {MAX_XML_DEPTH} elements")
    value: dict[str, Any] = {}
    for child in children:
        item = _element_to_value(child, depth + 1)
        if child.tag in value:  # repeated element, e.g. <item> in SendPicsInfo
            existing = value[child.tag]
            value[child.tag] = existing + [item] if isinstance(existing, list) else [existing, item]
        else:
            value[child.tag] = item
    return value


def parse_xml(body: bytes | str) -> dict[str, Any]:
    """Parse a WeChat XML document to a dict; DTDs and entity declarations are refused, never resolved."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    try:
        root = defused_fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ET.ParseError, DefusedXmlException, ValueError) as exc:
        raise BadMessage(f"not well-formed XML: {exc}") from exc
    value = _element_to_value(root)
    if root.tag != "xml" or not isinstance(value, dict):
        raise BadMessage("not a WeChat message")
    return value


class Crypto:
    """Safe-mode encryption with one EncodingAESKey (the Codec holds one per configured key)."""

    def __init__(self, token: str, appid: str, aes_key: str) -> None:
        import base64

        self.token = token
        self.appid = appid
        self._key = base64.b64decode(aes_key + "=")

    def decrypt(self, encrypted: str) -> str:
        try:
            return str(PrpCrypto(self._key).decrypt(encrypted, self.appid))
        except Exception as exc:  # noqa: BLE001 - wechatpy raises several types for a wrong key
            raise BadSignature("cannot decrypt with this key") from exc

    def encrypt(self, text: str, nonce: str, timestamp: str | None = None) -> str:
        """The encrypted envelope WeChat expects as a reply (or sends as a request)."""
        timestamp = timestamp or str(int(time.time()))
        encrypted = self.encrypt_payload(text)
        sig = signature(self.token, timestamp, nonce, encrypted)
        return (
            f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt><MsgSignature><![CDATA[{sig}]]></MsgSignature>"
            f"<TimeStamp>{timestamp}</TimeStamp><Nonce><![CDATA[{_cdata(nonce)}]]></Nonce></xml>"
        )

    def encrypt_payload(self, plain_xml: str) -> str:
        """The base64 ciphertext WeChat puts in <Encrypt> (the simulator's side of safe mode)."""
        return str(PrpCrypto(self._key).encrypt(plain_xml, self.appid).decode())


def _cdata(value: str) -> str:
    """`value` made safe for wechatpy's <![CDATA[...]]> templates: a "]]>" would end the section early."""
    return value.replace("]]>", "]]]]><![CDATA[>")


def render_text(to_user: str, from_account: str, text: str) -> str:
    return str(TextReply(source=_cdata(from_account), target=_cdata(to_user), content=_cdata(text),
                         time=int(time.time())).render())


# ---------------------------------------------------------------------------------------------
# Outbound API


NOT_WHITELISTED = 40164
# the server's IP is not on the account's whitelist: nothing is wrong with the push, so it waits (and
# is retried) while the office adds the IP in 设置与开发 → 基本配置 → IP白名单
TRANSIENT = {-1, 45009, 45011, NOT_WHITELISTED}
_QUERY = re.compile(r"\?[^\s'\"()]+")
TOKEN_ERRORS = {40001, 40014, 42001}
IP_NOT_WHITELISTED = "服务器IP未加入公众号白名单（微信看到的IP：{ip}）"
UNKNOWN_IP = "未知"
_SEEN_IP = re.compile(r"invalid ip ([0-9A-Fa-f.:]+)")
_SECRETS_IN_TEXT = re.compile(r"((?:access_token|secret|appsecret)=)[^&\s'\"]+", re.IGNORECASE)
_SECRETS_IN_JSON = re.compile(r"""(["']?(?:access_token|secret|appsecret)["']?\s*:\s*["'])[^"']*""", re.IGNORECASE)
MIN_SECRET_LENGTH = 8  # shorter values (test stand-ins) would blank out ordinary words
_known_secrets: deque[str] = deque(maxlen=64)  # the AppSecrets and access tokens this process has used
_known_lock = threading.Lock()  # a deque read while another thread appends raises
UNREACHABLE = {43004, 43101}
NO_MENU = 46003
WINDOW_ERRORS = {45015, 45047}


@dataclass
class ApiError(Exception):
    """A failed WeChat API call: `errcode` is None for HTTP errors and time-outs. Its text is redacted
    as it is made, so no caller can store, show or log a raw one."""

    errcode: int | None
    errmsg: str

    def __post_init__(self) -> None:
        self.errmsg = redact(self.errmsg)

    def __str__(self) -> str:
        if self.errcode == NOT_WHITELISTED:  # already says what to do; the office does not need the code
            return self.errmsg
        return f"{self.errcode if self.errcode is not None else 'http'}: {self.errmsg}"

    @property
    def transient(self) -> bool:
        return self.errcode is None or self.errcode in TRANSIENT

    @property
    def token_expired(self) -> bool:
        return self.errcode in TOKEN_ERRORS


def remember_secret(value: str) -> str:
    """Note an AppSecret or access token this process uses, so `redact` blanks it wherever it appears."""
    if len(value) >= MIN_SECRET_LENGTH:
        with _known_lock:
            if value not in _known_secrets:
                _known_secrets.append(value)
    return value


def redact(text: object) -> str:
    """An upstream error's text as it may be stored, shown and logged — the one place this is done:
    without the query strings of the URLs it names (a requests error names its URL, with access_token
    or secret), without the value of any access_token= / "secret": quoted elsewhere, and without any
    AppSecret or access token this process has used (`remember_secret`), however it is written."""
    clean = _SECRETS_IN_JSON.sub(r"\1***", _SECRETS_IN_TEXT.sub(r"\1***", _QUERY.sub("?…", str(text))))
    with _known_lock:
        known = sorted(_known_secrets, key=len, reverse=True)
    for value in known:
        clean = clean.replace(value, "***")
    return clean


class RedactingFilter(logging.Filter):
    """A log handler's filter that redacts every record (message, arguments, traceback) with `redact`:
    urllib3's debug lines name each URL, access_token and all (`houqin -v`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is the logging module's to report
            return True
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


REDACTING_FILTER = RedactingFilter()


def redact_logs() -> None:
    """Redact whatever the root logger's handlers write (called once the process set up its logging)."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(REDACTING_FILTER)


def api_error(errcode: int | None, errmsg: str) -> ApiError:
    """The ApiError for WeChat's answer, redacted; 40164 reads as the office's to-do, with the IP WeChat saw."""
    if errcode == NOT_WHITELISTED:
        seen = _SEEN_IP.search(errmsg)
        return ApiError(errcode, IP_NOT_WHITELISTED.format(ip=seen.group(1) if seen else UNKNOWN_IP))
    return ApiError(errcode, errmsg)


Fetch = Callable[[bool], tuple[str, int]]  # fetch(force_refresh) -> (token, expires_in)
T = TypeVar("T")

# photos: what the media worker keeps is an image by its content, whatever the Content-Type said
MEDIA_CHUNK = 64 * 1024
MEDIA_TOO_LARGE = "照片超过 {limit} 上限，未保存"
MEDIA_TIMED_OUT = "照片下载超过 {seconds} 秒未完成"
NOT_AN_IMAGE = "收到的不是图片（JPEG/PNG/GIF/WebP），而是 {what}，未保存"
IMAGE_TYPES = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp"}


class BadMedia(ValueError):
    """Media that is not kept, however often it is fetched: too large, or not an image."""


def sniff_image(content: bytes) -> str | None:
    """The image type `content` starts like (JPEG, PNG, GIF, WebP), or None: a photo is judged by
    its bytes, not by the Content-Type it came with."""
    if content.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if content.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if content.startswith(b"RIFF") and content[8:12] == b"WEBP":
        return "image/webp"
    return None


def _size(limit: int) -> str:
    return f"{limit / 1024 / 1024:g} MB" if limit >= 1024 * 1024 else f"{limit / 1024:g} KB"


def _json_object(body: bytes) -> dict[str, Any] | None:
    if len(body) > 4096 or not body.lstrip().startswith(b"{"):
        return None
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _int_or(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


class TokenStore:
    """Where the one shared access token lives; see bot.wechat.tokens for the database and Redis stores."""

    def get(self) -> str | None:
        raise NotImplementedError

    def refresh(self, fetch: Fetch, stale: str | None = None) -> str:
        """A token other than `stale`, fetched (`fetch(force)`) only if no process has a newer one."""
        raise NotImplementedError


class _Client(WeChatClient):  # type: ignore[misc]
    """wechatpy's client pointed at WECHAT_API_BASE; tokens are always passed in by WeChatApi."""

    def __init__(self, api: WeChatApi, timeout: float, connections: int) -> None:
        self.API_BASE_URL = api.base + "/cgi-bin/"
        super().__init__(api.appid, api.secret, timeout=timeout, auto_retry=False)
        # keep a connection per sending thread: requests' default pool of 10 would drop (and
        # re-handshake) the connections of any thread beyond the tenth
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=max(connections, 10))
        self._http.mount("http://", adapter)
        self._http.mount("https://", adapter)

    def fetch_access_token(self) -> Any:
        raise RuntimeError("tokens come from the shared TokenStore, never from wechatpy's own fetch")


JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}


class _KeptConnections:
    """The HTTP of pushes: each sending thread keeps one HTTP/1.1 connection to WeChat's API host open
    (`http.client`, no pool to look up per call: a county's Thursday menu is 100,000 sends, and a pool
    manager's per-call work cost as much CPU as the send itself). A connection the server closed while it
    sat idle is noticed before it is used (readable with nothing asked) and replaced; one that fails
    mid-call is closed, and the call fails as before (ApiError, the delivery retried on its backoff)."""

    def __init__(self, base: str, timeout: float) -> None:
        parts = urlsplit(base)
        self.https = parts.scheme == "https"
        self.host, self.port = parts.hostname or "", parts.port
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self.context = ssl.create_default_context() if self.https else None
        self.local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self.local, "conn", None)
        if conn is not None and conn.sock is not None and wait_for_read(conn.sock, timeout=0.0):
            conn.close()  # closed by the server while idle (or it sent something unasked): opened again
        if conn is None:
            conn = (http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self.context)
                    if self.https else http.client.HTTPConnection(self.host, self.port, timeout=self.timeout))
            conn.auto_open = 1
            self.local.conn = conn
        return conn

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """POST `body` to `path` (under the base's path); the answer's status and body."""
        conn = self._connection()
        try:
            conn.request("POST", self.prefix + path, body, JSON_HEADERS)
            res = conn.getresponse()
            data = res.read()
        except BaseException:
            conn.close()
            raise
        if res.will_close:
            conn.close()
        return res.status, data


class _ProxiedSends:
    """The same through the proxy the environment names for WeChat's host (urllib3 speaks to proxies)."""

    def __init__(self, base: str, proxy: str, timeout: float, connections: int) -> None:
        self.base = base
        self.pool = urllib3.ProxyManager(proxy, num_pools=2, maxsize=max(connections, 10))
        self.timeout = urllib3.Timeout(connect=timeout, read=timeout)

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        res = self.pool.request("POST", self.base + path, body=body, headers=JSON_HEADERS, timeout=self.timeout,
                                retries=False, redirect=False)
        return res.status, res.data


_sends_by_base: dict[tuple[str, float], _KeptConnections | _ProxiedSends] = {}
_sends_lock = threading.Lock()


def _sends(base: str, timeout: float, connections: int) -> _KeptConnections | _ProxiedSends:
    """How this process's pushes reach `base`: one per process and API base, shared by every school's
    account (WeChat is one host whatever the appid), through the proxy the environment names for `base`
    (HTTPS_PROXY / HTTP_PROXY / NO_PROXY, as requests reads them), read once here, not on every call."""
    with _sends_lock:
        sends = _sends_by_base.get((base, timeout))
        if sends is None:
            proxy = requests.utils.select_proxy(base, requests.utils.get_environ_proxies(base)) or ""
            sends = _ProxiedSends(base, proxy, timeout, connections) if proxy else _KeptConnections(base, timeout)
            _sends_by_base[(base, timeout)] = sends
        return sends


class WeChatApi:
    """The calls the project makes, each raising ApiError; the access token comes from `store`."""

    def __init__(self, base: str, appid: str, secret: str, store: TokenStore, timeout: float = 10.0,
                 connections: int = 10) -> None:
        self.base = base.rstrip("/")
        self.appid = appid
        self.secret = remember_secret(secret)
        self.store = store
        self.timeout = timeout
        self._client = _Client(self, timeout, connections)
        self._sends = _sends(self.base, timeout, connections)

    # -- token ---------------------------------------------------------------------------------
    def _fetch_token(self, force: bool) -> tuple[str, int]:
        """WeChat's stable token: the AppSecret travels in the body, never in a URL. Without `force`
        WeChat answers the token it already issued (until it expires); `force` replaces it (20 a day)."""
        try:
            res = requests.post(
                self.base + "/cgi-bin/stable_token",
                json={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret,
                      "force_refresh": force},
                timeout=self.timeout,
            )
            res.raise_for_status()
            data = res.json()
        except (requests.RequestException, ValueError) as exc:
            raise ApiError(None, f"token fetch failed: {type(exc).__name__}: {exc}") from None
        if data.get("errcode"):
            raise api_error(int(data["errcode"]), str(data.get("errmsg", "")))
        return remember_secret(str(data["access_token"])), int(data.get("expires_in", 7200))

    def token(self) -> str:
        return remember_secret(self.store.get() or self.store.refresh(self._fetch_token))

    def refresh_token(self, stale: str | None) -> str:
        """Replace `stale` (the token a call was refused with); others' newer tokens are kept."""
        return remember_secret(self.store.refresh(self._fetch_token, stale=stale))

    # -- calls ---------------------------------------------------------------------------------
    def _with_token(self, call: Callable[[str], T]) -> T:
        """`call(token)`; a refused token (40001/40014/42001) is refreshed once and the call retried."""
        for attempt in (1, 2):
            token = self.token()
            try:
                return call(token)
            except ApiError as error:
                if not error.token_expired or attempt == 2:
                    raise
                self.refresh_token(stale=token)
        raise AssertionError("unreachable")

    def _call(self, method: str, endpoint: str, **kwargs: Any) -> Any:
        """One API call through wechatpy, each failure an ApiError."""
        params = dict(kwargs.pop("params", {}))

        def call(token: str) -> Any:
            try:
                return self._client._request(method, endpoint, params={**params, "access_token": token}, **kwargs)
            except WeChatClientException as exc:
                if exc.errcode is None:
                    raise ApiError(None, f"HTTP {getattr(exc.response, 'status_code', '?')}") from exc
                raise api_error(int(exc.errcode), str(exc.errmsg)) from exc
            except requests.RequestException as exc:
                raise ApiError(None, f"{type(exc).__name__}: {exc}") from None

        return self._with_token(call)

    def _post_json(self, endpoint: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST `payload` as JSON to /cgi-bin/`endpoint` on a kept-alive connection (`_KeptConnections`):
        the path of every push. The same answers as `_call` — WeChat's errcode as an ApiError, HTTP errors
        and time-outs as ApiError(None) — without requests' and wechatpy's per-call work."""
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        path = f"/cgi-bin/{endpoint}?access_token="

        def call(token: str) -> dict[str, Any]:
            try:
                status, answer = self._sends.post(path + token, body)
            except (OSError, http.client.HTTPException, urllib3.exceptions.HTTPError) as exc:
                # named with the URL (redacted: no token)
                raise ApiError(None, f"{type(exc).__name__}: {exc} ({self.base}{path})") from None
            if status >= 400:
                raise ApiError(None, f"HTTP {status}")
            try:
                data = json.loads(answer.decode("utf-8", "ignore"), strict=False)
            except ValueError:
                raise ApiError(None, f"HTTP {status}: not JSON") from None
            if not isinstance(data, dict):
                return {}
            errcode = data.get("errcode")
            if errcode not in (None, 0, "0"):
                raise api_error(_int_or(errcode, -1), str(data.get("errmsg", errcode)))
            return data

        return self._with_token(call)

    def send_text(self, openid: str, text: str) -> None:
        self._post_json("message/custom/send", {"touser": openid, "msgtype": "text", "text": {"content": text}})

    def send_template(self, openid: str, template_id: str, data: dict[str, Any], url: str = "") -> str:
        """Send a template message; returns the msgid WeChat gives it ("" if none)."""
        payload: dict[str, Any] = {"touser": openid, "template_id": template_id, "data": data}
        if url:
            payload["url"] = url
        res = self._post_json("message/template/send", payload)
        return str(res.get("msgid") or "")

    def private_templates(self) -> list[dict[str, str]]:
        """The account's templates (id, title, content with {{keyword.DATA}} placeholders)."""
        res = self._call("get", "template/get_all_private_template")
        return list(res.get("template_list") or []) if isinstance(res, dict) else []

    def download_media(self, media_id: str, max_bytes: int, deadline: float) -> tuple[bytes, str]:
        """An image WeChat keeps for us, and its type as its first bytes say (never the header's word):
        streamed, at most `max_bytes` and `deadline` seconds. BadMedia for what is too large or no image."""

        def call(token: str) -> tuple[bytes, str]:
            body, declared = self._read_capped(f"{self.base}/cgi-bin/media/get",
                                               {"access_token": token, "media_id": media_id}, max_bytes, deadline)
            kind = sniff_image(body)
            if kind is not None:
                return body, kind
            answer = _json_object(body)  # WeChat's refusal: {"errcode": 40007, "errmsg": "invalid media_id"}
            if answer is not None and answer.get("errcode"):
                raise api_error(_int_or(answer.get("errcode"), -1), str(answer.get("errmsg", "")))
            raise BadMedia(NOT_AN_IMAGE.format(what=declared.split(";")[0].strip() or "?"))

        return self._with_token(call)

    def _read_capped(self, url: str, params: dict[str, str], max_bytes: int, deadline: float) -> tuple[bytes, str]:
        """GET `url`'s body (and its declared Content-Type), read as it arrives: refused past `max_bytes`
        (by its Content-Length, or once that many bytes came), given up past `deadline` seconds however
        slowly the bytes trickle in (each read returns what arrived, and the clock is checked between)."""
        started = time.monotonic()
        wait = min(self.timeout, deadline)
        try:
            with self._client._http.get(url, params=params, stream=True, timeout=(wait, wait)) as res:
                if res.status_code >= 400:
                    raise ApiError(None, f"HTTP {res.status_code}")
                length = res.headers.get("Content-Length", "")
                if length.isdigit() and int(length) > max_bytes:
                    raise BadMedia(MEDIA_TOO_LARGE.format(limit=_size(max_bytes)))
                chunks: list[bytes] = []
                size = 0
                while chunk := res.raw.read1(MEDIA_CHUNK, decode_content=True):
                    size += len(chunk)
                    if size > max_bytes:
                        raise BadMedia(MEDIA_TOO_LARGE.format(limit=_size(max_bytes)))
                    chunks.append(chunk)
                    if time.monotonic() - started > deadline:
                        raise ApiError(None, MEDIA_TIMED_OUT.format(seconds=f"{deadline:g}"))
                return b"".join(chunks), res.headers.get("Content-Type", "")
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            raise ApiError(None, f"{type(exc).__name__}: {exc}") from None

    def upload_media(self, media_type: str, filename: str, content: bytes) -> str:
        res = self._call("post", "media/upload", params={"type": media_type},
                         files={"media": (filename, content)})
        return str(res["media_id"])

    def create_qrcode(self, scene: str, expire_seconds: int | None = None) -> dict[str, Any]:
        """A permanent parametric QR code, or with `expire_seconds` (at most 30 days) a temporary one:
        returns ticket and url."""
        data: dict[str, Any] = {"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": scene}}}
        if expire_seconds is not None:
            data = {"action_name": "QR_STR_SCENE", "expire_seconds": max(60, min(expire_seconds, MAX_QR_SECONDS)),
                    "action_info": {"scene": {"scene_str": scene}}}
        res = self._call("post", "qrcode/create", data=data)
        return dict(res)

    def create_menu(self, menu: dict[str, Any]) -> None:
        """The default menu (what a follower no conditional menu matches sees)."""
        self._call("post", "menu/create", data=menu)

    def add_conditional_menu(self, menu: dict[str, Any], tag_id: int) -> str:
        """A conditional menu for the followers carrying `tag_id`; returns its menuid."""
        res = self._call("post", "menu/addconditional", data={**menu, "matchrule": {"tag_id": str(tag_id)}})
        return str(res["menuid"])

    def delete_conditional_menu(self, menuid: str) -> None:
        self._call("post", "menu/delconditional", data={"menuid": menuid})

    def menus(self) -> dict[str, Any]:
        """The account's menus as menu/get answers: {"menu": …, "conditionalmenu": [...]}; {} for none."""
        try:
            return dict(self._call("get", "menu/get"))
        except ApiError as exc:
            if exc.errcode == NO_MENU:
                return {}
            raise

    def tags(self) -> dict[str, int]:
        """The account's user tags, name -> id."""
        res = self._call("get", "tags/get")
        return {str(t["name"]): int(t["id"]) for t in res.get("tags") or []}

    def create_tag(self, name: str) -> int:
        return int(self._call("post", "tags/create", data={"tag": {"name": name}})["tag"]["id"])

    def tag_users(self, tag_id: int, openids: list[str]) -> None:
        """Tag up to 50 followers (WeChat's batch limit); one bad openid fails the whole batch."""
        self._call("post", "tags/members/batchtagging", data={"openid_list": openids, "tagid": tag_id})

    def untag_users(self, tag_id: int, openids: list[str]) -> None:
        self._call("post", "tags/members/batchuntagging", data={"openid_list": openids, "tagid": tag_id})

    def user_info(self, openid: str) -> dict[str, Any]:
        return dict(self._call("get", "user/info", params={"openid": openid, "lang": "zh_CN"}))


class Codec:
    """Opens WeChat's POSTs (plaintext, compatible or safe mode) and seals our replies the same way.

    With a key configured only an encrypted body is trusted: a plaintext body is not covered by the
    URL signature, so it is refused unless `accept_plaintext` (WECHAT_ACCEPT_PLAINTEXT, for the
    minutes of a mode switch), and then logged. Compatible mode (plaintext beside the ciphertext) to
    a bot without a key is answered from the plaintext.

    During a key rotation a message may come encrypted with WECHAT_AES_KEY_PREVIOUS; its reply is
    sealed with that same key, the one the sender can decrypt.
    """

    def __init__(self, token: str, appid: str, aes_key: str = "", previous_key: str = "",
                 tolerance: int = 300, accept_plaintext: bool = False) -> None:
        self.token = token
        self.tolerance = tolerance
        self.accept_plaintext = accept_plaintext
        self.cryptos = [Crypto(token, appid, key) for key in (aes_key, previous_key) if key] if aes_key else []

    def verify(self, args: dict[str, str]) -> None:
        """The URL signature every request carries (the GET handshake and every POST)."""
        check_timestamp(args.get("timestamp", ""), self.tolerance)
        check_signature((self.token, args.get("timestamp", ""), args.get("nonce", "")), args.get("signature", ""))

    def open(self, args: dict[str, str], body: bytes) -> tuple[dict[str, Any], Crypto | None]:
        """The message as a dict, and the Crypto its reply must be sealed with (None: plaintext).
        BadSignature (403) and BadMessage (400) say why a request is refused, without its secrets."""
        self.verify(args)
        outer = parse_xml(body)
        if args.get("encrypt_type", "raw").lower() != "aes":
            if "Encrypt" in outer and "MsgType" not in outer:
                raise BadMessage("encrypted body without encrypt_type=aes")
            return self._plaintext(outer, PLAINTEXT_IN_SAFE_MODE), None
        encrypted = outer.get("Encrypt")
        if not isinstance(encrypted, str) or not encrypted:
            raise BadMessage("encrypt_type=aes without an Encrypt element")
        check_signature((self.token, args.get("timestamp", ""), args.get("nonce", ""), encrypted),
                        args.get("msg_signature", ""), what="msg_signature")
        if not self.cryptos:
            if "MsgType" in outer:  # compatible mode, and we have no key: the plaintext is the message
                return outer, None
            raise BadMessage("an encrypted message, but WECHAT_AES_KEY is not set")
        for crypto in self.cryptos:
            try:
                plain = crypto.decrypt(encrypted)
            except BadSignature:
                continue
            return parse_xml(plain), crypto
        if "MsgType" not in outer:
            raise BadSignature(WRONG_KEY)
        return self._plaintext(outer, WRONG_KEY + " (compatible mode)"), None

    def _plaintext(self, message: dict[str, Any], refusal: str) -> dict[str, Any]:
        """A plaintext message: taken without a key; with one only under WECHAT_ACCEPT_PLAINTEXT, logged."""
        if not self.cryptos:
            return message
        if not self.accept_plaintext:
            raise BadSignature(refusal)
        log.warning("accepted a plaintext message despite WECHAT_AES_KEY (WECHAT_ACCEPT_PLAINTEXT=1): %s",
                    refusal)
        return message

    @staticmethod
    def seal(message: dict[str, Any], text: str, crypto: Crypto | None, nonce: str) -> str:
        """Our reply: "success" for nothing to say, else a text reply, encrypted if the request was."""
        if not text:
            return "success"
        xml = render_text(str(message.get("FromUserName", "")), str(message.get("ToUserName", "")), text)
        return crypto.encrypt(xml, nonce or "houqin") if crypto is not None else xml
