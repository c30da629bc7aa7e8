"""The `houqin` command: serve, worker, db, imports, codes, outbox, fake-wechat, chat, demo."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select

from bot import cli_assets, cli_voice, click_zh
from bot.audit import cli_actor, record
from bot.cli_schools import SchoolGroup, chosen_school
from bot.cli_tasks import tasks as tasks_group
from bot.config import (
    ConfigError,
    NoInstance,
    Settings,
    public_url_warning,
    read_environment,
    settings_from_environment,
)
from bot.private import exposure_warning, write_private
from bot.services import Services
from bot.tables import TableError
from bot.worker import Wakeup, quota_line
from models import Delivery, Person, utcnow
from models.outbox import DELIVERY_STATES, PENDING

click_zh.install()  # click's own messages (missing argument, bad choice …) in Chinese too
RUNTIME = "runtime.json"
NO_SUCH_JOB = "没有任务 {job}（见 houqin jobs list）"
BAD_JOB_TIME = '时间请写成 "YYYY-MM-DD HH:MM"（学校时间）'
PORT_TAKEN = "无法在 {host}:{port} 上监听：{reason}（端口被其他程序占用？可用 --port 换一个）"
START_SERVE_FIRST = ("没有找到正在运行的 houqin serve：未配置公众号时，此命令使用它启动的本地模拟微信。"
                     "请先在另一个终端运行 houqin serve，再执行此命令")
DEMO_NOT_EMPTY = "数据库中已有人员：演示数据只能载入空数据库"
NO_DELIVERY = "没有编号为 {id} 的投递（见 houqin outbox）"
NOTHING_TO_RETRY = "该接收人没有绑定微信，无法重发"
WEBHOOK_NEEDS_ACCOUNT = "--webhook 需要 WECHAT_TOKEN 和 WECHAT_APPID（机器人服务的公众号）"
FINISH_NEEDS_WEBHOOK = "--finish 需要同时给出 --webhook URL"
CHAT_NEEDS_WHO = "请给出 --as 姓名 或 --openid OPENID"
MENU_REFUSED = "微信拒绝了菜单：{error}"
QR_REFUSED = "微信未能生成二维码：{error}"
NOTHING_FOR_QR = "还没有登记{what}：请先导入（houqin {kind}s import 文件）"
BAD_MONTH = "请写成 YYYY-MM，例如 2026-11"
BAD_WEEK = "请写成 YYYY-Www，例如 2026-W48"
NO_MENU = "{week} 还没有导入菜单：请先运行 houqin menu import 文件"
BAD_CONFIGURATION = "配置有误：{error}"
CHOOSE_SCHOOL = "这里有 {count} 所学校，请用 --school 代号（或环境变量 HOUQIN_SCHOOL）选一所：\n{schools}"
SLIPS_NEED_CLASS = "请用 --class 指定班级（例：--class 三年级2班），或用 --staff 打印教职工的绑定码"
EVERY_ONE = "全校"


class CliError(click.ClickException):
    """An operator's mistake, said in Chinese like every other answer: 「错误：…」 on stderr, exit 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"错误：{self.format_message()}", file=file, err=file is None)


class CliUsageError(click.UsageError):
    """A command written wrongly: its usage line, then 「错误：…」."""

    def show(self, file: Any = None) -> None:
        if self.ctx is not None:
            click.echo(self.ctx.get_usage(), file=file, err=file is None)
        click.echo(f"错误：{self.format_message()}", file=file, err=file is None)


class BadOption(CliUsageError, click.BadParameter):
    """An option's value that cannot be used: 「错误：--month 的值不对：请写成 YYYY-MM，例如 2026-11」."""

    def format_message(self) -> str:
        return f"{self.param_hint} 的值不对：{self.message}" if self.param_hint else self.message


def _settings(embedded: bool | None = None, create: bool = False) -> Settings:
    """Strict settings for production processes; the embedded instance file fills gaps when the
    environment names no WeChat account (a `houqin serve` set-up). Only `serve` and `demo` `create`
    an instance: any other command finding no school says where it looked and creates nothing."""
    if embedded is None:
        embedded = not read_environment().get("WECHAT_TOKEN")
    try:
        return settings_from_environment(embedded=embedded, create=create)
    except NoInstance as exc:
        raise CliError(str(exc)) from exc
    except ConfigError as exc:
        raise CliError(BAD_CONFIGURATION.format(error=exc)) from exc


def _clock() -> Any:
    """The clock a caller handed the command group (`main(obj={"clock": …})`: tests fix "now" this
    way, the same clock their app uses); otherwise the real one."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    return (obj or {}).get("clock") or utcnow


def _services(embedded: bool | None = None, upgrade: bool = False, create: bool = False,
              every_school: bool = False) -> Services:
    """The command's services: those of the school chosen with --school (or HOUQIN_SCHOOL); with one
    school it may be left out, with several and none chosen the command lists them and stops (a
    command that serves `every_school`, as the worker and scheduler do, gets the default school's and
    reaches the others through `County.of`). On the embedded default (no WECHAT_TOKEN, no
    WECHAT_API_BASE) the WeChat API is the fake the running `houqin serve` started, never the real one
    with the fake's token; it is looked up when a command first calls WeChat."""
    services = _default_services(embedded, upgrade, create)
    return _school_services(services, upgrade, every_school)


def _school_services(services: Services, upgrade: bool, every_school: bool) -> Services:
    from bot.county import County, CountyError

    slug = chosen_school()
    county = County.of(services)  # also overlays the school's own template ids (houqin templates set)
    if slug is None and every_school:
        return services
    if slug is None:
        schools = county.schools()
        if len(schools) > 1:
            ctx = click.get_current_context(silent=True)
            raise CliUsageError(CHOOSE_SCHOOL.format(count=len(schools), schools="\n".join(
                f"  {e.slug}  {e.name}" for e in schools)), ctx)
        return services
    try:
        chosen = county.services(slug)
    except CountyError as exc:
        raise CliError(str(exc)) from exc
    if upgrade and chosen is not services:
        from bot.db import upgrade as run_upgrade

        run_upgrade(chosen.db_engine)
    return chosen


def _county() -> Any:
    """The county of this installation (school add / list): the default school's services."""
    from bot.county import County

    return County.of(_default_services(None, upgrade=True, create=False))


def _default_services(embedded: bool | None, upgrade: bool, create: bool) -> Services:
    env = read_environment()
    if embedded is None:
        embedded = not env.get("WECHAT_TOKEN")
    services = Services.from_settings(_settings(embedded, create))
    services.clock = _clock()
    if embedded and not env.get("WECHAT_API_BASE"):
        services.api_base = partial(_served_fake_wechat, services.settings.instance_dir)
    if upgrade:
        from bot.db import upgrade as run_upgrade

        run_upgrade(services.db_engine)
    return services


def _runtime(instance_dir: Path) -> dict[str, Any]:
    """What the running `houqin serve` wrote about itself (its URLs and process id), or {}."""
    try:
        runtime = json.loads((instance_dir / RUNTIME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return runtime if isinstance(runtime, dict) else {}


def _served_fake_wechat(instance_dir: Path) -> str:
    """The base URL of the fake WeChat of the running `houqin serve`; without one that answers, the
    command stops before calling anything."""
    import requests

    runtime = _runtime(instance_dir)
    base, pid = str(runtime.get("fake_wechat_url") or ""), runtime.get("pid")
    try:
        if not base or not isinstance(pid, int) or pid <= 0:
            raise ValueError("no fake WeChat in the runtime file")
        os.kill(pid, 0)  # the serve that wrote it is gone: its port may belong to something else now
        requests.get(f"{base}/_fake/calls", params={"since": time.time() + 3600}, timeout=2).raise_for_status()
    except (ProcessLookupError, ValueError, requests.RequestException) as exc:
        raise CliError(START_SERVE_FIRST) from exc
    return base


@click.group(cls=SchoolGroup)
@click.option("-v", "--verbose", is_flag=True, help="log at debug level")
def main(verbose: bool) -> None:
    """Houqin 后勤助手 — a WeChat official-account bot for the school's logistics office."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from bot.wechat.gateway import redact_logs

    redact_logs()  # urllib3's debug lines name each URL, access_token and all
    if not verbose:  # routine chatter: migrations checked at every start, the scheduler's 20-s tick
        for name in ("alembic.runtime.migration", "apscheduler.executors.default", "apscheduler.scheduler"):
            logging.getLogger(name).setLevel(logging.WARNING)


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
    if fake:  # like WeChat, the embedded fake reports each template send back to this bot
        from bot.county import County, own_account_webhooks
        from bot.wechat.fake import Webhook
        from bot.wechat.simulator import http_transport

        settings = services.settings
        fake.webhook = Webhook(settings.wechat_token, settings.wechat_appid, http_transport(bot_url),
                               settings.wechat_aes_key)
        for hook in own_account_webhooks(County.of(services), http_transport(bot_url)):  # /wechat/<slug>
            fake.add_webhook(hook)
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
    services = _services(every_school=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
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


# -- people ---------------------------------------------------------------------------------------
def _run_import(kind: str, path: str) -> None:
    from handlers.identity import import_people, import_students

    importer = {"people": import_people, "students": import_students}[kind]
    services = _services(upgrade=True)
    try:
        with services.factory() as session, session.begin():
            result = importer(session, path, services.now())
            record(session, cli_actor(), f"{kind}_import", Path(path).name, str(result), via="cli", at=services.now())
    except TableError as exc:
        click.echo("导入失败，未导入任何数据：", err=True)
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(1)
    click.echo(f"导入完成：{result}")
    for warning in result.warnings:
        click.echo(f"⚠ {warning}")


@main.group()
def people() -> None:
    """People (teachers, staff, parents ...)."""


@people.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
def people_import(file: str) -> None:
    """Import people from CSV/XLSX (姓名 角色 手机 班级 线路 负责类别)."""
    _run_import("people", file)


@main.group()
def students() -> None:
    """Students and their parent codes."""


@students.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
def students_import(file: str) -> None:
    """Import students from CSV/XLSX (姓名 班级 线路 站点)."""
    _run_import("students", file)


@main.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="a JSON array: name, kind, code, roles, expires_at")
@click.pass_context
def codes(ctx: click.Context, as_json: bool) -> None:
    """Outstanding bind codes; `codes reissue NAME` gives someone a new one."""
    if ctx.invoked_subcommand is not None:
        return
    from handlers.identity import outstanding_codes
    from models.identity import ROLE_NAMES

    services = _services(upgrade=True)
    with services.factory() as session:
        rows = outstanding_codes(session, services.now())
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("姓名", "类型", "绑定码", "角色", "有效期至")
    for r in rows:
        table.add_row(r["name"], "人员" if r["kind"] == "person" else "学生家长", r["code"],
                      "、".join(ROLE_NAMES.get(role, role) for role in r["roles"]), r["expires_at"][:16].replace("T", " "))
    Console().print(table)


@codes.command("reissue")
@click.argument("name")
def codes_reissue(name: str) -> None:
    """A new bind code for a person (or a student's parents) NAME; their old code stops working."""
    from handlers.identity import NOBODY_NAMED, code_holders, describe_holder, reissue_code

    services = _services(upgrade=True)
    with services.factory() as session, session.begin():
        holders = code_holders(session, name)
        if not holders:
            raise CliError(NOBODY_NAMED.format(name=name))
        holder = holders[0]
        if len(holders) > 1:
            click.echo(f"有{len(holders)}个「{name}」：")
            for number, each in enumerate(holders, start=1):
                click.echo(f"  {number}. {describe_holder(each)}")
            holder = holders[click.prompt("请输入序号", type=click.IntRange(1, len(holders))) - 1]
        click.echo(reissue_code(session, services.now(), holder, services.settings.tz))
        record(session, cli_actor(), "code_reissue", describe_holder(holder), via="cli", at=services.now())


@codes.command("slips")
@click.option("--class", "class_name", default="", help="the class, written any way: 三(2)班, 三年级2班, 3-2")
@click.option("--staff", is_flag=True, help="slips for the class's staff (every unbound staff member without --class)")
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False), help="the PDF to write")
def codes_slips(class_name: str, staff: bool, out: str) -> None:
    """Printable bind-code slips (PDF, 8 to a page): one per student for the parents, or one per staff member."""
    from bot.fonts import FontMissing
    from bot.slips import NO_STAFF, NO_STUDENTS, class_slips, heading, render_slips
    from bot.wechat.gateway import ApiError

    if not class_name and not staff:
        raise CliUsageError(SLIPS_NEED_CLASS)
    services = _services(upgrade=True)
    try:
        slips, issued = class_slips(services.factory, services.api, services.now(), services.settings.tz,
                                    class_name, staff)
    except ApiError as exc:
        raise CliError(QR_REFUSED.format(error=exc)) from exc
    if not slips:
        raise CliError((NO_STAFF if staff else NO_STUDENTS).format(class_name=class_name or EVERY_ONE))
    title = heading(class_name, staff)
    try:
        pages = render_slips(slips, out, title)
    except FontMissing as exc:
        raise CliError(str(exc)) from exc
    click.echo(f"{title} {len(slips)} 张（新发绑定码 {issued} 个），{pages} 页：{out}")


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


# -- outbox ---------------------------------------------------------------------------------------
@main.group(invoke_without_command=True)
@click.option("--status", type=click.Choice(DELIVERY_STATES), help="only deliveries in this state")
@click.option("--limit", default=50, show_default=True)
@click.pass_context
def outbox(ctx: click.Context, status: str | None, limit: int) -> None:
    """List pushes and their deliveries (newest first); ✓: WeChat confirmed the template arrived."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.console import Console
    from rich.table import Table

    services = _services(upgrade=True)
    query = select(Delivery).order_by(Delivery.id.desc()).limit(limit)
    if status:
        query = query.where(Delivery.status == status)
    table = Table("ID", "推送", "类型", "接收人", "状态", "渠道", "尝试", "最后错误", "内容")
    with services.factory() as session:
        names = dict(session.execute(select(Person.id, Person.name)).all())
        for d in session.scalars(query).unique():
            table.add_row(str(d.id), str(d.push_id), d.push.kind, names.get(d.person_id or 0, d.openid),
                          d.status + (" ✓" if d.confirmed_at else ""),
                          d.channel, str(d.attempts), (d.last_error or "")[:60], d.push.text.replace("\n", " ")[:40])
        quota = quota_line(session, services.settings, services.now())
    Console(width=200).print(table)
    click.echo(quota)


@outbox.command("retry")
@click.argument("delivery_id", type=int)
def outbox_retry(delivery_id: int) -> None:
    """Queue a delivery again (after a failure, or to re-send)."""
    services = _services(upgrade=True)
    with services.factory() as session, session.begin():
        delivery = session.get(Delivery, delivery_id)
        if delivery is None:
            raise CliError(NO_DELIVERY.format(id=delivery_id))
        if delivery.openid.startswith("person:"):
            raise CliError(NOTHING_TO_RETRY)
        delivery.status, delivery.attempts, delivery.next_attempt_at = PENDING, 0, services.now()
        delivery.last_error, delivery.claim, delivery.lease_until = None, None, None
    click.echo(f"投递 {delivery_id} 已重新排队")


# -- local WeChat -------------------------------------------------------------------------------
@main.command("fake-wechat")
@click.option("--port", default=8900, show_default=True, type=int)
@click.option("--latency", default=0.0, show_default=True, help="seconds added to every call")
@click.option("--error-rate", default=0.0, show_default=True, help="share of calls answering -1")
@click.option("--refuse-ip", default="", help="answer every call 40164 (IP not whitelisted), naming this IP")
@click.option("--webhook", default="", help="the bot's /wechat URL: TEMPLATESENDJOBFINISH is posted there, signed "
              "with WECHAT_TOKEN/WECHAT_APPID (and WECHAT_AES_KEY) like WeChat's own events")
@click.option("--finish", default="", help='report every template send with this status ("success", '
              '"failed:user block", "failed: system failed"); without it, POST /_fake/finish reports one')
@click.option("--templates", "library", type=click.Path(exists=True, dir_okay=False),
              help="the account's template library: JSON as get_all_private_template answers it")
@click.option("--template-quota", default=0, show_default=True,
              help="template sends per account per day before answering 45009 (0: no limit)")
def fake_wechat(port: int, latency: float, error_rate: float, refuse_ip: str, webhook: str, finish: str,
                library: str | None, template_quota: int) -> None:
    """A local fake of the WeChat API (loopback only), recording every call."""
    from bot.wechat.fake import Webhook, load_library
    from bot.wechat.fake import serve as serve_fake
    from bot.wechat.simulator import http_transport

    hook = None
    if webhook:
        env = read_environment()
        if not env.get("WECHAT_TOKEN") or not env.get("WECHAT_APPID"):
            raise CliUsageError(WEBHOOK_NEEDS_ACCOUNT)
        base = webhook.split("/wechat")[0]
        hook = Webhook(env["WECHAT_TOKEN"], env["WECHAT_APPID"], http_transport(base), env.get("WECHAT_AES_KEY", ""))
    elif finish:
        raise CliUsageError(FINISH_NEEDS_WEBHOOK)
    serve_fake(port, latency=latency, error_rate=error_rate, refused_ip=refuse_ip, webhook=hook, finish=finish,
               library=load_library(library) if library else None, template_quota=template_quota)


@main.command()
@click.option("--as", "name", help="chat as this person (demo: 张丽)")
@click.option("--openid", help="chat as this WeChat openid")
@click.option("--url", help="the bot's base URL (default: the running `houqin serve`)")
@click.option("--mode", type=click.Choice(["safe", "compat", "plain"]), default="safe", show_default=True)
def chat(name: str | None, openid: str | None, url: str | None, mode: str) -> None:
    """Talk to the running bot as a WeChat user would; pushes to you are shown as they arrive."""
    from bot.wechat.chat import ServeLink, run_chat

    if not name and not openid:
        raise CliUsageError(CHAT_NEEDS_WHO)
    services = _services()
    link = ServeLink(partial(_runtime, services.settings.instance_dir), url or "")
    openid = openid or "o" + uuid.uuid5(uuid.NAMESPACE_DNS, f"houqin-chat:{name}").hex[:27]
    run_chat(services, link, openid, name, mode)


# -- scheduler ----------------------------------------------------------------------------------
@main.command()
@click.option("--interval", default=20.0, show_default=True, help="seconds between ticks")
def scheduler(interval: float) -> None:
    """The scheduler process (run one or more: each occurrence is claimed once in the database)."""
    from scheduler.runner import CountyRunner, Runner

    services = _services(every_school=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    click.echo("scheduler started")
    _warn_public_url(services.settings)
    _warn_exposed_instance(services.settings)
    try:
        (Runner(services) if chosen_school() else CountyRunner(services)).run_forever(stop, interval)
    except KeyboardInterrupt:
        stop.set()


@main.group()
def jobs() -> None:
    """Scheduled jobs."""


@jobs.command("list")
def jobs_list() -> None:
    """Each job's id, schedule, next run (school time), last run and result."""
    from rich.console import Console
    from rich.table import Table

    from scheduler.runner import Runner

    services = _services(upgrade=True)
    tz = services.settings.tz
    table = Table("ID", "计划", "说明", "下次运行", "上次运行", "状态", "结果")
    for row in Runner(services).status():
        last = row.last_run
        table.add_row(row.job.id, row.schedule + (" 上课日" if row.job.school_days_only else ""), row.job.description,
                      f"{row.next_run.astimezone(tz):%Y-%m-%d %H:%M}" if row.next_run else "-",
                      f"{last.as_of.astimezone(tz):%Y-%m-%d %H:%M}" if last else "-",
                      last.status if last else "-", ((last.result or last.error or "") if last else "")[:50])
    Console(width=220).print(table)


@jobs.command("run")
@click.argument("job_id")
@click.option("--at", "at", help='run as if at this school time, "YYYY-MM-DD HH:MM"')
@click.option("--dry-run", is_flag=True, help="only show what it would send, to whom; send and change nothing")
@click.option("--force", is_flag=True, help="run even if this occurrence already ran (sends again)")
def jobs_run(job_id: str, at: str | None, dry_run: bool, force: bool) -> None:
    """Run one job's occurrence by hand (the scheduler will not repeat it); check one with --dry-run."""
    from datetime import datetime

    from scheduler.runner import RAN_OCCURRENCE, OccurrenceTaken, Runner

    services = _services(upgrade=True)
    runner = Runner(services)
    if job_id not in runner.jobs:
        raise CliError(NO_SUCH_JOB.format(job=job_id))
    as_of = None
    if at:
        try:
            as_of = datetime.strptime(at, "%Y-%m-%d %H:%M").replace(tzinfo=services.settings.tz)
        except ValueError as exc:
            raise BadOption(BAD_JOB_TIME, param_hint="--at") from exc
    if dry_run:
        click.echo("\n".join(runner.preview_lines(runner.preview(job_id, as_of))))
        return
    try:
        run = runner.run_now(job_id, as_of, force=force)
    except OccurrenceTaken as taken:
        click.echo(str(taken), err=True)
        sys.exit(1)
    click.echo(f"{job_id}: {run.status} — {run.result or ''}")
    if run.occurrence is not None and run.status == "done":
        click.echo(RAN_OCCURRENCE.format(occurrence=runner.local(run.occurrence), attempt=run.attempt))
    if run.error:
        click.echo(run.error, err=True)
        sys.exit(1)


# -- school data ----------------------------------------------------------------------------------
def _import_with(label: str, importer: Any, path: str, dated: bool = False) -> None:
    """Run an import in one transaction; a `dated` importer reads dates without a year (12月14日) as
    the coming one from the school's today."""
    services = _services(upgrade=True)
    extra = {"today": services.now().astimezone(services.settings.tz).date()} if dated else {}
    try:
        with services.factory() as session, session.begin():
            count = importer(session, path, **extra)
    except TableError as exc:
        click.echo("导入失败，未导入任何数据：", err=True)
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(1)
    click.echo(f"{label}导入完成：{count} 条")


@main.group()
def calendar() -> None:
    """The school calendar: terms, holidays, make-up days (调休)."""


@calendar.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
def calendar_import(file: str) -> None:
    """Import calendar days from CSV/XLSX (日期 类型 备注; 类型: 放假 调休 开学 学期结束)."""
    from bot.school import import_calendar

    _import_with("校历", import_calendar, file, dated=True)


@main.group()
def drills() -> None:
    """Emergency drills (应急演练)."""


@drills.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
def drills_import(file: str) -> None:
    """Import drills from CSV/XLSX (日期 时间 类型 范围)."""
    from handlers.safety import import_drills

    _import_with("演练计划", import_drills, file, dated=True)


@main.group()
def safety() -> None:
    """The safety-education calendar (安全教育行事历)."""


@safety.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
def safety_import(file: str) -> None:
    """Import monthly topics from CSV/XLSX (月份 教育专题 安全活动)."""
    from handlers.safety import import_topics

    _import_with("安全教育专题", import_topics, file)


@main.command(context_settings={"ignore_unknown_options": True})  # a value may be negative: -5
@click.argument("key", required=False)
@click.argument("words", nargs=-1)
def setting(key: str | None, words: tuple[str, ...]) -> None:
    """Show the school settings, or set one: houqin setting fire_check_day 5 (houqin setting bus_manager
    张丽 三(2)班: a value may have spaces)."""
    value = " ".join(words) if words else None
    from bot.school import DEFAULT_SETTINGS, SETTING_HELP, UNKNOWN_SETTING, get_setting, set_setting

    services = _services(upgrade=True)
    with services.factory() as session, session.begin():
        if key is None:
            for k in DEFAULT_SETTINGS:
                click.echo(f"{k} = {get_setting(session, k)!r}    # {SETTING_HELP[k]}")
            return
        if key not in DEFAULT_SETTINGS:
            raise CliError(UNKNOWN_SETTING.format(key=key, known="、".join(DEFAULT_SETTINGS)))
        if value is not None:
            try:
                set_setting(session, key, value)
            except ValueError as exc:
                raise CliError(str(exc)) from exc
            record(session, cli_actor(), "setting_set", key, value, via="cli", at=services.now())
        click.echo(f"{key} = {get_setting(session, key)!r}")


@main.group()
def templates() -> None:
    """Template messages: each push kind's fields, and the HOUQIN_TEMPLATES mapping checked."""


@templates.command("list")
def templates_list() -> None:
    """Every push kind with its named fields and an example, for writing HOUQIN_TEMPLATES."""
    from bot.push_kinds import PUSH_KINDS, example_fields

    for kind, declared in PUSH_KINDS.items():
        click.echo(f"{kind}  {declared.name}")
        click.echo(f"  fields: {', '.join(declared.all_fields)}")
        example = example_fields(kind)
        click.echo("  example: " + json.dumps({k: example[k] for k in declared.all_fields if k != "text"},
                                              ensure_ascii=False))


@templates.command("check")
@click.option("--sample", default=50, show_default=True, help="recent pushes per kind to measure lengths on")
def templates_check(sample: int) -> None:
    """Check HOUQIN_TEMPLATES against the account's templates; exits 1 on any problem."""
    from bot.wechat.gateway import ApiError
    from bot.wechat.templates import check_account

    services = _services(upgrade=True)
    mapping = services.settings.templates
    if not mapping:
        raise CliError("HOUQIN_TEMPLATES 为空：没有可检查的模板（见 houqin templates list）")
    try:
        problems = check_account(services.api, services.factory, mapping, sample)
    except ApiError as exc:
        raise CliError(f"无法获取公众号的模板列表：{exc}") from exc
    for problem in problems:
        click.echo(f"✗ {problem}")
    if problems:
        raise SystemExit(1)
    click.echo(f"✓ {len(mapping)} 类推送的模板均已核对")


@main.command("wechat-menu")
@click.option("--upload", is_flag=True, help="create the tags and menus on the official account, tag every bound follower")
def wechat_menu(upload: bool) -> None:
    """Print the official account's menus (the default one, one per role combination), or upload them."""
    from bot.wechat.gateway import ApiError
    from bot.wechat.menu import default_plan, menu_worker
    from bot.wechat.menu import upload as upload_menus

    plan = default_plan()
    if not upload:
        click.echo(json.dumps({"default": plan.default, "conditional": [
            {"tag": tag, "roles": plan.roles[tag], **menu} for tag, menu in plan.menus.items()]},
            ensure_ascii=False, indent=2))
        return
    services = _services(upgrade=True)
    try:
        done = upload_menus(services.api, services.factory, plan, services.now())
    except ApiError as exc:
        raise CliError(MENU_REFUSED.format(error=exc)) from exc
    click.echo(f"{done}。")
    worker = menu_worker(services)
    worker.drain()
    click.echo(worker.summary())


# -- repairs: rooms, assets, categories, QR sheets, the ledger --------------------------------------
@main.group()
def rooms() -> None:
    """Rooms: where repairs happen, with their QR codes."""


@rooms.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
def rooms_import(file: str) -> None:
    """Import rooms from CSV/XLSX (楼栋 楼层 房间 别名 负责人)."""
    from handlers.repair import import_rooms

    _import_with("房间", import_rooms, file)


@main.group()
def assets() -> None:
    """Assets (equipment) by asset code."""


@assets.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
def assets_import(file: str) -> None:
    """Import assets from CSV/XLSX (编号 名称 类别 房间; optional 保管人 购置日期 价格 状态 照片 数量 可借 需审批
    类型 — 类型 钥匙 registers a key, 数量 its copies)."""
    from handlers.assets.register import import_assets

    _import_with("资产", partial(import_assets, now=_clock()()), file)


@main.group("repair-categories", invoke_without_command=True)
@click.pass_context
def repair_categories(ctx: click.Context) -> None:
    """The repair categories and their keywords (the first matching category wins)."""
    if ctx.invoked_subcommand is not None:
        return
    from handlers.repair import category_map

    services = _services(upgrade=True)
    with services.factory() as session:
        for name, words in category_map(session):
            click.echo(f"{name}: {'、'.join(words) or '（其余）'}")


@repair_categories.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
def repair_categories_import(file: str) -> None:
    """Replace the keyword map from CSV/XLSX (类别 关键词; keywords separated by ; or 、)."""
    from handlers.repair import import_categories

    _import_with("报修类别", import_categories, file)


@main.group()
def qr() -> None:
    """Printable A4 sheets of permanent parametric QR codes."""


def _qr_sheet(kind: str, out: str) -> None:
    from bot.county import scene_for
    from bot.fonts import FontMissing
    from bot.qrsheet import asset_card, ensure_codes, post_card, render_sheet, room_card
    from bot.wechat.gateway import ApiError
    from models import Asset, DutyPost, Room

    model, card, heading, hint, what = {
        "room": (Room, room_card, "扫码报修 · 房间", "微信扫一扫 · 报修", "房间"),
        "asset": (Asset, asset_card, "扫码报修 · 设备", "微信扫一扫 · 报修", "资产"),
        "post": (DutyPost, post_card, "值日签到 · 岗位", "微信扫一扫 · 签到", "值日岗位"),
    }[kind]
    services = _services(upgrade=True)
    try:
        cards, created = ensure_codes(services.factory, services.api, model, kind, card,  # type: ignore[arg-type,type-var]
                                      prefix=scene_for(services, ""))
    except ApiError as exc:
        raise CliError(QR_REFUSED.format(error=exc)) from exc
    if not cards:
        raise CliError(NOTHING_FOR_QR.format(what=what, kind=kind))
    try:
        pages = render_sheet(cards, out, heading, hint)
    except FontMissing as exc:
        raise CliError(str(exc)) from exc
    click.echo(f"{len(cards)} 个二维码（新建 {created} 个），{pages} 页：{out}")


@qr.command("rooms")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="the PDF to write")
def qr_rooms(out: str) -> None:
    """A sheet of every room's code (scanning it starts a repair for that room)."""
    _qr_sheet("room", out)


@qr.command("assets")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="the PDF to write")
def qr_assets(out: str) -> None:
    """A sheet of every asset's code (scanning it starts a repair for that asset)."""
    _qr_sheet("asset", out)


@main.group()
def export() -> None:
    """Monthly ledgers (台账) as XLSX."""


def _export(key: str, month: str, out: str) -> Any:
    """Write the ledger `key` for --month; returns it (its sheets' rows for the summary line)."""
    from bot.export import Period
    from bot.ledgers import build

    period = Period.month(_month(month))
    services = _services(upgrade=True)
    with services.read_factory() as session:
        ledger = build(key, session, period, services.settings.tz, services.now().astimezone(services.settings.tz).date())
    ledger.save(out)
    return ledger


@export.command("repairs")
@click.option("--month", required=True, help="YYYY-MM")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="the XLSX to write")
def export_repairs(month: str, out: str) -> None:
    """报修台账 (tickets filed in the month), 巡查隐患台账, and the per-staff summary."""
    tickets, hazards, _ = _export("repairs", month, out).sheets
    click.echo(f"{month} 报修 {len(tickets.rows)} 张（隐患 {len(hazards.rows)} 张）：{out}")


@export.command("bus")
@click.option("--month", required=True, help="YYYY-MM")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="the XLSX to write")
def export_bus(month: str, out: str) -> None:
    """校车台账: a row per trip (expected, boarded, alighted, alerts, acknowledgements) and the leave records."""
    trips, leaves = _export("bus", month, out).sheets
    click.echo(f"{month} 校车 {len(trips.rows)} 趟，请假 {len(leaves.rows)} 条：{out}")


for _command in cli_assets.COMMANDS:  # stocktake, supplies, keys (bot/cli_assets.py)
    main.add_command(_command)
for _command in cli_assets.EXPORTS:  # export assets|loans|keys|stocktake|supplies
    export.add_command(_command)


@main.group()
def routes() -> None:
    """School-bus routes (校车线路)."""


@routes.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
def routes_import(file: str) -> None:
    """Import routes from CSV/XLSX, one row per stop in order (线路 别名 车牌 司机 司机电话 跟车老师 站点 上学时间 放学时间)."""
    from handlers.bus import import_routes

    _import_with("校车线路", import_routes, file)


@qr.command("posts")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="the PDF to write")
def qr_posts(out: str) -> None:
    """A sheet of every duty post's code (scanning it checks in at that post)."""
    _qr_sheet("post", out)


@main.group()
def posts() -> None:
    """Duty posts (值日岗位)."""


@posts.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
def posts_import(file: str) -> None:
    """Import posts from CSV/XLSX (岗位 纬度 经度 半径; without coordinates the school's geofence applies)."""
    from handlers.duty import import_posts

    _import_with("值日岗位", import_posts, file)


@main.group()
def duty() -> None:
    """The duty roster (值日表)."""


@duty.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
def duty_import(file: str) -> None:
    """Import the roster from CSV/XLSX (星期 or 日期, 时段, 岗位, 教师): 星期 rows are the weekly pattern,
    日期 rows dated overrides."""
    from handlers.duty import import_roster

    _import_with("值日表", import_roster, file, dated=True)


@export.command("duty")
@click.option("--month", required=True, help="YYYY-MM")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="the XLSX to write")
def export_duty(month: str, out: str) -> None:
    """值日台账: a row per post and slot (rostered, who checked in, how, when, status) and a per-teacher summary."""
    rows, _ = _export("duty", month, out).sheets
    click.echo(f"{month} 值日 {len(rows.rows)} 岗次：{out}")


def _month(month: str) -> date:
    """--month YYYY-MM as the month's first day."""
    try:
        return datetime.strptime(month, "%Y-%m").date()
    except ValueError as exc:
        raise BadOption(BAD_MONTH, param_hint="--month") from exc


# -- canteen: menus, the canteen report ---------------------------------------------------------------
@main.group("menu")
def menu_group() -> None:
    """Weekly canteen menus (菜单): import drafts, publish a week."""


@menu_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
def menu_import(file: str) -> None:
    """Import menus from CSV/XLSX (日期 餐次 菜品 过敏原 [照片]); new weeks are drafts until published."""
    from functools import partial

    from handlers.canteen import import_menu

    _import_with("菜单", partial(import_menu, storage=_settings().storage_dir), file, dated=True)


@menu_group.command("publish")
@click.argument("week")
def menu_publish(week: str) -> None:
    """Publish a week's menu, e.g. 2026-W48 (after its Thursday 16:00 push time it is pushed at once)."""
    from bot.outbox import Outbox
    from handlers.canteen import find_week, parse_week, publish_week

    parsed = parse_week(week)
    if parsed is None:
        raise BadOption(BAD_WEEK, param_hint="WEEK")
    services = _services(upgrade=True)
    now = services.now()
    with services.factory() as session, session.begin():
        found = find_week(session, *parsed)
        if found is None or not found.items:
            raise CliError(NO_MENU.format(week=week))
        click.echo(publish_week(session, found, None, now, services.settings, Outbox(session, services.settings, now)))
        record(session, cli_actor(), "menu_publish", week, via="cli", at=now)


@export.command("canteen")
@click.option("--month", required=True, help="YYYY-MM")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="the XLSX to write")
def export_canteen(month: str, out: str) -> None:
    """食堂台账: every rating and comment, averages by day and by group (with a chart), complaint words,
    survey answers, and the 陪餐 records."""
    from handlers.canteen import accompanied_count

    ledger = _export("canteen", month, out)
    feedback, _, _, _, surveys, _ = ledger.sheets
    services = _services()
    with services.read_factory() as session:
        meals = accompanied_count(session, _month(month))
    click.echo(f"{month} 食堂评价 {len(feedback.rows)} 条，调查 {len(surveys.rows)} 份，陪餐 {meals} 次：{out}")


@main.command("console-password")
@click.argument("words", nargs=-1, required=True)
@click.option("--password", prompt="新密码", hide_input=True, confirmation_prompt="再输入一次",
              help="the password (asked for when not given)")
def console_password(words: tuple[str, ...], password: str) -> None:
    """Let an admin sign in to the web console (/admin) with a password. NAME is a name, or among
    namesakes a name and a class or the phone's last four digits: 张丽 三(2)班."""
    name = " ".join(words)
    from bot.console import set_password
    from bot.people import PersonNotFound, resolve_person

    services = _services(upgrade=True)
    with services.factory() as session, session.begin():
        try:
            person = resolve_person(session, name)
            set_password(session, person, password)
            record(session, cli_actor(), "console_password", person.name, via="cli", at=services.now())
        except PersonNotFound as exc:
            raise CliError(exc.message) from exc
        except ValueError as exc:
            raise CliError(str(exc)) from exc
    click.echo(f"{name} 可以登录控制台了：/admin")


def _register_school_commands() -> None:
    from bot.cli_county import county
    from bot.cli_schools import school, templates_set

    main.add_command(school)
    main.add_command(county)
    templates.add_command(templates_set)


_register_school_commands()
cli_voice.register(main, export)  # houqin notices | survey, export notices | suggestions (issue 19)
main.add_command(tasks_group)  # bot/cli_tasks.py: the 行事历


if __name__ == "__main__":  # pragma: no cover
    main()
