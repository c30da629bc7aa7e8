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

    from bot.cli.base import CliError, CliUsageError, _county

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


NOTIFY_HEAD = "教育局通知 {id}「{title}」已发出："
NOTICE_TITLE = "教育局通知 {id}「{title}」（{sender}，{when}）"
NOTICES_NONE = "教育局还没有发过通知。"
NOTICE_ROW = "{id} {when} {title}（{schools} 所学校，已确认 {done}/{total}）"
PART_HEAD = "{name}（{code}）：已确认 {done}/{total}"
PART_CONFIRMED = "  已确认：{names}"
PART_WAITING = "  未确认：{names}"
PART_REMINDED = "  已提醒：{names}"
PART_NOT_SENT = "{name}：未发送（{why}）"


@county.command("notify")
@click.option("--title", "title", required=True, help="the notice's title")
@click.option("--body", "body", required=True, help="the notice's text")
@click.option("--schools", "schools", default="", help="school slugs, comma-separated (default: every school)")
@click.option("--sender", "sender", default="", help="who sends it, as the record names them (default: 教育局)")
def county_notify(title: str, body: str, schools: str, sender: str) -> None:
    """A 通知 from the bureau to the admins of every school (or of the schools given), with 回执."""
    from bot.cli.base import CliError, _county
    from bot.county import CountyError
    from bot.county_notices import BUREAU, send_county_notice

    slugs = [s for s in schools.replace("，", ",").split(",")] if schools else None
    try:
        notice, lines = send_county_notice(_county(), sender or BUREAU, title, body, slugs)
    except CountyError as exc:
        raise CliError(str(exc)) from exc
    click.echo(NOTIFY_HEAD.format(id=notice.id, title=notice.title))
    for line in lines:
        click.echo(line)


@county.command("notices")
@click.argument("notice_id", required=False, type=int)
def county_notices_cmd(notice_id: int | None) -> None:
    """The bureau's notices; with an id, each school's admins who have and have not confirmed."""
    from bot.cli.base import CliError, _county
    from bot.county_notices import county_notice_status, county_notices, get_county_notice, unknown

    county_ = _county()
    tz = county_.default.settings.tz
    if notice_id is None:
        notices = county_notices(county_)
        if not notices:
            click.echo(NOTICES_NONE)
        for n in notices:
            parts = county_notice_status(county_, n)
            click.echo(NOTICE_ROW.format(id=n.id, when=f"{n.created_at.astimezone(tz):%m-%d %H:%M}", title=n.title,
                                         schools=len(parts), done=sum(len(p.confirmed) for p in parts),
                                         total=sum(len(p.confirmed) + len(p.unconfirmed) for p in parts)))
        return
    notice = get_county_notice(county_, notice_id)
    if notice is None:
        raise CliError(unknown(notice_id))
    click.echo(NOTICE_TITLE.format(id=notice.id, title=notice.title, sender=notice.sender_name,
                                   when=f"{notice.created_at.astimezone(tz):%m-%d %H:%M}"))
    for part in county_notice_status(county_, notice):
        if not part.code:
            click.echo(PART_NOT_SENT.format(name=part.name, why=part.told))
            continue
        total = len(part.confirmed) + len(part.unconfirmed)
        click.echo(PART_HEAD.format(name=part.name, code=part.code, done=len(part.confirmed), total=total))
        if part.confirmed:
            click.echo(PART_CONFIRMED.format(names="、".join(
                f"{name}（{at.astimezone(tz):%m-%d %H:%M}）" for name, at in part.confirmed)))
        if part.unconfirmed:
            click.echo(PART_WAITING.format(names="、".join(part.unconfirmed)))
        if part.reminded:
            click.echo(PART_REMINDED.format(names="、".join(
                f"{name}（{at.astimezone(tz):%m-%d %H:%M}）" for name, at in part.reminded)))
