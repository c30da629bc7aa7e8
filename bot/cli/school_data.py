"""The school's own data: calendar, drills, the safety-education calendar, and the settings."""

from __future__ import annotations

import click

from bot.audit import cli_actor, record
from bot.cli.base import CliError, _import_with, _services, main


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
