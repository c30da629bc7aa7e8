"""`houqin` commands of the register of things (issue 18): stocktakes, supplies, keys and the ledgers
(`houqin export assets|loans|keys|stocktake|supplies --month YYYY-MM | --term YYYY-MM-DD`). bot/cli/__init__.py
adds them to its groups; the helpers they share (`_services`, `_import_with`, errors) are bot/cli/base.py's."""

from __future__ import annotations

import click

from bot.cli.base import ledger_command

NO_OPEN_STOCKTAKE = "当前没有进行中的盘点"


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


COMMANDS: list[click.Command] = [stocktake_group, supplies_group, keys_command]
EXPORTS: list[click.Command] = [
    ledger_command("assets", "资产台账: every thing with its state, the period's changes and disposals."),
    ledger_command("loans", "借用登记: loans asked in the period and those still out."),
    ledger_command("keys", "钥匙登记: key loans of the period, and who holds each key now."),
    ledger_command("stocktake", "盘点报告: the period's stocktakes, every discrepancy, who checked what."),
    ledger_command("supplies", "物品领用台账: every 入库 and 领用, per item and per department."),
]
