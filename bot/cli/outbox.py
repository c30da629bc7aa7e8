"""houqin outbox: the pushes and their deliveries, and retrying one."""

from __future__ import annotations

import click
from sqlalchemy import select

from bot.cli.base import CliError, _services, main
from bot.outbox import requeue
from bot.worker import quota_line
from models import Delivery, Person
from models.outbox import DELIVERY_STATES

NOTHING_TO_RETRY = "该接收人没有绑定微信，无法重发"
NO_DELIVERY = "没有编号为 {id} 的投递（见 houqin outbox）"


# -- outbox ---------------------------------------------------------------------------------------
@main.group(invoke_without_command=True)
@click.option("--status", type=click.Choice(DELIVERY_STATES), help="only deliveries in this state")
@click.option("--limit", default=50, show_default=True)
@click.pass_context
def outbox(ctx: click.Context, status: str | None, limit: int) -> None:
    """List pushes and their deliveries (newest first); ✓: WeChat confirmed the template arrived."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.console import Console
    from rich.table import Table

    services = _services(upgrade=True)
    query = select(Delivery).order_by(Delivery.id.desc()).limit(limit)
    if status:
        query = query.where(Delivery.status == status)
    table = Table("ID", "推送", "类型", "接收人", "状态", "渠道", "尝试", "最后错误", "内容")
    with services.factory() as session:
        names = dict(session.execute(select(Person.id, Person.name)).all())
        for d in session.scalars(query).unique():
            table.add_row(str(d.id), str(d.push_id), d.push.kind, names.get(d.person_id or 0, d.openid),
                          d.status + (" ✓" if d.confirmed_at else ""),
                          d.channel, str(d.attempts), (d.last_error or "")[:60], d.push.text.replace("\n", " ")[:40])
        quota = quota_line(session, services.settings, services.now())
    Console(width=200).print(table)
    click.echo(quota)


@outbox.command("retry")
@click.argument("delivery_id", type=int)
def outbox_retry(delivery_id: int) -> None:
    """Queue a delivery again (after a failure, or to re-send), as the console's 重发 does."""
    services = _services(upgrade=True)
    with services.factory() as session, session.begin():
        delivery = session.get(Delivery, delivery_id)
        if delivery is None:
            raise CliError(NO_DELIVERY.format(id=delivery_id))
        if delivery.openid.startswith("person:"):
            raise CliError(NOTHING_TO_RETRY)
        requeue(delivery, services.now())
    click.echo(f"投递 {delivery_id} 已重新排队")
