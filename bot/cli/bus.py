"""The school bus: routes, duty posts and their QR sheet, and the 校车台账 export."""

from __future__ import annotations

import click

from bot.cli.base import _export, _import_with, _qr_sheet, export, ledger_options, main, qr


@export.command("bus")
@ledger_options
def export_bus(month: str | None, term: str | None, out: str) -> None:
    """校车台账: a row per trip (expected, boarded, alighted, alerts, acknowledgements) and the leave records."""
    ledger = _export("bus", month, term, out)
    trips, leaves = ledger.sheets
    click.echo(f"{ledger.period.label} 校车 {len(trips.rows)} 趟，请假 {len(leaves.rows)} 条：{out}")


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
