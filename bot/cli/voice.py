"""`houqin notices …`, `houqin survey …`, `houqin suggestions …` (issue 19): thin commands over the plain
functions of handlers/notices.py, handlers/survey.py and handlers/suggestions.py (the console calls the same
functions); their ledgers, `houqin export notices|suggestions`, are bot/ledgers.py's like every other.
Registered from bot/cli/__init__.py."""

from __future__ import annotations

from typing import Any

import click

from bot.outbox import Outbox

SENT = "已发送通知 {code}「{title}」给{audience}（{n} 人）：{told}"
UNKNOWN_NOTICE = "没有找到通知 {code}。"
NO_SURVEY = "还没有后勤满意度测评。"
NO_SURVEY_OF = "没有找到{period}的后勤满意度测评。"
NO_OPEN_SURVEY = "目前没有进行中的后勤满意度测评。"
WROTE = "已写入 {path}"
NOTICE_LIST_ROW = "{code} {when} {title}（{audience}，{sender}）已确认 {done}/{total}"
NOTICE_LIST_NONE = "还没有发过通知。"


def _cli() -> Any:
    from bot.cli import base

    return base


def _outbox(services: Any, session: Any) -> Outbox:
    return Outbox(session, services.settings, services.now())


# -- houqin notices ------------------------------------------------------------------------------
@click.group()
def notices() -> None:
    """Notices with confirmation (通知 N<n>, 回执)."""


@notices.command("send")
@click.option("--to", "audience", required=True, help="全体家长 / 三(2)班家长 / 教师 / 后勤 / 全体教职工 / 姓名")
@click.option("--title", required=True, help="标题")
@click.option("--no-confirm", is_flag=True, help="不需回执")
@click.option("--sender", default="", help="发送人姓名（默认后勤处）")
@click.argument("body", nargs=-1, required=True)
def notices_send(audience: str, title: str, no_confirm: bool, sender: str, body: tuple[str, ...]) -> None:
    """Send a notice to a group; recipients confirm by replying 收到."""
    from bot.people import PersonNotFound, resolve_person
    from handlers.notices import AudienceError, send_notice

    cli = _cli()
    services = cli._services(upgrade=True)
    with services.factory() as session, session.begin():
        try:
            person = resolve_person(session, sender) if sender else None
            sent = send_notice(session, _outbox(services, session), person, audience, title, " ".join(body),
                               confirm=not no_confirm)
        except (AudienceError, PersonNotFound) as exc:
            raise cli.CliError(str(exc)) from exc
        notice = sent.notice
        click.echo(SENT.format(code=notice.code, title=notice.title, audience=notice.audience,
                               n=len(notice.recipients), told=sent.told))


@notices.command("list")
def notices_list() -> None:
    """The latest notices and how many confirmed."""
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from models import Notice

    services = _cli()._services(upgrade=True)
    tz = services.settings.tz
    with services.read_factory() as session:
        rows = list(session.scalars(select(Notice).order_by(Notice.number.desc()).limit(20)
                                    .options(selectinload(Notice.recipients))))
        if not rows:
            click.echo(NOTICE_LIST_NONE)
        for n in rows:
            click.echo(NOTICE_LIST_ROW.format(code=n.code, when=f"{n.created_at.astimezone(tz):%Y-%m-%d %H:%M}",
                                              title=n.title, audience=n.audience, sender=n.sender_name,
                                              total=len(n.recipients),
                                              done=sum(r.confirmed_at is not None for r in n.recipients)))


@notices.command("show")
@click.argument("code")
def notices_show(code: str) -> None:
    """Who has and has not confirmed notice N<n>."""
    from handlers.notices import find_notice, status_text

    cli = _cli()
    services = cli._services(upgrade=True)
    with services.read_factory() as session:
        notice = find_notice(session, code)
        if notice is None:
            raise cli.CliError(UNKNOWN_NOTICE.format(code=code))
        click.echo(status_text(notice, services.settings.tz))


@notices.command("remind")
@click.argument("code")
def notices_remind(code: str) -> None:
    """Remind, once, everyone who has not confirmed notice N<n>."""
    from handlers.notices import find_notice, remind_unconfirmed

    cli = _cli()
    services = cli._services(upgrade=True)
    with services.factory() as session, session.begin():
        notice = find_notice(session, code)
        if notice is None:
            raise cli.CliError(UNKNOWN_NOTICE.format(code=code))
        click.echo(remind_unconfirmed(session, _outbox(services, session), notice))


# -- houqin survey -------------------------------------------------------------------------------
@click.group()
def survey() -> None:
    """后勤工作满意度测评 (anonymous)."""


def _items(text: str) -> list[str]:
    from bot.text import split_list

    return split_list(text)


@survey.command("start")
@click.option("--days", default=14, show_default=True, type=click.IntRange(1, 90), help="开放天数")
@click.option("--items", default="", help="测评项目（分号分隔；默认学校设置 office_survey_items）")
@click.option("--parent-items", default=None, help="请家长评价的项目（分号分隔；默认 office_survey_parent_items）")
def survey_start(days: int, items: str, parent_items: str | None) -> None:
    """Open this term's survey and send it to teachers, staff and parents."""
    from handlers.survey import SurveyError, start_survey

    cli = _cli()
    services = cli._services(upgrade=True)
    with services.factory() as session, session.begin():
        try:
            _, said = start_survey(session, _outbox(services, session), days=days, items=_items(items),
                                   parent_items=_items(parent_items) if parent_items is not None else None,
                                   by="houqin survey start")
        except SurveyError as exc:
            raise cli.CliError(str(exc)) from exc
    click.echo(said)


@survey.command("remind")
def survey_remind() -> None:
    """Remind everyone who has not finished the open survey (once each)."""
    from handlers.survey import open_survey, remind

    cli = _cli()
    services = cli._services(upgrade=True)
    with services.factory() as session, session.begin():
        found = open_survey(session, services.now().astimezone(services.settings.tz).date())
        if found is None:
            raise cli.CliError(NO_OPEN_SURVEY)
        click.echo(remind(session, _outbox(services, session), found))


@survey.command("results")
@click.option("--period", default="", help="学期，如 2026秋（默认最近一次）")
@click.option("--out", default=None, type=click.Path(dir_okay=False), help="写入 XLSX（含图表）")
def survey_results(period: str, out: str | None) -> None:
    """Results per item: share satisfied, by group (from 5 answers), last term and last year, comment keywords."""
    from handlers.survey import find_survey, results, results_text, write_results

    cli = _cli()
    services = cli._services(upgrade=True)
    with services.read_factory() as session:
        found = find_survey(session, period)
        if found is None:
            raise cli.CliError(NO_SURVEY_OF.format(period=period) if period else NO_SURVEY)
        res = results(session, found)
        click.echo(results_text(res))
        if out:
            write_results(out, res)
            click.echo(WROTE.format(path=out))


def register(main: click.Group, export: click.Group) -> None:
    """Add these commands to `houqin`, and their ledgers (bot/ledgers.py) to `houqin export`."""
    from bot.cli.base import ledger_command

    main.add_command(notices, "notices")
    main.add_command(notices, "notice")
    main.add_command(survey, "survey")
    export.add_command(ledger_command("notices", "通知回执台账: every recipient of the period's notices, when they "
                                                 "confirmed and how, when they were reminded."))
    export.add_command(ledger_command("suggestions", "意见箱台账: the period's suggestions (anonymous ones without "
                                                     "a name), their topics and answers."))


