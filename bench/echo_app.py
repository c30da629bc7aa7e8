"""The benchmark's baseline: the least a safe-mode WeChat webhook can do in Flask + wechatpy.

It checks the URL signature, decrypts the body (which also checks `msg_signature`), parses the
message and echoes a text message's content back, encrypted — no database, no conversation engine.
`bench/webhook.py` serves it under the same gunicorn settings as `bot:create_app()`:

    gunicorn -w 2 'bench.echo_app:create_app()'

Settings come from the same environment variables as the bot: WECHAT_TOKEN, WECHAT_APPID,
WECHAT_AES_KEY.
"""

from __future__ import annotations

import os

from flask import Flask, Response, abort, request
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature


def create_app() -> Flask:
    token = os.environ["WECHAT_TOKEN"]
    crypto = WeChatCrypto(token, os.environ["WECHAT_AES_KEY"], os.environ["WECHAT_APPID"])
    app = Flask(__name__)

    @app.post("/wechat")
    def echo() -> Response:
        args = request.args
        timestamp, nonce = args.get("timestamp", ""), args.get("nonce", "")
        try:
            check_signature(token, args.get("signature", ""), timestamp, nonce)
            xml = crypto.decrypt_message(request.get_data(), args.get("msg_signature", ""), timestamp, nonce)
        except (InvalidSignatureException, InvalidAppIdException):
            abort(403)
        msg = parse_message(xml)
        if msg.type != "text":
            return Response("success", mimetype="text/plain")
        reply = TextReply(content=msg.content, message=msg).render()
        return Response(crypto.encrypt_message(reply, nonce, timestamp), mimetype="application/xml")

    return app
