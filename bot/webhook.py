"""`GET/POST /wechat`: verify, decrypt, parse, store-and-dispatch, render. No capability named here."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, request

from bot.engine import Incoming
from bot.gateway import BadMessage, BadSignature
from bot.services import Services

bp = Blueprint("wechat", __name__)


def _services() -> Services:
    return current_app.extensions["houqin"]  # type: ignore[no-any-return]


@bp.get("/wechat")
def handshake() -> Response:
    try:
        _services().codec.verify(request.args.to_dict())
    except BadSignature:
        abort(403)
    return Response(request.args.get("echostr", ""), mimetype="text/plain")


@bp.post("/wechat")
def receive() -> Response:
    services = _services()
    limit = services.settings.max_body_bytes
    if (request.content_length or 0) > limit:
        abort(413)
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        abort(413)
    try:
        data, crypto = services.codec.open(request.args.to_dict(), body)
    except BadSignature:
        abort(403)
    except BadMessage:
        abort(400)
    message = Incoming.from_wechat(data)
    if not message.openid or not message.msg_type:
        abort(400)
    text = services.inbox.handle(message)
    reply = services.codec.seal(data, text, crypto, request.args.get("nonce", ""))
    return Response(reply, mimetype="text/plain" if reply == "success" else "application/xml")
