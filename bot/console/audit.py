"""操作记录: every change made from the console or the CLI, newest first, filtered by who, what and when."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from flask import abort, render_template, request
from sqlalchemy import select

from bot.audit import ACTION_NAMES, VIA_NAMES
from bot.console import base
from bot.console.base import bp, requires
from bot.text import day_bounds
from models.console import AuditEntry

PAGE = 100


def _day(text: str) -> date | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        abort(400)


@bp.get("/audit")
@requires("admin", "bureau")
def audit() -> str:
    actor, action, via = (request.args.get(k, "").strip()[:64] for k in ("actor", "action", "via"))
    start, end = _day(request.args.get("from", "")), _day(request.args.get("to", ""))
    page = base.number(request.args.get("page", "1") or "1") or 1
    if (action and action not in ACTION_NAMES) or (via and via not in VIA_NAMES):
        abort(400)
    tz = base.services().settings.tz
    query = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    if actor:
        query = query.where(AuditEntry.actor.contains(actor, autoescape=True))
    if action:
        query = query.where(AuditEntry.action == action)
    if via:
        query = query.where(AuditEntry.via == via)
    if start:
        query = query.where(AuditEntry.at >= day_bounds(start, tz)[0])
    if end:
        query = query.where(AuditEntry.at < day_bounds(end + timedelta(days=1), tz)[0])
    with base.read_db() as db:
        rows = list(db.scalars(query.offset((page - 1) * PAGE).limit(PAGE + 1)))
    return render_template("admin/audit.html", rows=rows[:PAGE], more=len(rows) > PAGE, page=page,
                           actions=ACTION_NAMES, vias=VIA_NAMES, args=request.args)
