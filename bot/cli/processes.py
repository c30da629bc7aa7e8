"""The processes: serve (everything in one, with the demo school), worker, scheduler, the spool, db
upgrade, and demo."""

from __future__ import annotations

import json
import os
import signal
import threading
from typing import Any

import click

from bot.cli.base import RUNTIME, CliError, _clock, _services, _settings, main
from bot.cli.schools import chosen_school
from bot.config import (
    Settings,
    public_url_warning,
    read_environment,
)
from bot.private import exposure_warning, write_private
from bot.services import Services
from bot.worker import Wakeup

DEMO_NOT_EMPTY = "数据库中已有人员：演示数据只能载入空数据库"
PORT_TAKEN = "无法在 {host}:{port} 上监听：{reason}（端口被其他程序占用？可用 --port 换一个）"


# -- processes ------------------------------------------------------------------------------------
@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--demo/--no-demo", default=True, show_default=True, help="load the demo school into an empty database")
def serve(host: str, port: int, demo: bool) -> None:
    """Everything in one process on the embedded default: webhook, console, worker, scheduler.

    Without WECHAT_API_BASE in the environment, a local fake WeChat starts too, so pushes are visible.
    """
    from werkzeug.serving import make_server

    from bot import create_app
    from bot.serve_lock import AlreadyServing, ServeLock
    from bot.wechat.fake import FakeWeChat
    from bot.wechat.webhook import PathOnlyRequestHandler

    env = read_environment()
    settings = _settings(embedded=True, create=True)
    try:  # before anything starts: a second serve must not run a second worker and scheduler
        lock = ServeLock.claim(settings.instance_dir, port)
    except AlreadyServing as exc:
        raise CliError(str(exc)) from exc
    fake = None
    overrides: dict[str, Any] = {}
    if not env.get("WECHAT_API_BASE"):
        fake = FakeWeChat(0).start()
        overrides["wechat_api_base"] = fake.base_url
    overrides.setdefault("public_url", env.get("HOUQIN_PUBLIC_URL") or f"http://{host}:{port}")
    services = Services.from_settings(settings.with_overrides(**overrides))
    services.clock = _clock()
    from bot.db import upgrade

    upgrade(services.db_engine)
    from bot.county import County

    County.of(services)  # every school's services hang off it; the default's own template ids apply
    if demo:
        from bot.demo import DEMO_TEACHER, is_empty, load_demo

        with services.factory() as db, db.begin():
            if is_empty(db):
                load_demo(db, services.now())
                click.echo("已载入演示学校数据。")
    app = create_app(services=services)
    try:
        server = make_server(host, port, app, threaded=True, request_handler=PathOnlyRequestHandler)
    except OSError as exc:
        if fake:
            fake.stop()
        raise CliError(PORT_TAKEN.format(host=host, port=port, reason=exc.strerror or exc)) from exc
    lock.record(server.server_port)
    stop = threading.Event()
    worker = services.worker()
    threading.Thread(target=worker.run_forever, args=(stop, 0.5, Wakeup.for_engine(services.db_engine)),
                     name="push-worker", daemon=True).start()
    _background_workers(services, stop)
    _other_schools_workers(services, stop)
    from scheduler.runner import CountyRunner

    runner = CountyRunner(services)
    runner.start()
    bot_url = f"http://{host}:{server.server_port}"
    runtime = {"bot_url": bot_url, "pid": os.getpid(), "fake_wechat_url": fake.base_url if fake else ""}
    write_private(services.settings.instance_dir / RUNTIME, json.dumps(runtime))
    if fake:  # like WeChat, the embedded fake reports each template send back to this bot: the default
        # account's to /wechat, a school's own account's to its /wechat/<slug> (one added later too)
        from bot.county import report_webhooks
        from bot.wechat.simulator import http_transport

        fake.webhook, fake.state.resolve = report_webhooks(County.of(services), http_transport(bot_url))
        fake.state.finish = "success"
    click.echo(f"Houqin 后勤助手 on {runtime['bot_url']}  (webhook /wechat, health /healthz)")
    if fake:
        click.echo(f"fake WeChat API on {fake.base_url}: pushes are recorded there")
    click.echo(f"Console: {runtime['bot_url']}/admin  (first: houqin console-password NAME, for an admin)")
    if demo:
        click.echo(f"Try it:  houqin chat --as {DEMO_TEACHER}     (bind codes: houqin codes)")
    _warn_without_templates(services.settings)
    _warn_exposed_instance(services.settings)
    _check_token(services)

    def shutdown(*_: Any) -> None:
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        runner.stop()
        (services.settings.instance_dir / RUNTIME).unlink(missing_ok=True)
        if fake:
            fake.stop()
        lock.release()


@main.command()
def worker() -> None:
    """A push worker process; run any number of them against the same database."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # first: a stop while it starts is a clean one too
    services = _services(every_school=True)
    click.echo(f"push worker started (database {services.db_engine.url.render_as_string(hide_password=True)})")
    _warn_without_templates(services.settings)
    _warn_public_url(services.settings)
    _warn_exposed_instance(services.settings)
    _check_token(services)
    _background_workers(services, stop)
    if chosen_school() is None:
        _other_schools_workers(services, stop)
    try:
        # on PostgreSQL an idle worker waits in LISTEN: a push queued anywhere wakes it at its commit
        services.worker().run_forever(stop, wakeup=Wakeup.for_engine(services.db_engine))
    except KeyboardInterrupt:
        stop.set()


def _other_schools_workers(services: Services, stop: threading.Event) -> None:
    """The push worker and its companions for every school but `services`' own (bot.county), in threads;
    a school added later gets its own at the next look."""
    from bot.county import County, serve_every_school

    def start(school: Services, stop: threading.Event) -> None:
        if school is services:
            return
        threading.Thread(target=school.worker().run_forever, args=(stop, 0.5, Wakeup.for_engine(school.db_engine)),
                         name=f"push-worker-{school.settings.school}", daemon=True).start()
        _background_workers(school, stop)

    threading.Thread(target=serve_every_school, args=(County.of(services), stop, start), name="schools",
                     daemon=True).start()


def _background_workers(services: Services, stop: threading.Event) -> None:
    """Beside the push worker, in `serve` and `worker` alike: photo downloads, menu tags, the spool."""
    from bot.wechat.media import media_worker
    from bot.wechat.menu import menu_worker

    threading.Thread(target=media_worker(services).run_forever, args=(stop,), name="media-worker", daemon=True).start()
    threading.Thread(target=menu_worker(services).run_forever, args=(stop,), name="menu-worker", daemon=True).start()
    _replay_spool_in_background(services, stop)


def _replay_spool_in_background(services: Services, stop: threading.Event) -> None:
    """Messages this machine kept while the database was unreachable go in as soon as it is back."""
    inbox = services.inbox
    threading.Thread(target=inbox.spool.replay_forever, args=(inbox.replayed, stop), name="spool-replay",
                     daemon=True).start()


@main.group(invoke_without_command=True)
@click.pass_context
def spool(ctx: click.Context) -> None:
    """Messages kept on this machine while the database was unreachable (instance/spool/)."""
    if ctx.invoked_subcommand is None:
        files = Services.from_settings(_settings()).spool.files()
        click.echo(f"{len(files)} 条消息待重放" + "".join(f"\n  {path.name}" for path in files))


@spool.command("replay")
def spool_replay() -> None:
    """Store and handle the kept messages now, oldest first; each reply is pushed to its sender."""
    from bot.spool import DatabaseUnavailable

    services = _services()
    try:
        count = services.inbox.replay()
    except DatabaseUnavailable as exc:
        raise CliError(f"数据库仍无法连接，消息保留在 {services.spool.folder}") from exc
    left = len(services.spool.files())
    click.echo(f"已重放 {count} 条消息" + (f"，另有 {left} 条正由其他进程重放" if left else ""))
def _check_token(services: Services) -> None:
    """Ask WeChat for the token once at start-up, so a missing IP whitelist entry is seen at once."""
    from bot.wechat.tokens import check_token

    click.echo(check_token(services.api))


def _warn_without_templates(settings: Settings) -> None:
    """Say plainly which pushes cannot reach someone who has not written within 48 hours."""
    from bot.outbox import template_warning

    if (warning := template_warning(settings)) is not None:
        click.echo(f"⚠ {warning}")


def _warn_exposed_instance(settings: Settings) -> None:
    """An instance folder made before it was private, or loosened by hand, is named with the fix."""
    if (warning := exposure_warning(settings.instance_dir)) is not None:
        click.echo(warning)


def _warn_public_url(settings: Settings) -> None:
    """Links in pushes (/p/<token>) are built on HOUQIN_PUBLIC_URL: a loopback one reaches no phone."""
    if (warning := public_url_warning(settings)) is not None:
        click.echo(f"⚠ {warning}")


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply the Alembic migrations (to every school's namespace, unless --school names one)."""
    from bot.county import County
    from bot.db import upgrade

    services = _services(every_school=True)
    upgrade(services.db_engine, revision)
    if chosen_school() is None:
        for entry, school in County.of(services).each():
            if not entry.is_default:
                upgrade(school.db_engine, revision)
                click.echo(f"{entry.slug}: database at {revision}")
    click.echo(f"database at {revision}")


@main.command()
def demo() -> None:
    """Load the demo school into an empty database."""
    from bot.demo import is_empty, load_demo

    services = _services(upgrade=True, create=True)
    with services.factory() as session, session.begin():
        if not is_empty(session):
            raise CliError(DEMO_NOT_EMPTY)
        load_demo(session, services.now())
    click.echo("已载入演示学校数据。发送绑定码见：houqin codes")


# -- scheduler ----------------------------------------------------------------------------------
@main.command()
@click.option("--interval", default=20.0, show_default=True, help="seconds between ticks")
def scheduler(interval: float) -> None:
    """The scheduler process (run one or more: each occurrence is claimed once in the database)."""
    from scheduler.runner import CountyRunner, Runner

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # first: a stop while it starts is a clean one too
    services = _services(every_school=True)
    click.echo("scheduler started")
    _warn_public_url(services.settings)
    _warn_exposed_instance(services.settings)
    try:
        (Runner(services) if chosen_school() else CountyRunner(services)).run_forever(stop, interval)
    except KeyboardInterrupt:
        stop.set()
