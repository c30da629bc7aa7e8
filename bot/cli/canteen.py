"""The canteen: weekly menus (import, publish) and the 食堂台账 export."""

from __future__ import annotations

import click

from bot.audit import cli_actor, record
from bot.cli.base import (
    BadOption,
    CliError,
    _export,
    _import_with,
    _services,
    _settings,
    export,
    ledger_options,
    main,
)

NO_MENU = "{week} 还没有导入菜单：请先运行 houqin menu import 文件"
BAD_WEEK = "请写成 YYYY-Www，例如 2026-W48"


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
@ledger_options
def export_canteen(month: str | None, term: str | None, out: str) -> None:
    """食堂台账: every rating and comment, averages by day and by group (with a chart), complaint words,
    survey answers, and the 陪餐 records."""
    from handlers.canteen import accompanied_count

    ledger = _export("canteen", month, term, out)
    feedback, _, _, _, surveys, _ = ledger.sheets
    services = _services()
    with services.read_factory() as session:
        meals = accompanied_count(session, ledger.period.first, ledger.period.after)
    click.echo(f"{ledger.period.label} 食堂评价 {len(feedback.rows)} 条，调查 {len(surveys.rows)} 份，陪餐 {meals} 次：{out}")
