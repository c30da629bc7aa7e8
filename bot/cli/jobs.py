"""houqin jobs list | run: the scheduled jobs, run by hand at a fixed time."""

from __future__ import annotations

import sys

import click

from bot.cli.base import BadOption, CliError, _services, main

BAD_JOB_TIME = '时间请写成 "YYYY-MM-DD HH:MM"（学校时间）'
NO_SUCH_JOB = "没有任务 {job}（见 houqin jobs list）"



@main.group()
def jobs() -> None:
    """Scheduled jobs."""


@jobs.command("list")
def jobs_list() -> None:
    """Each job's id, schedule, next run (school time), last run and result."""
    from rich.console import Console
    from rich.table import Table

    from scheduler.runner import Runner

    services = _services(upgrade=True)
    tz = services.settings.tz
    table = Table("ID", "计划", "说明", "下次运行", "上次运行", "状态", "结果")
    for row in Runner(services).status():
        last = row.last_run
        table.add_row(row.job.id, row.schedule + (" 上课日" if row.job.school_days_only else ""), row.job.description,
                      f"{row.next_run.astimezone(tz):%Y-%m-%d %H:%M}" if row.next_run else "-",
                      f"{last.as_of.astimezone(tz):%Y-%m-%d %H:%M}" if last else "-",
                      last.status if last else "-", ((last.result or last.error or "") if last else "")[:50])
    Console(width=220).print(table)


@jobs.command("run")
@click.argument("job_id")
@click.option("--at", "at", help='run as if at this school time, "YYYY-MM-DD HH:MM"')
@click.option("--dry-run", is_flag=True, help="only show what it would send, to whom; send and change nothing")
@click.option("--force", is_flag=True, help="run even if this occurrence already ran (sends again)")
def jobs_run(job_id: str, at: str | None, dry_run: bool, force: bool) -> None:
    """Run one job's occurrence by hand (the scheduler will not repeat it); check one with --dry-run."""
    from datetime import datetime

    from scheduler.runner import RAN_OCCURRENCE, OccurrenceTaken, Runner

    services = _services(upgrade=True)
    runner = Runner(services)
    if job_id not in runner.jobs:
        raise CliError(NO_SUCH_JOB.format(job=job_id))
    as_of = None
    if at:
        try:
            as_of = datetime.strptime(at, "%Y-%m-%d %H:%M").replace(tzinfo=services.settings.tz)
        except ValueError as exc:
            raise BadOption(BAD_JOB_TIME, param_hint="--at") from exc
    if dry_run:
        click.echo("\n".join(runner.preview_lines(runner.preview(job_id, as_of))))
        return
    try:
        run = runner.run_now(job_id, as_of, force=force)
    except OccurrenceTaken as taken:
        click.echo(str(taken), err=True)
        sys.exit(1)
    click.echo(f"{job_id}: {run.status} — {run.result or ''}")
    if run.occurrence is not None and run.status == "done":
        click.echo(RAN_OCCURRENCE.format(occurrence=runner.local(run.occurrence), attempt=run.attempt))
    if run.error:
        click.echo(run.error, err=True)
        sys.exit(1)
