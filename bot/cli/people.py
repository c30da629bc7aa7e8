"""People: people and students imports, bind codes (list, reissue, printed slips), console passwords."""

from __future__ import annotations

import json
from datetime import tzinfo
from pathlib import Path

import click

from bot.audit import cli_actor, record
from bot.cli.base import QR_REFUSED, CliError, CliUsageError, _services, main, refuse_import
from bot.tables import TableError

EVERY_ONE = "全校"
SLIPS_NEED_CLASS = "请用 --class 指定班级（例：--class 三年级2班），或用 --staff 打印教职工的绑定码"


# -- people ---------------------------------------------------------------------------------------
def _run_import(kind: str, path: str) -> None:
    from handlers.identity import import_people, import_students

    importer = {"people": import_people, "students": import_students}[kind]
    services = _services(upgrade=True)
    try:
        with services.factory() as session, session.begin():
            result = importer(session, path, services.now())
            record(session, cli_actor(), f"{kind}_import", Path(path).name, str(result), via="cli", at=services.now())
    except TableError as exc:
        refuse_import(exc)
    click.echo(f"导入完成：{result}")
    for warning in result.warnings:
        click.echo(f"⚠ {warning}")


@main.group()
def people() -> None:
    """People (teachers, staff, parents ...)."""


@people.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
def people_import(file: str) -> None:
    """Import people from CSV/XLSX (姓名 角色 手机 班级 线路 负责类别)."""
    _run_import("people", file)


@main.group()
def students() -> None:
    """Students and their parent codes."""


@students.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
def students_import(file: str) -> None:
    """Import students from CSV/XLSX (姓名 班级 线路 站点)."""
    _run_import("students", file)


@main.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="a JSON array: name, kind, code, roles, expires_at")
@click.pass_context
def codes(ctx: click.Context, as_json: bool) -> None:
    """Outstanding bind codes; `codes reissue NAME` gives someone a new one."""
    if ctx.invoked_subcommand is not None:
        return
    from handlers.identity import outstanding_codes
    from models.identity import ROLE_NAMES

    services = _services(upgrade=True)
    with services.factory() as session:
        rows = outstanding_codes(session, services.now())
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    tz = services.settings.tz
    table = Table("姓名", "类型", "绑定码", "角色", "有效期至")
    for r in rows:
        table.add_row(r["name"], "人员" if r["kind"] == "person" else "学生家长", r["code"],
                      "、".join(ROLE_NAMES.get(role, role) for role in r["roles"]), local_minute(r["expires_at"], tz))
    Console().print(table)


@codes.command("reissue")
@click.argument("name")
def codes_reissue(name: str) -> None:
    """A new bind code for a person (or a student's parents) NAME; their old code stops working."""
    from handlers.identity import NOBODY_NAMED, code_holders, describe_holder, reissue_code

    services = _services(upgrade=True)
    with services.factory() as session, session.begin():
        holders = code_holders(session, name)
        if not holders:
            raise CliError(NOBODY_NAMED.format(name=name))
        holder = holders[0]
        if len(holders) > 1:
            click.echo(f"有{len(holders)}个「{name}」：")
            for number, each in enumerate(holders, start=1):
                click.echo(f"  {number}. {describe_holder(each)}")
            holder = holders[click.prompt("请输入序号", type=click.IntRange(1, len(holders))) - 1]
        click.echo(reissue_code(session, services.now(), holder, services.settings.tz))
        record(session, cli_actor(), "code_reissue", describe_holder(holder), via="cli", at=services.now())


@codes.command("slips")
@click.option("--class", "class_name", default="", help="the class, written any way: 三(2)班, 三年级2班, 3-2")
@click.option("--staff", is_flag=True, help="slips for the class's staff (every unbound staff member without --class)")
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False), help="the PDF to write")
def codes_slips(class_name: str, staff: bool, out: str) -> None:
    """Printable bind-code slips (PDF, 8 to a page): one per student for the parents, or one per staff member."""
    from bot.fonts import FontMissing
    from bot.slips import NO_STAFF, NO_STUDENTS, class_slips, heading, render_slips
    from bot.wechat.gateway import ApiError

    if not class_name and not staff:
        raise CliUsageError(SLIPS_NEED_CLASS)
    services = _services(upgrade=True)
    try:
        slips, issued = class_slips(services.factory, services.api, services.now(), services.settings.tz,
                                    class_name, staff)
    except ApiError as exc:
        raise CliError(QR_REFUSED.format(error=exc)) from exc
    if not slips:
        raise CliError((NO_STAFF if staff else NO_STUDENTS).format(class_name=class_name or EVERY_ONE))
    title = heading(class_name, staff)
    try:
        pages = render_slips(slips, out, title)
    except FontMissing as exc:
        raise CliError(str(exc)) from exc
    click.echo(f"{title} {len(slips)} 张（新发绑定码 {issued} 个），{pages} 页：{out}")


@main.command("console-password")
@click.argument("words", nargs=-1, required=True)
@click.option("--password", prompt="新密码", hide_input=True, confirmation_prompt="再输入一次",
              help="the password (asked for when not given)")
def console_password(words: tuple[str, ...], password: str) -> None:
    """Let an admin sign in to the web console (/admin) with a password. NAME is a name, or among
    namesakes a name and a class or the phone's last four digits: 张丽 三(2)班."""
    name = " ".join(words)
    from bot.console import set_password
    from bot.people import PersonNotFound, resolve_person

    services = _services(upgrade=True)
    with services.factory() as session, session.begin():
        try:
            person = resolve_person(session, name)
            set_password(session, person, password)
            record(session, cli_actor(), "console_password", person.name, via="cli", at=services.now())
        except PersonNotFound as exc:
            raise CliError(exc.message) from exc
        except ValueError as exc:
            raise CliError(str(exc)) from exc
    click.echo(f"{name} 可以登录控制台了：/admin")


def local_minute(stamp: str, tz: tzinfo) -> str:
    """A stored moment (ISO, UTC when it names no zone) as the school's clock reads it: 2026-12-15 09:25."""
    from datetime import UTC, datetime

    moment = datetime.fromisoformat(stamp)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(tz).strftime("%Y-%m-%d %H:%M")
