"""推送: the outbox, every delivery with its status."""

from __future__ import annotations

from flask import abort, render_template, request
from sqlalchemy import select

from bot.console import base
from bot.console.base import bp, requires
from bot.outbox import kind_name
from models import Delivery, Person
from models.outbox import FAILED, PENDING, SENDING, SENT, UNDELIVERABLE

DELIVERY_STATUSES = (PENDING, SENDING, SENT, FAILED, UNDELIVERABLE)
# the outbox page's words for a delivery's status (as its filter links) and channel
DELIVERY_STATUS_NAMES = {PENDING: "待发送", SENDING: "发送中", SENT: "已送达", FAILED: "失败", UNDELIVERABLE: "无法送达"}
CHANNEL_NAMES = {"template": "模板消息", "custom": "客服消息"}


@bp.get("/outbox")
@requires("admin", "bureau")
def outbox() -> str:
    status = request.args.get("status", "")
    if status and status not in DELIVERY_STATUSES:
        abort(400)
    with base.read_db() as db:
        query = select(Delivery).order_by(Delivery.id.desc()).limit(200)
        if status:
            query = query.where(Delivery.status == status)
        deliveries = list(db.scalars(query).unique())
        names = dict(db.execute(select(Person.id, Person.name)).all())
        return render_template("admin/outbox.html", deliveries=deliveries, names=names, status=status,
                               kind_name=kind_name, status_names=DELIVERY_STATUS_NAMES, channel_names=CHANNEL_NAMES)
