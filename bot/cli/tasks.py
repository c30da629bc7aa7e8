"""`houqin tasks …`: the 行事历 (issue 17) — import, the next due dates, a month's view, the ledger."""

from __future__ import annotations

import click

from bot.cli.base import ledger_command
from bot.tables import TableError

IMPORTED = "行事历导入完成：{result}"
WARNING = "⚠ {warning}"
NO_TASKS = "还没有任务：先导入 houqin tasks import FILE"
MONTH_TITLE = "{month} 行事历：应完成 {due} 项，已完成 {done} 项，已逾期 {late} 项"
NOTHING_IN_MONTH = "（本月没有任务）"
NO_TERM = "找不到包含 {day} 的学期：先用 houqin calendar import 导入开学和学期结束"
LEDGER_WRITTEN = "{span} 行事历台账 {n} 条：{out}"


@click.group("tasks")
def tasks() -> None:
    """The 行事历: recurring tasks that remind, check and land in the ledger."""


@tasks.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
def tasks_import(file: str) -> None:
    """Import tasks from CSV/XLSX: 任务 规则 负责 提醒提前天数 逾期上报天数 检查项.

    \b
    规则 (rule) — one of:
      每月15日              the 15th of every month, as it falls
      每月15日(顺延)         moved to the next working day (提前: the one before)
      每月第一个上课日        the month's first school day (none in a vacation month)
      每月最后一个上课日      the month's last school day
      每月第2个周三          the 2nd Wednesday (第1…5个, 最后一个周五)
      每周五                every Friday that is a school day
      每个上课日             every school day
      8;12月 15日(顺延)      a monthly form in given months only (9-1月 第一个上课日, 8月25日)
      每3个月(从上次完成)     3 months after the last completion (never done: due at once)
      2026-12-20           once, on that date
    负责: a person (张丽, or 张丽 三(2)班), a category (消防: its staff) or a role (后勤, 管理员).
    提醒提前天数 / 逾期上报天数: days, default 3. 检查项: items separated by ; or 、.
    A task is updated by its title; a file with a problem imports nothing.
    """
    from bot.cli.base import _services, refuse_import
    from handlers.tasks.ledger import import_tasks

    services = _services(upgrade=True)
    today = services.now().astimezone(services.settings.tz).date()
    try:
        with services.factory() as session, session.begin():
            result = import_tasks(session, file, today)
    except TableError as exc:
        refuse_import(exc)
    click.echo(IMPORTED.format(result=result))
    for warning in result.warnings:
        click.echo(WARNING.format(warning=warning))


@tasks.command("list")
def tasks_list() -> None:
    """Every task with its rule, who does it and its next due date."""
    from bot.cli.base import _services
    from handlers.tasks.ledger import LIST_HEADER, task_listing

    services = _services(upgrade=True)
    tz = services.settings.tz
    with services.read_factory() as session:
        listing = task_listing(session, services.now().astimezone(tz).date(), tz)
    if not listing.rows:
        click.echo(NO_TASKS)
        return
    click.echo(" | ".join(LIST_HEADER))
    for row in listing.rows:
        click.echo(" | ".join(row))
    for warning in listing.warnings:
        click.echo(WARNING.format(warning=warning))


@tasks.command("month")
@click.argument("month")
def tasks_month(month: str) -> None:
    """MONTH (YYYY-MM): each due date, who, and whether it is done, overdue or still to come."""
    from bot.cli.base import _month, _services
    from handlers.tasks.ledger import STATUS_DONE, STATUS_LATE, month_view

    first = _month(month)
    services = _services(upgrade=True)
    tz = services.settings.tz
    with services.read_factory() as session:
        rows, warnings = month_view(session, first, services.now().astimezone(tz).date(), tz)
    click.echo(MONTH_TITLE.format(month=month, due=len(rows), done=sum(r[4] == STATUS_DONE for r in rows),
                                  late=sum(r[4] == STATUS_LATE for r in rows)))
    for row in rows:
        click.echo("  " + " ".join(part for part in row if part))
    if not rows:
        click.echo(NOTHING_IN_MONTH)
    for warning in warnings:
        click.echo(WARNING.format(warning=warning))


@tasks.command("ledger")
@click.option("--month", help="YYYY-MM: the due dates of that month (default: this month)")
@click.option("--term", "term", is_flag=True, help="the whole term containing --month (or today)")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="the XLSX to write")
def tasks_ledger(month: str | None, term: bool, out: str) -> None:
    """行事历台账 as XLSX: each T<n> due in a month or a term (task, due, done by, when, checklist results,
    photos, linked repairs) and a per-task summary. The same ledger as the console's."""
    from bot.cli.base import CliError, _month, _services
    from bot.export import Period
    from bot.ledgers import build, terms

    services = _services(upgrade=True)
    tz = services.settings.tz
    day = _month(month) if month else services.now().astimezone(tz).date()
    with services.read_factory() as session:
        period: Period | None = Period.month(day)
        if term:
            period = next((p for p in terms(session) if p.first <= day < p.after), None)
            if period is None:
                raise CliError(NO_TERM.format(day=day))
        assert period is not None
        ledger = build("tasks", session, period, tz)
    ledger.save(out)
    click.echo(LEDGER_WRITTEN.format(span=period.label, n=len(ledger.sheets[0].rows), out=out))


# `houqin export tasks --month YYYY-MM | --term YYYY-MM-DD`: the same ledger beside every other one (bot/cli/__init__.py)
export_tasks = ledger_command("tasks", "行事历台账: each T<n> due in the period, who did it and when, checklist results, "
                                       "photos, linked repairs; a per-task summary.")
