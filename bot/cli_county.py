"""`houqin county report [--month YYYY-MM | --term] [--xlsx FILE]`: the bureau's overview, one row per school."""

from __future__ import annotations

from datetime import date, datetime

import click

from bot.county_report import HEADER, MONTH, TERM, county_rows, write_xlsx

BAD_MONTH = "请写成 YYYY-MM，例如 2026-11，而不是「{value}」"
BOTH_VIEWS = "--month 和 --term 只能选一个"
WRITTEN = "已导出 {path}（{count} 所学校）"


@click.group()
def county() -> None:
    """The county's view across schools (教育局)."""


@county.command("report")
@click.option("--month", "month", default="", help="the month to report (YYYY-MM; default: this month)")
@click.option("--term", "term", is_flag=True, help="the whole term so far instead of a month")
@click.option("--xlsx", "xlsx", type=click.Path(dir_okay=False, writable=True), help="also write the table here")
def county_report(month: str, term: bool, xlsx: str | None) -> None:
    """One row per school: drills, fire self-checks, repairs, bus alarms, food safety, canteen, pushes."""
    from rich.console import Console
    from rich.table import Table

    from bot.cli import CliError, CliUsageError, _county

    if month and term:
        raise CliUsageError(BOTH_VIEWS)
    chosen: date | None = None
    if month:
        try:
            chosen = datetime.strptime(month, "%Y-%m").date()
        except ValueError as exc:
            raise CliUsageError(BAD_MONTH.format(value=month)) from exc
    try:
        period, rows = county_rows(_county(), TERM if term else MONTH, chosen)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    table = Table(*HEADER, title=period.title())
    for row in rows:
        table.add_row(*(str(c) for c in row.cells()))
    Console(width=240).print(table)
    if xlsx:
        click.echo(WRITTEN.format(path=write_xlsx(xlsx, period, rows), count=len(rows)))
