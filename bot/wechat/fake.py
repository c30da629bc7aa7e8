"""A local fake of the WeChat API endpoints Houqin calls, on loopback only.

It issues access tokens the way WeChat now wants them (`POST /cgi-bin/stable_token`: the same token
until it expires, a new one on `force_refresh`; `GET /cgi-bin/token`, the AppSecret in the URL, is
refused and recorded), accepts customer-service and template messages, serves and stores media,
creates QR codes and menus, answers user info, and records every call. It can refuse the caller's IP
(40164) the way WeChat does for a server not on the account's IP whitelist. Latency and errors can be
injected: a random share of calls answering an error code, or a scripted sequence per endpoint.
`/_fake/calls` lets `houqin chat` (and anyone) see what was sent.

Like WeChat, the fake reports on each template send to the account's server: given a webhook
(`houqin fake-wechat --webhook URL`, or `FakeWeChat.webhook` in tests) it posts
TEMPLATESENDJOBFINISH, signed and encrypted like WeChat's own events, after every send when
`finish` names a status ("success", "failed:user block", "failed: system failed"), and on demand
for one msgid (`POST /_fake/finish {"msgid": …, "status": …}`). Each account reports to its own
server: a county's school with an account of its own to its /wechat/<slug>, found when its first send is
reported (`FakeState.resolve`), so a school added while the fake runs is reported to without a restart.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import re
import secrets
import socket
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

from flask import Flask, Response, g, jsonify, request
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wsgi import LimitedStream

if TYPE_CHECKING:
    from bot.wechat.simulator import Transport

LOOPBACK = "127.0.0.1"
WECHAT_DAY = ZoneInfo("Asia/Shanghai")  # an account's daily quotas reset at midnight Beijing time
DAILY_QUOTA = 45009
TOKEN_ENDPOINTS = {"token", "stable_token"}
SECRET_IN_URL = 48001
RENEW_BEFORE = 300  # stable_token answers a new token in an old one's last 5 minutes (both work until then)
FORCE_INTERVAL = 30  # a force_refresh within 30 s of the last one refreshes nothing
FORCE_PER_DAY = 20
RESOLVE_AGAIN = 2.0  # seconds: an account `FakeState.resolve` did not know is asked about again no sooner
MEDIA_PIECE = 4096
# WeChat's rules for template keywords since 2023-05-04, as the fake enforces them (kept apart from
# bot.push_kinds on purpose: the fake is WeChat's side, and checks what Houqin sends)
KEYWORD_LIMITS = {"thing": 20, "phrase": 5, "name": 10, "character_string": 32, "number": 32, "letter": 32,
                  "time": 20, "date": 20}
RETIRED = ("first", "remark")
KEYWORD = re.compile(r"\{\{(\w+)\.DATA\}\}")
# the default library: the category templates the deploy guide maps (id -> title, content)
# User tags and conditional menus, with WeChat's limits and error codes
SYSTEM_TAGS = {2: "星标组"}  # every account has it; ids 0-99 are WeChat's, created tags start at 100
FIRST_TAG_ID = 100
MAX_TAGS = 100  # tags an account may create
MAX_USER_TAGS = 20  # tags on one follower
MAX_BATCH = 50  # openids in one batchtagging / batchuntagging
TAG_NAME_BYTES = 30
BUTTONS, SUB_BUTTONS = 3, 5
NAME_BYTES, SUB_NAME_BYTES, KEY_BYTES = 16, 60, 128
KEYED_TYPES = {"click", "scancode_push", "scancode_waitmsg", "pic_sysphoto", "pic_photo_or_album", "pic_weixin",
               "location_select"}
BUTTON_TYPES = KEYED_TYPES | {"view", "miniprogram", "media_id", "article_id", "article_view_limited"}
TEMPLATE_LIBRARY = {
    "TPL_REPAIR": ("报修通知", "工单编号：{{character_string1.DATA}}\n报修地点：{{thing2.DATA}}\n"
                               "报修内容：{{thing3.DATA}}\n报修时间：{{time4.DATA}}"),
    "TPL_PROGRESS": ("工单进度通知", "工单编号：{{character_string1.DATA}}\n工单状态：{{phrase2.DATA}}\n"
                                 "处理人：{{name3.DATA}}\n更新时间：{{time4.DATA}}"),
    "TPL_ALARM": ("安全预警通知", "预警内容：{{thing1.DATA}}\n车牌号：{{car_number2.DATA}}\n预警时间：{{time3.DATA}}"),
    "TPL_MENU": ("食谱发布通知", "食谱周期：{{thing1.DATA}}\n食谱内容：{{thing2.DATA}}"),
    "TPL_NOTICE": ("校园通知", "通知内容：{{thing1.DATA}}\n通知时间：{{time2.DATA}}"),
}


@dataclass
class Call:
    endpoint: str
    params: dict[str, str]
    body: dict[str, Any]
    at: float
    errcode: int = 0
    # what WeChat would cut or drop from a template send: unknown keyword, over-length, first/remark, line break
    warnings: list[str] = field(default_factory=list)

    @property
    def openid(self) -> str:
        return str(self.body.get("touser") or self.params.get("openid") or "")

    @property
    def text(self) -> str:
        """What the recipient reads: a text message's content, or a template's fields joined."""
        if "text" in self.body:
            return str(self.body["text"].get("content", ""))
        data = self.body.get("data") or {}
        return "\n".join(str(v.get("value", "")) for v in data.values() if isinstance(v, dict))

    def mentions(self, *needles: str) -> bool:
        return all(n in self.text for n in needles)


@dataclass
class FakeState:
    latency: float = 0.0
    error_rate: float = 0.0
    error_code: int = -1
    token_lifetime: int = 7200
    seed: int | None = None
    calls: list[Call] = field(default_factory=list)
    tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry (epoch)
    stable: dict[str, str] = field(default_factory=dict)  # appid -> its current stable token
    forced: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # appid -> force times
    token_fetches: int = 0
    refused_ip: str = ""  # when set, every call answers 40164 naming this IP
    # endpoint -> the errors its next calls answer: (errcode, errmsg or "" for the usual one)
    scripts: dict[str, deque[tuple[int, str]]] = field(default_factory=lambda: defaultdict(deque))
    unfollowed: set[str] = field(default_factory=set)
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    # media id -> how it is served: (seconds between 4 KB pieces, whether a Content-Length is sent)
    media_pace: dict[str, tuple[float, bool]] = field(default_factory=dict)
    qrcodes: dict[str, str] = field(default_factory=dict)  # scene -> ticket
    menus: list[dict[str, Any]] = field(default_factory=list)  # every default menu created, oldest first
    conditional: list[dict[str, Any]] = field(default_factory=list)  # live conditional menus, oldest first
    menuids: int = 400_000_000
    tags: dict[int, str] = field(default_factory=lambda: dict(SYSTEM_TAGS))  # tag id -> name
    user_tags: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))  # openid -> tag ids
    templates: dict[str, tuple[str, str]] = field(default_factory=lambda: dict(TEMPLATE_LIBRARY))
    msgids: int = 1_000_000_000
    sent_msgids: dict[str, str] = field(default_factory=dict)  # template send's msgid -> openid
    webhook: Webhook | None = None  # where TEMPLATESENDJOBFINISH goes
    # an account other than the webhook's (a school's own, in a county): appid -> where its reports go
    webhooks: dict[str, Webhook] = field(default_factory=dict)
    # asked, when a send is reported, for an appid not in `webhooks` (then kept there): where that account's
    # reports go, or None for the webhook's — an account added while the fake runs is found this way
    resolve: Callable[[str], Webhook | None] | None = None
    # appid -> when `resolve` last knew no webhook for it (`monotonic`): not asked again for RESOLVE_AGAIN
    # seconds, so a stream of reports for an unknown account does not read the county's schools each time
    unresolved: dict[str, float] = field(default_factory=dict)
    monotonic: Callable[[], float] = time.monotonic  # tests step it
    sent_appids: dict[str, str] = field(default_factory=dict)  # template send's msgid -> the sending appid
    finish: str = ""  # when set, every template send is reported with this status
    # template sends an account may make per day (Beijing time) before WeChat answers 45009; 0: no limit
    template_quota: int = 0
    template_counts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (appid, day) -> sends
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)


def _ok(**extra: Any) -> Response:
    return jsonify({"errcode": 0, "errmsg": "ok", **extra})


def _err(code: int, msg: str = "") -> Response:
    return jsonify({"errcode": code, "errmsg": msg or f"fake error {code}"})


def not_whitelisted(ip: str) -> str:
    """WeChat's 40164 message, word for word but for the request id."""
    return f"invalid ip {ip} ipv6 ::ffff:{ip}, not in whitelist rid: {secrets.token_hex(4)}-{secrets.token_hex(6)}"


def create_fake_app(state: FakeState | None = None) -> Flask:
    state = state or FakeState()
    app = Flask("fake_wechat")
    app.extensions["fake_state"] = state

    def body() -> dict[str, Any]:
        if request.mimetype == "multipart/form-data":
            return {"files": list(request.files)}
        raw = request.get_data()
        try:
            value = json.loads(raw) if raw else {}
        except ValueError:
            return {"_raw": raw.decode("utf-8", "replace")}
        return value if isinstance(value, dict) else {"_value": value}

    def record(endpoint: str) -> tuple[Call, int | None]:
        """Log the call; return the error to inject, if any (token checks come first)."""
        if state.latency:
            time.sleep(state.latency)
        call = Call(endpoint, request.args.to_dict(), body(), time.time())
        with state.lock:
            error: int | None = None
            if state.refused_ip:
                error = 40164
            elif endpoint not in TOKEN_ENDPOINTS:
                token = request.args.get("access_token", "")
                expiry = state.tokens.get(token)
                if expiry is None:
                    error = 40001
                elif expiry < time.time():
                    error = 42001
            if error is None and state.scripts.get(endpoint):
                error, errmsg = state.scripts[endpoint].popleft()
                if errmsg:  # "{url}": the request's path and query, as an error page behind a proxy shows it
                    g.errmsg = errmsg.replace("{url}", request.full_path)
            if error is None and state.error_rate and state.random.random() < state.error_rate:
                error = state.error_code
            if error is None and call.openid in state.unfollowed and endpoint.startswith("message/"):
                error = 43004
            call.errcode = error or 0
            state.calls.append(call)
        return call, error

    def failed(error: int | None) -> Response | None:
        if error is None:
            return None
        if 500 <= error < 600:  # scripted HTTP failure; 43004, 45015 ... are WeChat errcodes
            return Response("fake server error", status=error)
        if error == 40164:
            return _err(error, not_whitelisted(state.refused_ip or str(request.remote_addr)))
        return _err(error, g.get("errmsg", ""))

    @app.get("/cgi-bin/token")
    def token() -> Response:
        """The retired way: the AppSecret in the URL ends up in proxies' and servers' logs. Refused."""
        with state.lock:
            state.calls.append(Call("token", request.args.to_dict(), {}, time.time(), SECRET_IN_URL))
        return _err(SECRET_IN_URL, "fake WeChat: the AppSecret must not travel in a URL; "
                                   "POST /cgi-bin/stable_token with a JSON body")

    @app.post("/cgi-bin/stable_token")
    def stable_token() -> Response:
        """getStableAccessToken: the account's current token, a new one in its last 5 minutes (the old
        one works until it expires); `force_refresh` replaces it at once, at most every 30 s, 20 times."""
        call, error = record("stable_token")
        if call.body.get("grant_type") != "client_credential":
            return _err(40002, "invalid grant_type")
        appid, secret = str(call.body.get("appid") or ""), str(call.body.get("secret") or "")
        if not appid or not secret:
            return _err(41002 if not appid else 41004, "appid missing" if not appid else "appsecret missing")
        if (bad := failed(error)) is not None:
            return bad
        now = time.time()
        with state.lock:
            value = state.stable.get(appid, "")
            forced = state.forced[appid]
            if call.body.get("force_refresh") is True:
                if len(forced) >= FORCE_PER_DAY:
                    return _err(45009, "reach max api daily quota limit")
                if not forced or forced[-1] <= now - FORCE_INTERVAL:  # else: WeChat refreshes nothing
                    forced.append(now)
                    state.tokens.pop(value, None)
            if state.tokens.get(value, 0) - RENEW_BEFORE <= now:
                value = "FAKE_TOKEN_" + secrets.token_hex(12)
                state.stable[appid] = value
                state.tokens[value] = now + state.token_lifetime
            state.token_fetches += 1
            expires_in = int(state.tokens[value] - now)
        return jsonify({"access_token": value, "expires_in": expires_in})

    @app.post("/cgi-bin/message/custom/send")
    def custom_send() -> Response:
        call, error = record("message/custom/send")
        return failed(error) or (_ok() if call.openid else _err(40003, "invalid openid"))

    @app.post("/cgi-bin/message/template/send")
    def template_send() -> Response:
        call, error = record("message/template/send")
        if (bad := failed(error)) is not None:
            return bad
        template = state.templates.get(str(call.body.get("template_id") or ""))
        if template is None:
            call.errcode = 40037
            return _err(40037, "invalid template_id")
        call.warnings.extend(template_warnings(template[1], call.body.get("data") or {}))
        with state.lock:
            token = request.args.get("access_token", "")
            appid = next((a for a, t in state.stable.items() if t == token), "")
            if state.template_quota:
                key = (appid, datetime.now(WECHAT_DAY).date().isoformat())
                if state.template_counts[key] >= state.template_quota:
                    call.errcode = DAILY_QUOTA
                    return _err(DAILY_QUOTA, "reach max api daily quota limit")
                state.template_counts[key] += 1
            state.msgids += 1
            msgid = state.msgids
            state.sent_msgids[str(msgid)] = call.openid
            state.sent_appids[str(msgid)] = appid
        if state.finish and _hook_for(state, str(msgid)) is not None:
            # WeChat reports a moment after it answered the send, never inside it
            threading.Thread(target=_report_later, args=(state, str(msgid), state.finish), daemon=True).start()
        return _ok(msgid=msgid)

    @app.post("/_fake/finish")
    def finish() -> Response:
        asked = body()
        msgid, status = str(asked.get("msgid", "")), str(asked.get("status") or "success")
        if msgid in state.sent_msgids and _hook_for(state, msgid) is None:
            return _err(-1, "no webhook: start the fake with --webhook URL")
        if msgid not in state.sent_msgids:
            return _err(40003, f"no template send with msgid {msgid}")
        return jsonify({"errcode": 0, "errmsg": "ok", "webhook_status": report(state, msgid, status)})

    @app.get("/cgi-bin/template/get_all_private_template")
    def all_private_templates() -> Response:
        _, error = record("template/get_all_private_template")
        if (bad := failed(error)) is not None:
            return bad
        return jsonify({"template_list": [
            {"template_id": tid, "title": title, "primary_industry": "教育", "deputy_industry": "培训",
             "content": content, "example": ""} for tid, (title, content) in state.templates.items()]})

    @app.get("/cgi-bin/media/get")
    def media_get() -> Response:
        _, error = record("media/get")
        if (bad := failed(error)) is not None:
            return bad
        media_id = request.args.get("media_id", "")
        if media_id in state.media:
            content, mimetype = state.media[media_id]
        elif media_id.startswith(("media_", "voice_")):
            content, mimetype = fake_jpeg(media_id), "image/jpeg"
        else:
            return _err(40007, "invalid media_id")
        headers = {"Content-Disposition": f'attachment; filename="{media_id}.jpg"'}
        delay, sized = state.media_pace.get(media_id, (0.0, True))
        if sized:
            headers["Content-Length"] = str(len(content))
        if not delay and sized:
            return Response(content, mimetype=mimetype, headers=headers)

        def pieces() -> Iterator[bytes]:  # as many as the content has: a bounded loop
            for start in range(0, len(content), MEDIA_PIECE):
                if delay:
                    time.sleep(delay)
                yield content[start:start + MEDIA_PIECE]

        return Response(pieces(), mimetype=mimetype, headers=headers)

    @app.post("/cgi-bin/media/upload")
    def media_upload() -> Response:
        _, error = record("media/upload")
        if (bad := failed(error)) is not None:
            return bad
        upload = request.files.get("media")
        if upload is None:
            return _err(41005, "media data missing")
        media_id = "media_up_" + secrets.token_hex(8)
        state.media[media_id] = (upload.read(), upload.mimetype or "application/octet-stream")
        return jsonify({"type": request.args.get("type", "image"), "media_id": media_id, "created_at": int(time.time())})

    @app.post("/cgi-bin/qrcode/create")
    def qrcode_create() -> Response:
        call, error = record("qrcode/create")
        if (bad := failed(error)) is not None:
            return bad
        scene = str(call.body.get("action_info", {}).get("scene", {}).get("scene_str", ""))
        if not scene:
            return _err(40053, "invalid action info")
        with state.lock:
            ticket = state.qrcodes.setdefault(scene, "gQ" + secrets.token_urlsafe(24))
        return jsonify({"ticket": ticket, "url": f"http://weixin.qq.com/q/{scene}"})

    @app.post("/cgi-bin/menu/create")
    def menu_create() -> Response:
        """The default menu: what every follower no conditional menu matches sees."""
        call, error = record("menu/create")
        if (bad := failed(error)) is not None:
            return bad
        if (refused := button_error(call.body.get("button"))) is not None:
            return _err(*refused)
        with state.lock:
            state.menus.append(call.body)
        return _ok()

    @app.post("/cgi-bin/menu/addconditional")
    def menu_addconditional() -> Response:
        """A conditional (personalised) menu; only after a default menu exists, matched by user tag."""
        call, error = record("menu/addconditional")
        if (bad := failed(error)) is not None:
            return bad
        rule = call.body.get("matchrule")
        if not state.menus:
            return _err(65303, "there is no selfmenu, please create selfmenu first")
        if not isinstance(rule, dict) or not any(str(v) for v in rule.values()):
            return _err(65304, "match rule empty")
        if set(rule) & {"sex", "country", "province", "city", "language"}:
            return _err(65320, "match rule contains personal information")
        if (refused := button_error(call.body.get("button"))) is not None:
            return _err(*refused)
        with state.lock:
            state.menuids += 1
            menuid = str(state.menuids)
            state.conditional.append({"button": call.body["button"], "matchrule": rule, "menuid": menuid})
        return jsonify({"menuid": menuid})

    @app.post("/cgi-bin/menu/delconditional")
    def menu_delconditional() -> Response:
        call, error = record("menu/delconditional")
        if (bad := failed(error)) is not None:
            return bad
        menuid = str(call.body.get("menuid") or "")
        with state.lock:
            kept = [m for m in state.conditional if m["menuid"] != menuid]
            if len(kept) == len(state.conditional):
                return _err(65301, "menuid not exist")
            state.conditional = kept
        return _ok()

    @app.get("/cgi-bin/menu/get")
    def menu_get() -> Response:
        _, error = record("menu/get")
        if (bad := failed(error)) is not None:
            return bad
        if not state.menus:
            return _err(46003, "menu no exist")
        return jsonify({"menu": {"button": state.menus[-1]["button"]},
                        "conditionalmenu": [dict(m) for m in state.conditional]})

    @app.post("/cgi-bin/menu/trymatch")
    def menu_trymatch() -> Response:
        """The menu `user_id` (an openid) sees: the newest conditional menu whose tag the user has, else
        the default menu."""
        call, error = record("menu/trymatch")
        if (bad := failed(error)) is not None:
            return bad
        if not state.menus:
            return _err(46003, "menu no exist")
        return jsonify({"button": menu_seen(state, str(call.body.get("user_id") or ""))["button"]})

    @app.post("/cgi-bin/tags/create")
    def tags_create() -> Response:
        call, error = record("tags/create")
        if (bad := failed(error)) is not None:
            return bad
        name = str((call.body.get("tag") or {}).get("name") or "")
        with state.lock:
            if not name or name in state.tags.values():
                return _err(45157, "invalid tag name")
            if len(name.encode()) > TAG_NAME_BYTES:
                return _err(45158, "tag name too long")
            if sum(1 for i in state.tags if i >= FIRST_TAG_ID) >= MAX_TAGS:
                return _err(45056, "too many tags now, no need to add new")
            tag_id = max([FIRST_TAG_ID - 1, *state.tags]) + 1
            state.tags[tag_id] = name
        return jsonify({"tag": {"id": tag_id, "name": name}})

    @app.get("/cgi-bin/tags/get")
    def tags_get() -> Response:
        _, error = record("tags/get")
        if (bad := failed(error)) is not None:
            return bad
        with state.lock:
            counts = {i: sum(1 for tags in state.user_tags.values() if i in tags) for i in state.tags}
            return jsonify({"tags": [{"id": i, "name": n, "count": counts[i]} for i, n in state.tags.items()]})

    @app.post("/cgi-bin/tags/members/batchtagging")
    def tags_batchtagging() -> Response:
        return _tagging("tags/members/batchtagging", add=True)

    @app.post("/cgi-bin/tags/members/batchuntagging")
    def tags_batchuntagging() -> Response:
        return _tagging("tags/members/batchuntagging", add=False)

    def _tagging(endpoint: str, add: bool) -> Response:
        """Tag or untag up to 50 followers; any bad openid fails the whole batch, as WeChat does."""
        call, error = record(endpoint)
        if (bad := failed(error)) is not None:
            return bad
        openids = call.body.get("openid_list")
        tag_id = call.body.get("tagid")
        if not isinstance(openids, list) or not 0 < len(openids) <= MAX_BATCH:
            return _err(40032, "invalid openid list size")
        with state.lock:
            if not isinstance(tag_id, int) or tag_id not in state.tags:
                return _err(45159, "invalid tag id")
            if any(not isinstance(o, str) or not o or o in state.unfollowed for o in openids):
                return _err(40003, "invalid openid")
            if add and any(tag_id not in state.user_tags[o] and len(state.user_tags[o]) >= MAX_USER_TAGS
                           for o in openids):
                return _err(45059, "has too many tags")
            for openid in openids:
                tags = state.user_tags[openid]
                if add and tag_id not in tags:
                    tags.append(tag_id)
                elif not add and tag_id in tags:
                    tags.remove(tag_id)
        return _ok()

    @app.get("/cgi-bin/user/info")
    def user_info() -> Response:
        call, error = record("user/info")
        if (bad := failed(error)) is not None:
            return bad
        openid = request.args.get("openid", "")
        return jsonify({"subscribe": 0 if openid in state.unfollowed else 1, "openid": openid,
                        "language": "zh_CN", "subscribe_time": int(time.time())})

    @app.get("/_fake/calls")
    def calls() -> Response:
        openid = request.args.get("openid")
        since = float(request.args.get("since", "0"))
        rows = [{"endpoint": c.endpoint, "openid": c.openid, "text": c.text, "at": c.at, "errcode": c.errcode,
                 "warnings": c.warnings}
                for c in list(state.calls) if c.at > since and (not openid or c.openid == openid)]
        return jsonify(rows)

    return app


def template_warnings(content: str, data: dict[str, Any]) -> list[str]:
    """Every field of a template send that WeChat would cut or drop, one sentence each."""
    keywords = set(KEYWORD.findall(content))
    warnings = []
    for keyword, entry in data.items():
        value = str(entry.get("value", "")) if isinstance(entry, dict) else str(entry)
        kind = keyword.rstrip("0123456789")
        if keyword in RETIRED:
            warnings.append(f"{keyword}: dropped (WeChat no longer shows first/remark)")
        elif keyword not in keywords:
            warnings.append(f"{keyword}: dropped (not a keyword of this template)")
        elif len(value) > KEYWORD_LIMITS.get(kind, 20):
            warnings.append(f"{keyword}: cut ({len(value)} characters, {kind} allows {KEYWORD_LIMITS.get(kind, 20)})")
        if "\n" in value or "\r" in value:
            warnings.append(f"{keyword}: line break (WeChat shows one line)")
    return warnings


def button_error(buttons: Any) -> tuple[int, str] | None:
    """Why WeChat would refuse these menu buttons (errcode, errmsg), or None: 1-3 buttons of at most
    16 bytes, each a typed entry or up to 5 sub-buttons of at most 60 bytes; click-like types need a key."""
    if not isinstance(buttons, list) or not 0 < len(buttons) <= BUTTONS:
        return 40016, "invalid button size"
    for button in buttons:
        if not isinstance(button, dict) or not 0 < len(str(button.get("name", "")).encode()) <= NAME_BYTES:
            return 40018, "invalid button name size"
        subs = button.get("sub_button")
        if subs:
            if not isinstance(subs, list) or len(subs) > SUB_BUTTONS:
                return 40023, "invalid sub button size"
            for sub in subs:
                if not isinstance(sub, dict) or not 0 < len(str(sub.get("name", "")).encode()) <= SUB_NAME_BYTES:
                    return 40025, "invalid sub button name size"
                if (refused := _entry_error(sub, sub=True)) is not None:
                    return refused
        elif (refused := _entry_error(button, sub=False)) is not None:
            return refused
    return None


def _entry_error(entry: dict[str, Any], sub: bool) -> tuple[int, str] | None:
    if entry.get("type") not in BUTTON_TYPES:
        return (40024, "invalid sub button type") if sub else (40017, "invalid button type")
    if entry["type"] in KEYED_TYPES and not 0 < len(str(entry.get("key", "")).encode()) <= KEY_BYTES:
        return (40026, "invalid sub button key size") if sub else (40019, "invalid button key size")
    return None


def menu_seen(state: FakeState, openid: str) -> dict[str, Any]:
    """The menu `openid` sees: conditional menus are tried newest first; the first whose tag the user
    carries wins; without one, the default menu ({} if there is none)."""
    with state.lock:
        tags = {str(t) for t in state.user_tags.get(openid, [])}
        for menu in reversed(state.conditional):
            if str(menu["matchrule"].get("tag_id", "")) in tags:
                return {"button": menu["button"]}
        return {"button": state.menus[-1]["button"]} if state.menus else {}


def fake_jpeg(seed: str) -> bytes:
    """A tiny valid JPEG-looking payload, different per media id."""
    return b"\xff\xd8\xff\xe0" + seed.encode() + b"\x00" * 16 + b"\xff\xd9"


def report(state: FakeState, msgid: str, status: str) -> int:
    """Post TEMPLATESENDJOBFINISH for the template send `msgid` to the webhook, as WeChat does once it
    knows: "success", "failed:user block" or "failed: system failed". Returns the HTTP status."""
    from bot.wechat.simulator import WeChatUser

    hook = _hook_for(state, msgid)
    if hook is None:
        raise RuntimeError("the fake has no webhook to post to (set FakeWeChat.webhook)")
    user = WeChatUser(state.sent_msgids[msgid], token=hook.token, appid=hook.appid, transport=hook.transport,
                      aes_key=hook.aes_key, path=hook.path)
    return user.event("TEMPLATESENDJOBFINISH", MsgID=int(msgid), Status=status).status


def _hook_for(state: FakeState, msgid: str) -> Webhook | None:
    """Where the report on `msgid` goes: the webhook of the account that sent it (a school's own account
    posts to its /wechat/<slug>; one the fake was not told of is asked of `state.resolve`, now — unless
    it answered "nobody" for that appid less than RESOLVE_AGAIN seconds ago), else the fake's one webhook
    (the default account's /wechat)."""
    appid = state.sent_appids.get(msgid, "")
    hook = state.webhooks.get(appid)
    if hook is None and appid and state.resolve is not None and (state.webhook is None
                                                                 or appid != state.webhook.appid):
        now = state.monotonic()
        if now - state.unresolved.get(appid, float("-inf")) < RESOLVE_AGAIN:
            return state.webhook  # asked a moment ago: nobody has that account (yet)
        hook = state.resolve(appid)
        with state.lock:
            if hook is not None:
                state.webhooks[appid] = hook
                state.unresolved.pop(appid, None)
            else:
                state.unresolved[appid] = now
    return hook or state.webhook


def _report_later(state: FakeState, msgid: str, status: str) -> None:
    time.sleep(0.05)
    with contextlib.suppress(Exception):  # a bot that is down misses the report, as with WeChat
        report(state, msgid, status)


@dataclass
class Webhook:
    """Where the fake posts WeChat's own events (TEMPLATESENDJOBFINISH): the bot's /wechat, signed and,
    with a key, encrypted as WeChat does."""

    token: str
    appid: str
    transport: Transport
    aes_key: str = ""
    path: str = "/wechat"  # a school's own account: /wechat/<slug>


KEEP_ALIVE_IDLE = 60.0  # seconds a kept-alive connection may sit idle before the fake closes it


class KeepAliveHandler(WSGIRequestHandler):
    """HTTP/1.1 keep-alive, as WeChat's API keeps connections open (a county's pushes would otherwise
    open and close a TCP connection per call, half of a send's CPU). werkzeug's dev server sends
    "Connection: close" on every response and then drains the socket of any request body the app left
    unread: on a kept-alive connection that drain reads — and blocks on — the client's next request,
    which is why setting protocol_version alone stalled sends. Here every request's body is read to its
    Content-Length whatever the route read, the drain is pointed at an empty buffer (a socket at its
    end, so its 10 ms select does not wait either), the answer goes out without Nagle's delay, and the
    connection stays open; a chunked request body, or a client asking for close, still closes it.
    FakeWeChat.stop() closes the connections still open."""

    protocol_version = "HTTP/1.1"
    timeout = KEEP_ALIVE_IDLE
    server: FakeServer

    def setup(self) -> None:
        super().setup()
        # werkzeug writes a response's headers and body apart: on a kept-alive connection Nagle's
        # algorithm would hold the body until the client's delayed ACK (~40 ms a call)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # what werkzeug's drain looks at instead: at its end at once (the peer closed), read from an
        # empty buffer — no wait for, and no read of, the client's next request
        self._drained, peer = socket.socketpair()
        peer.close()
        self._body: LimitedStream | None = None
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        # a kept-alive connection left idle past KEEP_ALIVE_IDLE is closed, as WeChat's servers close
        # theirs: routine, not an error for the log (it landed in other tests' captured werkzeug logs)
        if format.startswith("Request timed out"):
            return
        super().log_error(format, *args)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        self._drained.close()
        super().finish()

    def make_environ(self) -> Any:
        environ = super().make_environ()  # its wsgi.input: the connection's stream
        self.rfile = io.BytesIO()  # until run_wsgi ends: werkzeug's drain reads this, not the connection
        self._body = None
        if not environ.get("wsgi.input_terminated"):  # not chunked: the body is Content-Length bytes
            try:
                length = max(0, int(environ.get("CONTENT_LENGTH") or 0))
            except ValueError:
                length = -1
            if length >= 0:
                self._body = LimitedStream(environ["wsgi.input"], length)
                environ["wsgi.input"] = self._body
        return environ

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == "connection" and value.lower() == "close" and self._keep_alive():
            return
        super().send_header(keyword, value)

    def _keep_alive(self) -> bool:
        return self._body is not None and not self.close_connection

    def run_wsgi(self) -> None:
        connection, rfile = self.connection, self.rfile
        self.connection = self._drained
        try:
            super().run_wsgi()
        finally:
            self.connection, self.rfile = connection, rfile
        if not self._keep_alive():
            self.close_connection = True
            return
        try:
            assert self._body is not None
            self._body.exhaust()  # what the route left unread, so the next request starts clean
        except (OSError, ValueError):
            self.close_connection = True


class FakeServer(BaseWSGIServer):
    """For type checkers: the server make_server returns, with the connections KeepAliveHandler tracks."""

    connections: set[socket.socket]
    connections_lock: threading.Lock


class FakeWeChat:
    """The fake running in a background thread; tests use it through the `fake_wechat` fixture."""

    def __init__(self, port: int = 0, **options: Any) -> None:
        self.state = FakeState(**options)
        self.app = create_fake_app(self.state)
        self.server = cast(FakeServer, make_server(LOOPBACK, port, self.app, threaded=True,
                                                   request_handler=KeepAliveHandler))
        self.server.connections, self.server.connections_lock = set(), threading.Lock()
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-wechat", daemon=True)

    @property
    def webhook(self) -> Webhook | None:
        return self.state.webhook

    @webhook.setter
    def webhook(self, hook: Webhook | None) -> None:
        self.state.webhook = hook

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> FakeWeChat:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        with self.server.connections_lock:  # kept-alive connections: closed, as a stopped server's are
            open_now = list(self.server.connections)
        for conn in open_now:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    # -- what tests ask --------------------------------------------------------------------------
    @property
    def calls(self) -> list[Call]:
        return list(self.state.calls)

    def sent(self) -> list[Call]:
        return [c for c in self.state.calls if c.endpoint.startswith("message/") and c.errcode == 0]

    def sent_to_openid(self, openid: str) -> list[Call]:
        return [c for c in self.sent() if c.openid == openid]

    def menu_seen_by(self, openid: str) -> dict[str, Any]:
        """The menu `openid` sees (as menu/trymatch answers it), {} when the account has none."""
        return menu_seen(self.state, openid)

    def tags_of(self, openid: str) -> list[str]:
        """The names of the tags `openid` carries."""
        with self.state.lock:
            return [self.state.tags[t] for t in self.state.user_tags.get(openid, [])]

    def script(self, endpoint: str, *errcodes: int, errmsg: str = "") -> None:
        """The next calls to `endpoint` answer these error codes, in order; with `errmsg` (where
        "{url}" stands for the request's path and query) instead of the usual message."""
        with self.state.lock:
            self.state.scripts[endpoint].extend((code, errmsg) for code in errcodes)

    def add_media(self, media_id: str, content: bytes, mimetype: str = "image/jpeg", delay: float = 0.0,
                  sized: bool = True) -> None:
        """Serve `content` as `media_id` with this Content-Type (true or not); with `delay`, in 4 KB
        pieces that many seconds apart; unless `sized`, without a Content-Length (chunked)."""
        with self.state.lock:
            self.state.media[media_id] = (content, mimetype)
            self.state.media_pace[media_id] = (delay, sized)

    def finish_template_job(self, msgid: str, status: str = "success") -> int:
        """Report on the template send `msgid` to the webhook now (see `report`)."""
        return report(self.state, str(msgid), status)

    def add_template(self, template_id: str, title: str, content: str) -> None:
        """Put a template into the account's library (`content` with {{keyword.DATA}} placeholders)."""
        with self.state.lock:
            self.state.templates[template_id] = (title, content)

    def remove_template(self, template_id: str) -> None:
        with self.state.lock:
            self.state.templates.pop(template_id, None)

    def expire_tokens(self) -> None:
        with self.state.lock:
            self.state.tokens.clear()

    def force_window_passed(self) -> None:
        """As if 30 s had passed since every account's last force_refresh."""
        with self.state.lock:
            for times in self.state.forced.values():
                times[:] = [t - FORCE_INTERVAL for t in times]

    def refuse_ip(self, ip: str) -> None:
        """Every call answers 40164 naming `ip`, as WeChat does for a server not on the IP whitelist
        ("" lifts it)."""
        with self.state.lock:
            self.state.refused_ip = ip

    def forced_refreshes(self, appid: str = "") -> list[Call]:
        return [c for c in self.state.calls if c.endpoint == "stable_token" and c.body.get("force_refresh") is True
                and (not appid or c.body.get("appid") == appid)]

    def secret_in_url(self) -> list[Call]:
        """Calls that carried the AppSecret in their URL (there should be none)."""
        return [c for c in self.state.calls if any("secret" in key.lower() for key in c.params)]

    def reset(self) -> None:
        with self.state.lock:
            self.state.calls.clear()
            self.state.scripts.clear()
            self.state.unfollowed.clear()
            self.state.latency = 0.0
            self.state.error_rate = 0.0
            self.state.refused_ip = ""
            self.state.forced.clear()  # each test starts the account's force_refresh budget afresh
            self.state.templates = dict(TEMPLATE_LIBRARY)
            self.state.menus.clear()
            self.state.conditional.clear()
            self.state.tags = dict(SYSTEM_TAGS)
            self.state.user_tags.clear()
            self.state.webhook = None
            self.state.webhooks.clear()
            self.state.resolve = None
            self.state.unresolved.clear()
            self.state.monotonic = time.monotonic
            self.state.finish = ""
            self.state.media_pace.clear()
            self.state.template_quota = 0
            self.state.template_counts.clear()


def load_library(path: str) -> dict[str, tuple[str, str]]:
    """A template library from a JSON file shaped like WeChat's own answer: `{"template_list": [{"template_id",
    "title", "content"}, …]}`, or a plain list of those."""
    with open(path, encoding="utf-8") as f:
        raw = json.load(f)
    rows = raw.get("template_list", []) if isinstance(raw, dict) else raw
    return {str(r["template_id"]): (str(r.get("title", "")), str(r["content"])) for r in rows}


def serve(port: int, latency: float = 0.0, error_rate: float = 0.0, refused_ip: str = "",
          webhook: Webhook | None = None, finish: str = "", library: dict[str, tuple[str, str]] | None = None,
          template_quota: int = 0, resolve: Callable[[str], Webhook | None] | None = None) -> None:
    """`houqin fake-wechat --port P`: run in the foreground until interrupted; `resolve` finds the webhook
    of an account other than `webhook`'s when one of its sends is reported (FakeState.resolve)."""
    fake = FakeWeChat(port, latency=latency, error_rate=error_rate, refused_ip=refused_ip, finish=finish,
                      template_quota=template_quota, resolve=resolve)
    fake.webhook = webhook
    if library is not None:
        fake.state.templates = dict(library)
    print(f"fake WeChat API on {fake.base_url} (set WECHAT_API_BASE={fake.base_url})", flush=True)
    if webhook is not None:
        print(f"reports template sends to the webhook{' as ' + repr(finish) if finish else ' on POST /_fake/finish'}",
              flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        fake.server.serve_forever()
