"""`houqin school add|list`, `houqin templates set`, and the `--school SLUG` option every command has.

`SchoolGroup` is the class of the `houqin` group: every command and group added to it — now or by a
later module, with `@main.command()` or `main.add_command(...)` — gets `--school SLUG` (or the
environment's `HOUQIN_SCHOOL`), which `bot.cli.base._services()` reads through `chosen_school()`.
"""

from __future__ import annotations

import json
from typing import Any

import click

SCHOOL_OPTION = "--school"
SCHOOL_ENV = "HOUQIN_SCHOOL"
SCHOOL_HELP = "the school (its code, see houqin school list); with one school it may be left out"
META_KEY = "houqin.school"
SCHOOL_ADDED = "已添加学校 {slug}（{name}）：{account}。"
SCHOOL_RENAMED = "学校 {slug} 已改名：{old} → {name}。"
OWN_ACCOUNT = "使用本校公众号 {appid}，微信后台的服务器地址填 {url}/wechat/{slug}"
SHARED_ACCOUNT = "使用默认（县级共用）公众号"
TEMPLATE_SET = "{slug}：{kind} → {template_id}"
TEMPLATE_REMOVED = "{slug}：{kind} 不再用模板消息"
BAD_PAIR = "请写成 推送类型=模板ID，例如 repair_new=AbCdEf123（见 houqin templates list），而不是「{pair}」"
UNKNOWN_KIND = "没有推送类型「{kind}」（见 houqin templates list）"
NO_DATA = ("HOUQIN_TEMPLATES 里没有 {kind} 的关键词格式：请用 --data 给出，例如 "
           "--data '{{\"thing1\": \"{{title}}\"}}'")


def _remember(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value:
        ctx.meta[META_KEY] = value
    return value


def school_option() -> click.Option:
    return click.Option([SCHOOL_OPTION], envvar=SCHOOL_ENV, expose_value=False, callback=_remember,
                        metavar="SLUG", help=SCHOOL_HELP)


def _with_school(command: click.Command) -> click.Command:
    if not any(SCHOOL_OPTION in getattr(p, "opts", ()) for p in command.params):
        command.params.append(school_option())
    if isinstance(command, click.Group) and not isinstance(command, SchoolGroup):
        for sub in command.commands.values():
            _with_school(sub)
    return command


class SchoolGroup(click.Group):
    """A click group whose every command (and sub-group, and their commands) takes --school."""

    group_class = type  # sub-groups made with @group.group() are SchoolGroups too

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _with_school(self)

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        super().add_command(_with_school(cmd), name)


def chosen_school() -> str | None:
    """The --school given to this command (or HOUQIN_SCHOOL), if any."""
    ctx = click.get_current_context(silent=True)
    return ctx.meta.get(META_KEY) if ctx is not None else None


# -- houqin school ------------------------------------------------------------------------------------
@click.group(cls=SchoolGroup)
def school() -> None:
    """The schools this installation serves (a county's): add one, list them."""


@school.command("add")
@click.argument("slug")
@click.option("--name", required=True, help="the school's name, e.g. 北城小学")
@click.option("--appid", default="", help="its own official account's AppID (else the default, shared account)")
@click.option("--token", default="", help="its own account's Token")
@click.option("--aes-key", default="", help="its own account's EncodingAESKey (empty: plaintext mode)")
@click.option("--secret", default="", help="its own account's AppSecret")
@click.option("--tz", "tz_name", default="", help="its timezone, if not HOUQIN_TZ")
def school_add(slug: str, name: str, appid: str, token: str, aes_key: str, secret: str, tz_name: str) -> None:
    """Add a school: its own database namespace, migrated; its account's secrets stored encrypted."""
    from bot.cli.base import CliError, _county
    from bot.config import ConfigError, _check_aes_key
    from bot.county import CountyError

    if tz_name:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise CliError(f"未知的时区「{tz_name}」，例如 Asia/Shanghai") from exc
    try:
        _check_aes_key("--aes-key", aes_key)
    except ConfigError as exc:
        raise CliError(f"--aes-key 不对：{exc}") from exc
    if token and not (3 <= len(token) <= 32 and token.isalnum()):
        raise CliError("--token 须为 3–32 个字母或数字（公众号后台「基本配置 → 令牌(Token)」）")
    county = _county()
    try:
        entry = county.add(slug, name, appid=appid, token=token, aes_key=aes_key, secret=secret, tz_name=tz_name)
    except CountyError as exc:
        raise CliError(str(exc)) from exc
    url = county.default.settings.public_url
    account = OWN_ACCOUNT.format(appid=appid, url=url, slug=slug) if entry.own_account else SHARED_ACCOUNT
    click.echo(SCHOOL_ADDED.format(slug=slug, name=name, account=account))


@school.command("rename")
@click.argument("slug")
@click.option("--name", required=True, help="the school's name as the bureau and its followers see it")
def school_rename(slug: str, name: str) -> None:
    """Name a school anew — the default one too (本校 until it is named): the bureau's overview, the
    question 「哪所学校」 on the shared account and `school list` use it. Recorded in 操作记录."""
    from bot.audit import cli_actor, record
    from bot.cli.base import CliError, _county
    from bot.county import CountyError

    county = _county()
    try:
        old, entry = county.rename(slug, name)
    except CountyError as exc:
        raise CliError(str(exc)) from exc
    with county.default.factory() as db, db.begin():
        record(db, cli_actor(), "school_rename", slug, f"{old} → {entry.name}", via="cli", at=county.default.now())
    click.echo(SCHOOL_RENAMED.format(slug=slug, old=old, name=entry.name))


@school.command("list")
def school_list() -> None:
    """Every school: code, name, account (secrets masked), timezone."""
    from rich.console import Console
    from rich.table import Table

    from bot.cli.base import _county
    from bot.county import mask
    from models import CountySchool

    county = _county()
    table = Table("代号", "名称", "公众号", "Token", "AppSecret", "时区")
    with county.default.read_factory() as db:
        for entry in county.schools():
            row = db.get(CountySchool, entry.slug)
            token = secret = "-"
            if row is not None and entry.own_account:
                box = _box(county)
                token, secret = (mask(_plain(box, row.token_enc)), mask(_plain(box, row.secret_enc)))
            table.add_row(entry.slug + ("（默认）" if entry.is_default else ""), entry.name,
                          entry.appid or "默认公众号", token, secret,
                          entry.tz_name or county.default.settings.tz_name)
    Console(width=120).print(table)


def _box(county: Any) -> Any:
    from bot.county import secret_box

    return secret_box(county.default.settings.secret_key)


def _plain(box: Any, sealed: str) -> str:
    from cryptography.fernet import InvalidToken

    try:
        return str(box.decrypt(sealed.encode()).decode()) if sealed else ""
    except InvalidToken:
        return "?"


# -- houqin templates set -------------------------------------------------------------------------
@click.command("set")
@click.argument("pairs", nargs=-1, required=True)
@click.option("--data", default="", help='keyword formats for a kind HOUQIN_TEMPLATES lacks: {"thing1": "{title}"}')
def templates_set(pairs: tuple[str, ...], data: str) -> None:
    """This school's template ids: KIND=TEMPLATE_ID … (KIND= stops using a template for that kind).

    Stored in the school's own settings; HOUQIN_TEMPLATES stays the default for the keyword formats
    and for schools that set none. Every running process (web, worker, scheduler) uses them within a few
    seconds (bot.school.StoredTemplates)."""
    from bot.cli.base import CliError, _services
    from bot.county import County
    from bot.push_kinds import PUSH_KINDS
    from bot.school import TEMPLATES_SETTING, school_templates
    from bot.wechat.templates import parse_templates
    from models import SchoolSetting

    services = _services(upgrade=True)
    county = County.of(services)
    slug = services.settings.school or "default"
    env_mapping = county.env_templates
    with services.factory() as db, db.begin():
        stored = school_templates(db)
        current: dict[str, Any] = json.loads(stored) if stored else {
            kind: {"template_id": t.template_id, "data": dict(t.data)} for kind, t in services.settings.templates.items()}
        for pair in pairs:
            kind, sep, template_id = pair.partition("=")
            kind, template_id = kind.strip(), template_id.strip()
            if not sep or not kind:
                raise CliError(BAD_PAIR.format(pair=pair))
            if kind not in PUSH_KINDS:
                raise CliError(UNKNOWN_KIND.format(kind=kind))
            if not template_id:
                current.pop(kind, None)
                click.echo(TEMPLATE_REMOVED.format(slug=slug, kind=kind))
                continue
            if data:
                formats = json.loads(data)
            elif kind in current:
                formats = current[kind]["data"]
            elif kind in env_mapping:
                formats = dict(env_mapping[kind].data)
            else:
                raise CliError(NO_DATA.format(kind=kind))
            current[kind] = {"template_id": template_id, "data": formats}
            click.echo(TEMPLATE_SET.format(slug=slug, kind=kind, template_id=template_id))
        raw = json.dumps(current, ensure_ascii=False)
        try:
            parse_templates(raw)
        except ValueError as exc:
            raise CliError(f"模板设置不对：{exc}") from exc
        row = db.get(SchoolSetting, TEMPLATES_SETTING)
        if row is None:
            db.add(SchoolSetting(key=TEMPLATES_SETTING, value=raw))
        else:
            row.value = raw
