"""The `houqin` command's house: the group itself (`main`), the one way a command gets its Services
(`_services()`), the errors every command raises, and the helpers the areas share: imports in one
transaction (`_import_with`), `--month` (`_month`), the `export` and `qr` groups. Each area's commands
are in their own module beside this one; bot/cli/__init__.py lists them."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

import click

from bot import click_zh
from bot.cli.schools import SchoolGroup, chosen_school
from bot.config import (
    ConfigError,
    NoInstance,
    Settings,
    read_environment,
    settings_from_environment,
)
from bot.services import Services
from bot.tables import TableError
from models import utcnow

click_zh.install()  # click's own messages (missing argument, bad choice …) in Chinese too

RUNTIME = "runtime.json"
START_SERVE_FIRST = ("没有找到正在运行的 houqin serve：未配置公众号时，此命令使用它启动的本地模拟微信。"
                     "请先在另一个终端运行 houqin serve，再执行此命令")
QR_REFUSED = "微信未能生成二维码：{error}"
NOTHING_FOR_QR = "还没有登记{what}：请先导入（houqin {kind}s import 文件）"
BAD_MONTH = "请写成 YYYY-MM，例如 2026-11"
IMPORT_FAILED = "导入失败，未导入任何数据："
BAD_CONFIGURATION = "配置有误：{error}"
CHOOSE_SCHOOL = "这里有 {count} 所学校，请用 --school 代号（或环境变量 HOUQIN_SCHOOL）选一所：\n{schools}"


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


# -- school data ----------------------------------------------------------------------------------
def refuse_import(exc: TableError) -> NoReturn:
    """An import that found problems imported nothing: say so and every problem (row-numbered), exit 1."""
    click.echo(IMPORT_FAILED, err=True)
    for problem in exc.problems:
        click.echo(f"  {problem}", err=True)
    sys.exit(1)


def _import_with(label: str, importer: Any, path: str, dated: bool = False) -> None:
    """Run an import in one transaction; a `dated` importer reads dates without a year (12月14日) as
    the coming one from the school's today."""
    services = _services(upgrade=True)
    extra = {"today": services.now().astimezone(services.settings.tz).date()} if dated else {}
    try:
        with services.factory() as session, session.begin():
            count = importer(session, path, **extra)
    except TableError as exc:
        refuse_import(exc)
    click.echo(f"{label}导入完成：{count} 条")


def _month(month: str) -> date:
    """--month YYYY-MM as the month's first day."""
    try:
        return datetime.strptime(month, "%Y-%m").date()
    except ValueError as exc:
        raise BadOption(BAD_MONTH, param_hint="--month") from exc


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


@main.group()
def export() -> None:
    """Ledgers (台账) as XLSX, for a month (--month YYYY-MM) or a term (--term YYYY-MM-DD)."""


NO_PERIOD = "请给出 --month YYYY-MM 或 --term YYYY-MM-DD（学期中的任意一天）"
BOTH_PERIODS = "--month 和 --term 只能选一个"
BAD_TERM_DAY = "请写成 YYYY-MM-DD，例如 2026-11-24"
NO_TERM = "校历中没有包含 {day} 的学期（先用 houqin calendar import 导入开学和学期结束日）"
WRITTEN = "{what} {title}：{rows} 行，{out}"


def ledger_period(month: str | None, term: str | None, session: Any) -> Any:
    """--month YYYY-MM, or --term <any day of a term in the school calendar> (named like the console's terms)."""
    from datetime import timedelta

    from bot.export import Period
    from bot.ledgers import term_label
    from bot.school import Calendar

    if month and term:
        raise CliUsageError(BOTH_PERIODS)
    if month:
        return Period.month(_month(month))
    if term:
        try:
            day = datetime.strptime(term, "%Y-%m-%d").date()
        except ValueError as exc:
            raise BadOption(BAD_TERM_DAY, param_hint="--term") from exc
        found = next(((s, e) for s, e in Calendar(session).terms if s <= day <= e and e != date.max), None)
        if found is None:
            raise CliError(NO_TERM.format(day=term))
        start, end = found
        return Period(start, end + timedelta(days=1), term_label(start))
    raise CliUsageError(NO_PERIOD)


def ledger_options(command: Any) -> Any:
    """--month YYYY-MM | --term YYYY-MM-DD, and --out: what every `houqin export <ledger>` takes."""
    command = click.option("--out", required=True, type=click.Path(dir_okay=False), help="the XLSX to write")(command)
    command = click.option("--term", help="YYYY-MM-DD: any day of the term (from the school calendar)")(command)
    return click.option("--month", help="YYYY-MM")(command)


def _export(key: str, month: str | None, term: str | None, out: str) -> Any:
    """Write the ledger `key` of bot/ledgers.py for the month or the term (the console's 台账 page offers
    the same workbook); returns it, its `period` set (its sheets' rows and its label for the summary line)."""
    from bot.ledgers import build

    services = _services(upgrade=True)
    tz = services.settings.tz
    with services.read_factory() as session:
        period = ledger_period(month, term, session)
        ledger = build(key, session, period, tz, services.now().astimezone(tz).date())
    ledger.save(out)
    return ledger


def ledger_command(key: str, doc: str) -> click.Command:
    """`houqin export <key>` for a ledger of bot/ledgers.py whose summary line needs nothing of its own."""
    @click.command(key, help=doc)
    @ledger_options
    def command(month: str | None, term: str | None, out: str) -> None:
        ledger = _export(key, month, term, out)
        click.echo(WRITTEN.format(what=ledger.name, title=ledger.period.label, rows=len(ledger.sheets[0].rows),
                                  out=out))

    return command
