"""`GET/POST /wechat`: verify, decrypt, parse, store-and-dispatch (refusing replays), render.
No capability named here. Every refusal is logged with its reason, never with the query string,
signature or nonce."""

from __future__ import annotations

import logging
from typing import NoReturn

from flask import Blueprint, Response, abort, current_app, request
from werkzeug.serving import WSGIRequestHandler

from bot.county import own_account_services, route
from bot.engine import Incoming
from bot.inbox import Replayed, Stamp
from bot.services import Services
from bot.wechat.gateway import BadMessage, BadSignature

bp = Blueprint("wechat", __name__)
log = logging.getLogger(__name__)


def _services(school: str | None = None) -> Services:
    """The default account's services, or (`/wechat/<school>`) those of a school with an account of its own."""
    default: Services = current_app.extensions["houqin"]
    if school is None:
        return default
    found = own_account_services(default, school)
    if found is None:
        _refuse(404, f"no school {school!r} with an account of its own")
    return found


def _refuse(status: int, reason: object) -> NoReturn:
    log.warning("refused %s /wechat (%d): %s", request.method, status, reason)
    abort(status)


@bp.get("/wechat")
@bp.get("/wechat/<school>")
def handshake(school: str | None = None) -> Response:
    try:
        _services(school).codec.verify(request.args.to_dict())
    except BadSignature as exc:
        _refuse(403, exc)
    return Response(request.args.get("echostr", ""), mimetype="text/plain")


@bp.post("/wechat")
@bp.post("/wechat/<school>")
def receive(school: str | None = None) -> Response:
    services = _services(school)
    limit = services.settings.max_body_bytes
    if (request.content_length or 0) > limit:
        _refuse(413, f"body too large (over {limit} bytes)")
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        _refuse(413, f"body too large (over {limit} bytes)")
    args = request.args.to_dict()
    try:
        data, crypto = services.codec.open(args, body)
    except BadSignature as exc:
        _refuse(403, exc)
    except BadMessage as exc:
        _refuse(400, f"bad XML: {exc}")
    message = Incoming.from_wechat(data)
    if not message.openid or not message.msg_type:
        _refuse(400, "bad XML: no FromUserName or MsgType")
    stamp = Stamp(int(args["timestamp"]), args.get("nonce", ""))  # the codec checked the timestamp
    # a ledger in the database claims the stamp with the message; Redis refuses a replay before the
    # database is asked anything
    within = stamp if services.nonces.in_database else None
    try:
        if within is None and not services.inbox.claim_alone(stamp):
            raise Replayed
        text = route(services, message, within) if school is None else services.inbox.handle(message, within)
    except Replayed:
        _refuse(403, "replayed nonce (this timestamp and nonce were used before)")
    reply = services.codec.seal(data, text, crypto, stamp.nonce)
    return Response(reply, mimetype="text/plain" if reply == "success" else "application/xml")


class PathOnlyRequestHandler(WSGIRequestHandler):
    """werkzeug's request log (`houqin serve`) without the query string: the webhook's carries the
    signature, timestamp and nonce, and a console link's may carry a token. The `Server` header names
    no server version."""

    def version_string(self) -> str:
        return "houqin"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        full = getattr(self, "path", None)
        if full is None:  # a request line too bad to parse: say only that
            self.log("info", '"(unparsable request line)" %s %s', code, size)
            return
        self.path = full.partition("?")[0]
        try:
            super().log_request(code, size)
        finally:
            self.path = full
