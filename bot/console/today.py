"""今日: what happened today and what needs the office now."""

from __future__ import annotations

from typing import Any

from flask import Response, abort, g, redirect, render_template, request, session, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload, selectinload

from bot.audit import record
from bot.console import base
from bot.console.base import MAX_ID, acting_person, actor, bp, chat_context, home_for, requires
from bot.outbox import SAFETY_KINDS, kind_name, kinds_without_template, short_reason
from bot.text import day_bounds, day_label
from handlers.bus import TRIP_NAMES, _acknowledge, open_alarms
from handlers.repair.rules import overdue_among
from models import BusRoute, BusTrip, Delivery, DutyCheckin, DutyShift, InboundMessage, RepairTicket
from models.bus import BusAlarm
from models.outbox import FAILED, UNDELIVERABLE, DeliveryAlert
from models.repair import ACTIVE

ALERTS_SHOWN = 50


@bp.get("/")
@requires()
def overview() -> Any:
    """今日, for the office (admin, bureau); anyone else lands on their own first area."""
    if not g.roles & {"admin", "bureau"}:
        return redirect(home_for(g.roles))
    services = base.services()
    day = services.now().astimezone(services.settings.tz).date()
    start, end = day_bounds(day, services.settings.tz)
    with base.read_db() as db:
        active = list(db.scalars(select(RepairTicket).where(RepairTicket.status.in_(ACTIVE))
                                 .options(joinedload(RepairTicket.assignee))
                                 .order_by(RepairTicket.urgent.desc(), RepairTicket.filed_at)))
        trips = list(db.scalars(select(BusTrip).where(BusTrip.day == day)
                                .options(joinedload(BusTrip.route),
                                         selectinload(BusTrip.alarms).joinedload(BusAlarm.acknowledged_by))
                                .order_by(BusTrip.route_id, BusTrip.trip)))
        shifts = list(db.scalars(select(DutyShift).where(DutyShift.day == day)
                                 .options(joinedload(DutyShift.post), joinedload(DutyShift.person),
                                          selectinload(DutyShift.checkins).joinedload(DutyCheckin.person))
                                 .order_by(DutyShift.slot)))
        problems = db.scalar(select(func.count()).select_from(Delivery).where(
            Delivery.status.in_((UNDELIVERABLE, FAILED)), Delivery.next_attempt_at >= start)) or 0
        received = db.scalar(select(func.count()).select_from(InboundMessage).where(
            InboundMessage.received_at >= start, InboundMessage.received_at < end)) or 0
        failed = db.scalar(select(func.count()).select_from(InboundMessage).where(
            InboundMessage.received_at >= start, InboundMessage.status == "failed")) or 0
        alerts = list(db.scalars(select(DeliveryAlert).where(DeliveryAlert.acknowledged_at.is_(None))
                                 .order_by(DeliveryAlert.safety.desc(), DeliveryAlert.raised_at.desc())
                                 .limit(ALERTS_SHOWN)))
        unacknowledged = db.scalar(select(func.count()).select_from(DeliveryAlert)
                                   .where(DeliveryAlert.acknowledged_at.is_(None))) or 0
        alarms = open_alarms(db)
        overdue = overdue_among(db, active, services.now())  # the limits read once, not per ticket
        missed = [s for s in shifts if s.missed_at is not None]
        missing_templates = kinds_without_template(services.settings.templates)
        return render_template("admin/overview.html", alarms=alarms, overdue=overdue, missed=missed,
                               trip_names=TRIP_NAMES, day=day_label(day), active=active, trips=trips, shifts=shifts,
                               problems=problems, received=received, failed=failed, alerts=alerts,
                               unacknowledged=unacknowledged, kind_name=kind_name, short_reason=short_reason,
                               missing_templates=missing_templates,
                               unsafe=[SAFETY_KINDS[k] for k in missing_templates if k in SAFETY_KINDS],
                               done=request.args.get("done", "")[:300])


@bp.post("/alerts/acknowledge")
@requires("admin")
def acknowledge_alerts() -> Response:
    """An admin has seen who could not be reached (one alert, or all of them): the banner drops them."""
    wanted = request.form.get("alert", "")
    alert_id = base.number(wanted)
    if wanted and alert_id is None:
        abort(400)
    with base.db() as db, db.begin():
        query = select(DeliveryAlert).where(DeliveryAlert.acknowledged_at.is_(None))
        if alert_id is not None:
            query = query.where(DeliveryAlert.id == alert_id)
        for alert in db.scalars(query):
            alert.acknowledged_at, alert.acknowledged_by = base.services().now(), str(session.get("name", ""))
            record(db, actor(), "alert_acknowledge", alert.name, kind_name(alert.push.kind), at=alert.acknowledged_at)
    return redirect(url_for("console.overview"))  # type: ignore[return-value]


@bp.post(f"/bus-alarms/<int(max={MAX_ID}):route_id>/acknowledge")
@requires("admin")
def acknowledge_bus_alarm(route_id: int) -> Response:
    """确认 a route's left-on-bus alarms with what was found: the chat's own 确认, so the monitor and the
    others the alarm went to are told the same way."""
    note = " ".join(request.form.get("note", "").split())[:500]
    with base.db() as db, db.begin():
        route = db.get(BusRoute, route_id)
        if route is None:
            abort(404)
        person = acting_person(db)
        ctx = chat_context(db, person)
        answer = _acknowledge(ctx, route, note)
        record(db, person.name, "bus_alarm_acknowledge", route.label, f"{note}｜{answer}", at=ctx.now)
    return redirect(url_for("console.overview", done=answer))  # type: ignore[return-value]
