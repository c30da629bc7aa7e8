"""Houqin 后勤助手: the WSGI app factory. `gunicorn 'bot:create_app()'` serves it at scale."""

from __future__ import annotations

import logging
import threading

from flask import Flask, Response, jsonify
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import text as sql_text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from werkzeug.middleware.proxy_fix import ProxyFix

from bot.config import Settings, public_url_warning, settings_from_environment
from bot.inbox import REPLAY_BUDGET_SECONDS
from bot.private import exposure_warning
from bot.services import Services
from bot.spool import DatabaseUnavailable, Spool
from bot.text import warm_segmenter
from bot.wechat.gateway import redact_logs

log = logging.getLogger(__name__)

# every page's styles and images come from this app, nothing runs as a script, no page is framed
CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                           "frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions (the console's), with the signing serializer made once per key
    instead of on every request: Flask opens a session for each webhook call too."""

    def __init__(self) -> None:
        self._serializers: dict[tuple[object, ...], URLSafeTimedSerializer | None] = {}

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        key = (app.secret_key, *(app.config["SECRET_KEY_FALLBACKS"] or ()))
        if key not in self._serializers:
            self._serializers[key] = super().get_signing_serializer(app)
        return self._serializers[key]


def _spooled(spool: Spool) -> dict[str, int]:
    """For /healthz: how many messages wait in the spool, when any do."""
    count = len(spool.files())
    return {"spooled": count} if count else {}


def _quota(session: Session, services: Services) -> dict[str, object]:
    """For /healthz: the account's template sends today against its daily quota, once any were deferred
    (`quota_deferred`) or WeChat answered 45009 (`quota_exhausted`)."""
    from bot.worker import quota_today

    row = quota_today(session, services.settings.wechat_appid, services.now())
    if row is None or not (row.deferred or row.exhausted_at):
        return {}
    return {"template_sends": row.sent, "template_quota": services.settings.template_daily_quota,
            "quota_deferred": row.deferred, **({"quota_exhausted": True} if row.exhausted_at else {})}


_SECURITY_HEADER_KEYS = {name.lower(): name for name in SECURITY_HEADERS}


def _security_headers(response: Response) -> Response:
    """The same headers on every response; a page that wants a stricter one (the push pages'
    no-referrer) has set it already. One pass over the response's headers instead of a `setdefault`
    each (werkzeug scans the list per call: a tenth of Flask's own time per webhook request)."""
    present = {key.lower() for key, _ in response.headers.items()} & _SECURITY_HEADER_KEYS.keys()
    if len(present) < len(SECURITY_HEADERS):
        response.headers.extend([(name, value) for name, value in SECURITY_HEADERS.items()
                                 if name.lower() not in present])
    return response


def create_app(config: Settings | None = None, services: Services | None = None) -> Flask:
    """The web app: webhook, console, menu page, health check.

    With no arguments the settings come from the environment (and `.env`); a missing one stops
    start-up with a message naming it.
    """
    from_environment = services is None and config is None
    if services is None:
        services = Services.from_settings(config or settings_from_environment())
    settings = services.settings
    app = Flask(__name__, instance_path=str(settings.instance_dir), instance_relative_config=False)
    app.config.update(SECRET_KEY=settings.secret_key, MAX_CONTENT_LENGTH=None, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_SECURE=settings.public_url.startswith("https://"))
    if settings.trusted_proxies:
        hops = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    app.after_request(_security_headers)
    app.session_interface = _SessionInterface()
    app.extensions["houqin"] = services
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    redact_logs()
    if settings.safe_mode and settings.accept_plaintext:
        log.warning("WECHAT_ACCEPT_PLAINTEXT=1: plaintext messages are accepted although WECHAT_AES_KEY is set; "
                    "their body is not covered by the signature. Turn it off once the account is in safe mode.")
    if from_environment and (warning := public_url_warning(settings)) is not None:
        log.warning(warning)
    if from_environment and (warning := exposure_warning(settings.instance_dir)) is not None:
        log.warning(warning)
    threading.Thread(target=warm_segmenter, name="warm-segmenter", daemon=True).start()

    from bot import menu_page, push_page
    from bot.wechat import webhook

    app.register_blueprint(webhook.bp)
    from bot import console

    app.register_blueprint(console.bp)
    app.register_blueprint(menu_page.bp)
    app.register_blueprint(push_page.bp)
    # a school's own pages (bot.county): /s/<school>/p/<token>, /s/<school>/menu/…
    from bot.county import SCHOOL_URL_PREFIX, pull_school, school_prefix

    app.url_value_preprocessor(pull_school)
    app.jinja_env.globals["school_prefix"] = school_prefix
    app.register_blueprint(menu_page.bp, url_prefix=f"{SCHOOL_URL_PREFIX}/<school>", name="school_menu_page")
    app.register_blueprint(push_page.bp, url_prefix=f"{SCHOOL_URL_PREFIX}/<school>", name="school_push_page")

    @app.get("/healthz")
    def healthz() -> tuple[Response, int]:
        """200 when the database answers, else 503 (the cause is logged, not shown); `spooled` counts
        messages waiting in the spool, which are replayed here too, so a web worker that gets health
        checks drains it."""
        inbox = services.inbox
        try:
            inbox.spool.replay(inbox.replayed, budget=REPLAY_BUDGET_SECONDS)
            with Session(services.db_engine) as session:
                session.execute(sql_text("SELECT 1"))
                try:  # the quota's figures are extra: a database the migrations have not reached yet still answers
                    quota = _quota(session, services)
                except SQLAlchemyError as exc:
                    log.warning("health check: template quota not readable: %s", exc)
                    quota = {}
        except (DatabaseUnavailable, SQLAlchemyError) as exc:
            log.warning("health check: database unreachable: %s", exc)
            return jsonify(status="error", database="unreachable", **_spooled(inbox.spool)), 503
        return jsonify(status="ok", database="ok", **_spooled(inbox.spool), **quota), 200

    return app
