"""The platform room: everything that speaks WeChat, and the only package that imports wechatpy.

- `gateway`: signatures, safe-mode crypto, XML in and out, the API client and its error texts.
- `webhook`: `GET/POST /wechat`, thin: verify, decrypt, refuse replays, store-and-dispatch, reply.
- `nonces`: a signed (timestamp, nonce) pair accepted once.
- `tokens`: the shared access token (stable_token, force_refresh at most once a window).
- `templates`: template messages under the 2023 rules (typed keywords, fitting, `templates check`).
- `media`: downloading photos before WeChat forgets them.
- `menu`: the custom menu built from what the capabilities answer.
- `fake`, `simulator`, `chat`: the fake WeChat API, a simulated user, and `houqin chat`.

The product (bot.engine, handlers, the outbox) speaks in people, pushes and replies; it reaches the
platform only through these modules.
"""
