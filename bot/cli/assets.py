"""`houqin` commands of the register of things (issue 18): stocktakes, supplies, keys and the ledgers
(`houqin export assets|loans|keys|stocktake|supplies --month YYYY-MM | --term YYYY-MM-DD`). bot/cli/__init__.py
adds them to its groups; the helpers they share (`_services`, `_import_with`, errors) are bot/cli/base.py's."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import click

NO_PERIOD = "请给出 --month YYYY-MM 或 --term YYYY-MM-DD（学期中的任意一天）"
BAD_TERM_DAY = "请写成 YYYY-MM-DD，例如 2026-11-24"
NO_TERM = "校历中没有包含 {day} 的学期（先用 houqin calendar import 导入开学和学期结束日）"
NO_OPEN_STOCKTAKE = "当前没有进行中的盘点"
WRITTEN = "{what} {title}：{rows} 行，{out}"


@click.group("stocktake")
def stocktake_group() -> None:
    """Stocktakes (盘点): start one for the school, a building or a room; end it for the result."""


@stocktake_group.command("start")
@click.argument("scope", nargs=-1)
def stocktake_start(scope: tuple[str, ...]) -> None:
    """Start a stocktake of SCOPE (全校 when not given, a building, or a room)."""
    from bot.cli.base import CliError, _services
    from handlers.assets.stocktake import STARTED, begin_stocktake, expected

    services = _services(upgrade=True)
    with services.factory() as session, session.begin():
        take = begin_stocktake(session, " ".join(scope), None, services.now())
        if isinstance(take, str):
            raise CliError(take)
        click.echo(STARTED.format(scope=take.scope_name, count=len(expected(session, take))))


@stocktake_group.command("end")
def stocktake_end() -> None:
    """End the open stocktake: found, missing, moved and unregistered."""
    from bot.cli.base import CliError, _services
    from handlers.assets.stocktake import finish_stocktake, open_stocktake

    services = _services(upgrade=True)
    with services.factory() as session, session.begin():
        take = open_stocktake(session)
        if take is None:
            raise CliError(NO_OPEN_STOCKTAKE)
        click.echo(finish_stocktake(session, take, services.now()))


@click.group("supplies")
def supplies_group() -> None:
    """Consumables (日常用品): the items, their stock and reorder levels."""


@supplies_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
def supplies_import(file: str) -> None:
    """Import items from CSV/XLSX (物品 单位 库存 补货线 需审批 负责人)."""
    from bot.cli.base import _import_with
    from handlers.assets.supplies import import_supplies

    _import_with("日常用品", import_supplies, file)


@click.command("keys")
def keys_command() -> None:
    """Every key not returned, who holds it and since when (the term-end check)."""
    from bot.cli.base import _services
    from handlers.assets.keys import unreturned_text

    services = _services(upgrade=True)
    with services.read_factory() as session:
        click.echo(unreturned_text(session, services.settings.tz, services.now().astimezone(services.settings.tz)
                                   .date()))


def _period(month: str | None, term: str | None, session: Any) -> Any:
    """--month YYYY-MM, or --term <any day of a term in the school calendar> (named like the console's terms)."""
    from bot.cli.base import BAD_MONTH, BadOption, CliError, CliUsageError
    from bot.export import Period
    from bot.ledgers import term_label
    from bot.school import Calendar

    if month:
        try:
            first = datetime.strptime(month, "%Y-%m").date()
        except ValueError as exc:
            raise BadOption(BAD_MONTH, param_hint="--month") from exc
        return Period.month(first)
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


def _export(key: str, month: str | None, term: str | None, out: str) -> None:
    """The ledger `key` of bot/ledgers.py (the console's 台账 page offers the same workbook)."""
    from bot.cli.base import _services
    from bot.ledgers import build

    services = _services(upgrade=True)
    tz = services.settings.tz
    today = services.now().astimezone(tz).date()
    with services.read_factory() as session:
        period = _period(month, term, session)
        ledger = build(key, session, period, tz, today)
    ledger.save(out)
    click.echo(WRITTEN.format(what=ledger.name, title=period.label, rows=len(ledger.sheets[0].rows), out=out))


def _ledger_command(key: str, doc: str) -> click.Command:
    @click.command(key, help=doc)
    @click.option("--month", help="YYYY-MM")
    @click.option("--term", help="YYYY-MM-DD: any day of the term (from the school calendar)")
    @click.option("--out", required=True, type=click.Path(dir_okay=False), help="the XLSX to write")
    def command(month: str | None, term: str | None, out: str) -> None:
        _export(key, month, term, out)

    return command


COMMANDS: list[click.Command] = [stocktake_group, supplies_group, keys_command]
EXPORTS: list[click.Command] = [
    _ledger_command("assets", "资产台账: every thing with its state, the period's changes and disposals."),
    _ledger_command("loans", "借用登记: loans asked in the period and those still out."),
    _ledger_command("keys", "钥匙登记: key loans of the period, and who holds each key now."),
    _ledger_command("stocktake", "盘点报告: the period's stocktakes, every discrepancy, who checked what."),
    _ledger_command("supplies", "物品领用台账: every 入库 and 领用, per item and per department."),
]
