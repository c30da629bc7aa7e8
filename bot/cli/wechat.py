"""Everything that speaks WeChat from the command line: the local fake, chat, templates, the menus."""

from __future__ import annotations

import json
import uuid
from functools import partial
from typing import Any

import click

from bot.cli.base import CliError, CliUsageError, _runtime, _services, main
from bot.config import read_environment

MENU_REFUSED = "微信拒绝了菜单：{error}"
CHAT_NEEDS_WHO = "请给出 --as 姓名 或 --openid OPENID"
FINISH_NEEDS_WEBHOOK = "--finish 需要同时给出 --webhook URL"
WEBHOOK_NEEDS_ACCOUNT = "--webhook 需要 WECHAT_TOKEN 和 WECHAT_APPID（机器人服务的公众号）"
SCHOOLS_UNREADABLE = "读不到本安装的数据库（{error}）：只回报默认公众号的模板消息，不回报各校自己的公众号"


# -- local WeChat -------------------------------------------------------------------------------
@main.command("fake-wechat")
@click.option("--port", default=8900, show_default=True, type=int)
@click.option("--latency", default=0.0, show_default=True, help="seconds added to every call")
@click.option("--error-rate", default=0.0, show_default=True, help="share of calls answering -1")
@click.option("--refuse-ip", default="", help="answer every call 40164 (IP not whitelisted), naming this IP")
@click.option("--webhook", default="", help="the bot's /wechat URL: TEMPLATESENDJOBFINISH is posted there, signed "
              "with WECHAT_TOKEN/WECHAT_APPID (and WECHAT_AES_KEY) like WeChat's own events; a school with an "
              "account of its own (houqin school add, then or later) is reported to at its /wechat/<slug>, "
              "signed with its token and key")
@click.option("--finish", default="", help='report every template send with this status ("success", '
              '"failed:user block", "failed: system failed"); without it, POST /_fake/finish reports one')
@click.option("--templates", "library", type=click.Path(exists=True, dir_okay=False),
              help="the account's template library: JSON as get_all_private_template answers it")
@click.option("--template-quota", default=0, show_default=True,
              help="template sends per account per day before answering 45009 (0: no limit)")
def fake_wechat(port: int, latency: float, error_rate: float, refuse_ip: str, webhook: str, finish: str,
                library: str | None, template_quota: int) -> None:
    """A local fake of the WeChat API (loopback only), recording every call."""
    from bot.wechat.fake import Webhook, load_library
    from bot.wechat.fake import serve as serve_fake
    from bot.wechat.simulator import http_transport

    hook, resolve = None, None
    if webhook:
        env = read_environment()
        if not env.get("WECHAT_TOKEN") or not env.get("WECHAT_APPID"):
            raise CliUsageError(WEBHOOK_NEEDS_ACCOUNT)
        transport = http_transport(webhook.split("/wechat")[0])
        hook = Webhook(env["WECHAT_TOKEN"], env["WECHAT_APPID"], transport, env.get("WECHAT_AES_KEY", ""))
        resolve = _schools_webhooks(transport)
    elif finish:
        raise CliUsageError(FINISH_NEEDS_WEBHOOK)
    serve_fake(port, latency=latency, error_rate=error_rate, refused_ip=refuse_ip, webhook=hook, finish=finish,
               library=load_library(library) if library else None, template_quota=template_quota, resolve=resolve)


def _schools_webhooks(transport: Any) -> Any:
    """Where each school's own account reports (bot.county.report_webhooks), read from the installation's
    database when a send is reported; without a database to read, the default account alone."""
    from bot.county import County, report_webhooks

    try:
        services = _services(every_school=True)
    except click.ClickException as exc:
        click.echo(SCHOOLS_UNREADABLE.format(error=exc.format_message()))
        return None
    return report_webhooks(County.of(services), transport)[1]


@main.command()
@click.option("--as", "name", help="chat as this person (demo: 张丽)")
@click.option("--openid", help="chat as this WeChat openid")
@click.option("--url", help="the bot's base URL (default: the running `houqin serve`)")
@click.option("--mode", type=click.Choice(["safe", "compat", "plain"]), default="safe", show_default=True)
def chat(name: str | None, openid: str | None, url: str | None, mode: str) -> None:
    """Talk to the running bot as a WeChat user would; pushes to you are shown as they arrive."""
    from bot.wechat.chat import ServeLink, run_chat

    if not name and not openid:
        raise CliUsageError(CHAT_NEEDS_WHO)
    services = _services()
    link = ServeLink(partial(_runtime, services.settings.instance_dir), url or "")
    openid = openid or "o" + uuid.uuid5(uuid.NAMESPACE_DNS, f"houqin-chat:{name}").hex[:27]
    run_chat(services, link, openid, name, mode)


@main.group()
def templates() -> None:
    """Template messages: each push kind's fields, and the HOUQIN_TEMPLATES mapping checked."""


@templates.command("list")
def templates_list() -> None:
    """Every push kind with its named fields and an example, for writing HOUQIN_TEMPLATES."""
    from bot.push_kinds import PUSH_KINDS, example_fields

    for kind, declared in PUSH_KINDS.items():
        click.echo(f"{kind}  {declared.name}")
        click.echo(f"  fields: {', '.join(declared.all_fields)}")
        example = example_fields(kind)
        click.echo("  example: " + json.dumps({k: example[k] for k in declared.all_fields if k != "text"},
                                              ensure_ascii=False))


@templates.command("check")
@click.option("--sample", default=50, show_default=True, help="recent pushes per kind to measure lengths on")
def templates_check(sample: int) -> None:
    """Check HOUQIN_TEMPLATES against the account's templates; exits 1 on any problem."""
    from bot.wechat.gateway import ApiError
    from bot.wechat.templates import check_account

    services = _services(upgrade=True)
    mapping = services.settings.templates
    if not mapping:
        raise CliError("HOUQIN_TEMPLATES 为空：没有可检查的模板（见 houqin templates list）")
    try:
        problems = check_account(services.api, services.factory, mapping, sample)
    except ApiError as exc:
        raise CliError(f"无法获取公众号的模板列表：{exc}") from exc
    for problem in problems:
        click.echo(f"✗ {problem}")
    if problems:
        raise SystemExit(1)
    click.echo(f"✓ {len(mapping)} 类推送的模板均已核对")


@main.command("wechat-menu")
@click.option("--upload", is_flag=True, help="create the tags and menus on the official account, tag every bound follower")
def wechat_menu(upload: bool) -> None:
    """Print the official account's menus (the default one, one per role combination), or upload them."""
    from bot.wechat.gateway import ApiError
    from bot.wechat.menu import default_plan, menu_worker
    from bot.wechat.menu import upload as upload_menus

    plan = default_plan()
    if not upload:
        click.echo(json.dumps({"default": plan.default, "conditional": [
            {"tag": tag, "roles": plan.roles[tag], **menu} for tag, menu in plan.menus.items()]},
            ensure_ascii=False, indent=2))
        return
    services = _services(upgrade=True)
    try:
        done = upload_menus(services.api, services.factory, plan, services.now())
    except ApiError as exc:
        raise CliError(MENU_REFUSED.format(error=exc)) from exc
    click.echo(f"{done}。")
    worker = menu_worker(services)
    worker.drain()
    click.echo(worker.summary())
