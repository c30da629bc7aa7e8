"""Repairs: rooms, assets, categories, their QR sheets, and the 报修台账 export."""

from __future__ import annotations

from functools import partial

import click

from bot.cli.base import _clock, _export, _import_with, _qr_sheet, _services, export, ledger_options, main, qr


# -- repairs: rooms, assets, categories, QR sheets, the ledger --------------------------------------
@main.group()
def rooms() -> None:
    """Rooms: where repairs happen, with their QR codes."""


@rooms.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
def rooms_import(file: str) -> None:
    """Import rooms from CSV/XLSX (楼栋 楼层 房间 别名 负责人)."""
    from handlers.repair.ledger import import_rooms

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
    from handlers.repair.rules import category_map

    services = _services(upgrade=True)
    with services.factory() as session:
        for name, words in category_map(session):
            click.echo(f"{name}: {'、'.join(words) or '（其余）'}")


@repair_categories.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
def repair_categories_import(file: str) -> None:
    """Replace the keyword map from CSV/XLSX (类别 关键词; keywords separated by ; or 、)."""
    from handlers.repair.ledger import import_categories

    _import_with("报修类别", import_categories, file)


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


@export.command("repairs")
@ledger_options
def export_repairs(month: str | None, term: str | None, out: str) -> None:
    """报修台账 (tickets filed in the period), 巡查隐患台账, and the per-staff summary."""
    ledger = _export("repairs", month, term, out)
    tickets, hazards, _ = ledger.sheets
    click.echo(f"{ledger.period.label} 报修 {len(tickets.rows)} 张（隐患 {len(hazards.rows)} 张）：{out}")
