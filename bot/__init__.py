"""Houqin 后勤助手: the WSGI app factory. `gunicorn 'bot:create_app()'` serves it at scale."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from sqlalchemy import text as sql_text

from bot.config import Settings, settings_from_environment
from bot.services import Services


def create_app(config: Settings | None = None, services: Services | None = None) -> Flask:
    """The web app: webhook, console, menu page, health check.

    With no arguments the settings come from the environment (and `.env`); a missing one stops
    start-up with a message naming it.
    """
    if services is None:
        services = Services.from_settings(config or settings_from_environment())
    settings = services.settings
    app = Flask(__name__, instance_path=str(settings.instance_dir), instance_relative_config=False)
    app.config.update(SECRET_KEY=settings.secret_key, MAX_CONTENT_LENGTH=None)
    app.extensions["houqin"] = services
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from bot import menu_page, webhook

    app.register_blueprint(webhook.bp)
    from bot import console

    app.register_blueprint(console.bp)
    app.register_blueprint(menu_page.bp)

    @app.get("/healthz")
    def healthz() -> tuple[Response, int]:
        try:
            with services.db_engine.connect() as conn:
                conn.execute(sql_text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - report, don't crash
            return jsonify(status="error", database=str(exc)), 503
        return jsonify(status="ok", database="ok"), 200

    return app
