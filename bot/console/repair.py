"""报修: the tickets, one ticket with its history and photos, and the assets' repair history."""

from __future__ import annotations

from flask import Response, abort, render_template, request
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from bot.console import base
from bot.console.base import _CONTROL, MAX_ID, bp, requires, send_photo
from bot.places import find_asset
from handlers.repair import describe
from models import Asset, RepairTicket, TicketPhoto
from models.repair import ACTIVE, STATUS_NAMES


@bp.get("/repairs")
@requires("admin", "staff", "bureau")
def repairs() -> str:
    status = request.args.get("status", "active")
    if status not in ("active", "all", *STATUS_NAMES):
        abort(400)
    with base.read_db() as db:
        query = select(RepairTicket).order_by(RepairTicket.number.desc()).limit(200)
        if status == "active":
            query = query.where(RepairTicket.status.in_(ACTIVE))
        elif status in STATUS_NAMES:
            query = query.where(RepairTicket.status == status)
        tickets = list(db.scalars(query))
        return render_template("admin/repairs.html", tickets=tickets, status=status)


@bp.get("/repairs/<code>")
@requires("admin", "staff", "bureau")
def ticket(code: str) -> str:
    number = base.number(code.upper().removeprefix("R"))
    if number is None:
        abort(404)
    with base.read_db() as db:
        found = db.scalar(select(RepairTicket).where(RepairTicket.number == number))
        if found is None:
            abort(404)
        return render_template("admin/ticket.html", ticket=found, text=describe(found, base.services().settings.tz))


@bp.get("/assets")
@requires("admin", "staff", "bureau")
def assets() -> str:
    """Every registered asset with how often it was repaired and when last, most-repaired first."""
    repaired = (select(RepairTicket.asset_id, func.count().label("tickets"),
                       func.max(RepairTicket.filed_at).label("last_filed"))
                .group_by(RepairTicket.asset_id).subquery())
    tickets = func.coalesce(repaired.c.tickets, 0)
    with base.read_db() as db:
        rows = db.execute(select(Asset, tickets, repaired.c.last_filed)
                          .outerjoin(repaired, repaired.c.asset_id == Asset.id).options(joinedload(Asset.room))
                          .order_by(tickets.desc(), repaired.c.last_filed.desc(), Asset.code)).all()
        return render_template("admin/assets.html", rows=rows)


@bp.get("/assets/<path:code>")
@requires("admin", "staff", "bureau")
def asset(code: str) -> str:
    if _CONTROL.search(code):
        abort(404)
    with base.read_db() as db:
        found = find_asset(db, code)
        if found is None:
            abort(404)
        tickets = list(db.scalars(select(RepairTicket).where(RepairTicket.asset_id == found.id)
                                  .order_by(RepairTicket.number.desc())))
        return render_template("admin/asset.html", asset=found, tickets=tickets)


@bp.get(f"/photos/<int(max={MAX_ID}):photo_id>")
@requires("admin", "staff", "bureau")
def photo(photo_id: int) -> Response:
    return send_photo(TicketPhoto, photo_id)
