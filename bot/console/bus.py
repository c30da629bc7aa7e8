"""校车: the routes with their stops and riders, today's trips (expected / boarded / alighted), the
left-on-bus alarms with 确认 and what was found, and the leave requests from today on. 确认 goes through
the chat's own function (handlers.bus.acknowledge_route): the same people are told the same words."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, url_for
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bot.audit import record
from bot.console import base
from bot.console.acting import field
from bot.console.base import MAX_ID, acting_person, actor, bp, check_csrf, requires
from bot.outbox import Outbox
from handlers.bus import acknowledge_route, all_routes, riders
from models import Student
from models.bus import AFTERNOON, MORNING, TRIP_NAMES, BusAlarm, BusLeave, BusRoute, BusTrip

NOTE_LIMIT = 500
RECENT_ALARMS = 20
LEAVE_TRIPS = {MORNING: "上学", AFTERNOON: "放学", "all": "全天"}


@bp.get("/bus")
@requires("admin", "bureau")
def bus() -> str:
    services = base.services()
    day = services.now().astimezone(services.settings.tz).date()
    with base.read_db() as db:
        routes = all_routes(db)
        students: dict[str, list[Student]] = {}
        for student in db.scalars(select(Student).where(Student.route != "").order_by(Student.class_name, Student.name)):
            students.setdefault(student.route, []).append(student)
        stored = {(t.route_id, t.trip): t for t in db.scalars(select(BusTrip).where(BusTrip.day == day))}
        trips = []
        for route in routes:
            for trip in (MORNING, AFTERNOON):
                row = stored.get((route.id, trip))
                expected = row.expected if row is not None and row.expected is not None \
                    else len(riders(db, route, day, trip)[0])
                trips.append({"route": route, "name": TRIP_NAMES[trip], "row": row, "expected": expected})
        alarms = list(db.scalars(select(BusAlarm).options(selectinload(BusAlarm.trip))
                                 .where(BusAlarm.acknowledged_at.is_(None)).order_by(BusAlarm.id)))
        open_routes = list({a.trip.route_id: a.trip.route for a in alarms}.values())
        done = list(db.scalars(select(BusAlarm).where(BusAlarm.acknowledged_at.is_not(None))
                               .order_by(BusAlarm.acknowledged_at.desc()).limit(RECENT_ALARMS)))
        leaves = list(db.scalars(select(BusLeave).where(BusLeave.day >= day, BusLeave.cancelled_at.is_(None))
                                 .order_by(BusLeave.day, BusLeave.id)))
        return render_template("admin/bus.html", day=day, routes=routes, students=students, trips=trips,
                               alarms=alarms, open_routes=open_routes, done=done, leaves=leaves,
                               trip_names=TRIP_NAMES, leave_trips=LEAVE_TRIPS, note_limit=NOTE_LIMIT)


@bp.post(f"/bus/routes/<int(max={MAX_ID}):route_id>/acknowledge")
@requires("admin")
def acknowledge_route_alarms(route_id: int) -> Any:
    """确认 a route's open alarms with what was found, exactly as 「确认 N号线 情况」 in the chat does."""
    check_csrf()
    note = field("note", "检查情况", NOTE_LIMIT, lines=True)
    services = base.services()
    now = services.now()
    with base.db() as db, db.begin():
        route = db.get(BusRoute, route_id)
        if route is None:
            abort(404)
        person = acting_person(db)
        result = acknowledge_route(db, Outbox(db, services.settings, now), route, person, note, now,
                                   services.settings.tz)
        record(db, actor(), "bus_alarm_acknowledge", route.label, note, at=base.services().now())
    flash(result)
    return redirect(url_for("console.bus"))


