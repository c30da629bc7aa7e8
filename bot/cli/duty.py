"""The duty roster: its import and the 值日 export."""

from __future__ import annotations

import click

from bot.cli.base import _export, _import_with, export, ledger_options, main


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
@ledger_options
def export_duty(month: str | None, term: str | None, out: str) -> None:
    """值日台账: a row per post and slot (rostered, who checked in, how, when, status) and a per-teacher summary."""
    ledger = _export("duty", month, term, out)
    rows, _ = ledger.sheets
    click.echo(f"{ledger.period.label} 值日 {len(rows.rows)} 岗次：{out}")
