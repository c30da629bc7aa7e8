"""校车: the routes with their stops and riders, today's trips (expected / boarded / alighted), the
left-on-bus alarms with 确认 and what was found, and the leave requests from today on. 确认 goes through
the chat's own function (handlers.bus.acknowledge_route): the same people are told the same words.

The office manages here too: routes added, edited, 停运 (kept: past trips are history); stops added,
edited, moved and removed; riders found by name or class and put on a stop or taken off; 请假 for a
student and day(s) and 销假 of one — all through handlers.bus, as the chat's 请假 and the import do."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from bot.audit import record
from bot.console import base
from bot.console.acting import field, refuse
from bot.console.base import MAX_ID, acting_person, actor, bp, chat_context, check_csrf, requires
from bot.outbox import Outbox
from bot.text import parse_day
from handlers.bus import (
    LEAVE_HORIZON,
    LEAVE_NO_ROUTE,
    BusProblem,
    acknowledge_route,
    add_route,
    add_stop,
    all_routes,
    bad_day,
    cancel_leave,
    edit_route,
    edit_stop,
    find_student,
    move_stop,
    remove_rider,
    remove_stop,
    riders,
    set_rider,
    stop_route,
    take_leave,
)
from models import Student
from models.bus import AFTERNOON, MORNING, TRIP_NAMES, BusAlarm, BusLeave, BusRoute, BusStop, BusTrip

NOTE_LIMIT = 500
RECENT_ALARMS = 20
LEAVE_TRIPS = {MORNING: "上学", AFTERNOON: "放学", "all": "全天"}
FOUND_LIMIT = 50
ROUTE_ADDED = "已添加{route}：请填写车牌、司机和跟车老师，再添加站点。"
ROUTE_SAVED = "已保存{route}：{changes}。"
ROUTE_SAME = "{route}没有改动。"
ROUTE_STOPPED = "{route}已停运：不再出现在线路和车次中，以往的车次记录保留。"
ROUTE_RESUMED = "{route}已恢复运行。"
ROUTE_RUNNING = "{route}正在运行，无需恢复。"
STOP_ADDED = "已在{route}添加站点「{name}」（第{seq}站）。"
STOP_SAVED = "已保存{route}站点「{name}」：{changes}。"
STOP_SAME = "站点「{name}」没有改动。"
STOP_MOVED = "已调整{route}站序：「{name}」现在是第{seq}站。"
STOP_AT_END = "「{name}」已经是{route}的{end}站。"
STOP_REMOVED = "已删除{route}站点「{name}」。"
RIDER_SET = "{name}（{class_name}）：{change}。"
RIDER_REMOVED = "{name}（{class_name}）不再乘坐校车：{change}。"
RIDER_NONE = "{name}没有登记校车线路。"
LEAVE_NO_STUDENT_GIVEN = "请填写学生姓名（可写「班级+姓名」，如 三(2)班陈小明）。"
LEAVE_BAD_TRIP = "趟次不对：请选择上学、放学或全天。"
LEAVE_BAD_UNTIL = "结束日期「{value}」不对：应不早于开始日期，且在今后一个月内。"
LEAVE_DONE_DAYS = "已为{name}请假 {days} 天（{first} 至 {last}，{trips}）。"
LEAVE_ALREADY_CANCELLED = "这条请假已经销假了。"
LEAVE_PAST = "{day} 已经过去，不能再销假。"
LEAVE_CANCELLED = "已为{name}销假：{day} {trips}照常乘坐校车。"


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
        stopped = list(db.scalars(select(BusRoute).where(BusRoute.stopped_at.is_not(None)).order_by(BusRoute.number)))
        query = request.args.get("q", "").strip()[:32]
        found = _search(db, query) if query else []
        all_stops = [(route, stop) for route in routes for stop in route.stops]
        return render_template("admin/bus.html", day=day, routes=routes, students=students, trips=trips,
                               alarms=alarms, open_routes=open_routes, done=done, leaves=leaves,
                               trip_names=TRIP_NAMES, leave_trips=LEAVE_TRIPS, note_limit=NOTE_LIMIT,
                               stopped=stopped, query=query, found=found, all_stops=all_stops,
                               until=day + LEAVE_HORIZON)


def _search(db: Session, query: str) -> list[Student]:
    """Students by part of their name or their class (三(2)班), as the 人员 page finds them."""
    return list(db.scalars(select(Student).where(or_(Student.name.contains(query, autoescape=True),
                                                     Student.class_name == query,
                                                     (Student.class_name + Student.name) == query))
                           .order_by(Student.class_name, Student.name).limit(FOUND_LIMIT)))


def _today() -> date:
    services = base.services()
    return services.now().astimezone(services.settings.tz).date()


def _back(anchor: str = "") -> Any:
    return redirect(url_for("console.bus", _anchor=anchor or None))


def _route(db: Session, route_id: int) -> BusRoute:
    route = db.get(BusRoute, route_id)
    if route is None:
        abort(404)
    return route


def _stop(db: Session, stop_id: int) -> BusStop:
    stop = db.get(BusStop, stop_id)
    if stop is None:
        abort(404)
    if stop.route.stopped_at is not None:
        refuse(ROUTE_STOPPED.format(route=stop.route.label))
    return stop


# -- routes -------------------------------------------------------------------------------------------------
@bp.post("/bus/routes")
@requires("admin")
def add_bus_route() -> Any:
    check_csrf()
    number = field("number", "线路号", 16)
    with base.db() as db, db.begin():
        try:
            route = add_route(db, number)
        except BusProblem as exc:
            refuse(exc.message)
        record(db, actor(), "bus_route_add", route.label, at=base.services().now())
        text = ROUTE_ADDED.format(route=route.label)
    flash(text)
    return _back(f"route-{route.number}")


@bp.post(f"/bus/routes/<int(max={MAX_ID}):route_id>/edit")
@requires("admin")
def edit_bus_route(route_id: int) -> Any:
    check_csrf()
    values = {key: field(key, label, 200) for key, label in (
        ("aliases", "别名"), ("plate", "车牌"), ("driver", "司机"), ("driver_phone", "司机电话"), ("monitors", "跟车老师"))}
    with base.db() as db, db.begin():
        route = _route(db, route_id)
        try:
            changes = edit_route(route, **values)
        except BusProblem as exc:
            refuse(exc.message)
        if changes:
            record(db, actor(), "bus_route_edit", route.label, "；".join(changes), at=base.services().now())
        text = ROUTE_SAVED.format(route=route.label, changes="；".join(changes)) if changes \
            else ROUTE_SAME.format(route=route.label)
        number = route.number
    flash(text)
    return _back(f"route-{number}")


@bp.post(f"/bus/routes/<int(max={MAX_ID}):route_id>/stop")
@requires("admin")
def stop_bus_route(route_id: int) -> Any:
    check_csrf()
    now = base.services().now()
    with base.db() as db, db.begin():
        route = _route(db, route_id)
        if route.stopped_at is not None:
            refuse(ROUTE_STOPPED.format(route=route.label))
        try:
            stop_route(db, route, now)
        except BusProblem as exc:
            refuse(exc.message)
        text = ROUTE_STOPPED.format(route=route.label)
        record(db, actor(), "bus_route_stop", route.label, text, at=now)
    flash(text)
    return _back()


@bp.post(f"/bus/routes/<int(max={MAX_ID}):route_id>/resume")
@requires("admin")
def resume_bus_route(route_id: int) -> Any:
    check_csrf()
    with base.db() as db, db.begin():
        route = _route(db, route_id)
        if route.stopped_at is None:
            refuse(ROUTE_RUNNING.format(route=route.label))
        route.stopped_at = None
        text = ROUTE_RESUMED.format(route=route.label)
        record(db, actor(), "bus_route_resume", route.label, text, at=base.services().now())
        number = route.number
    flash(text)
    return _back(f"route-{number}")


# -- stops --------------------------------------------------------------------------------------------------
def _stop_form() -> tuple[str, str, str]:
    return field("name", "站点", 64), field("am", "上学时间", 8), field("pm", "放学时间", 8)


@bp.post(f"/bus/routes/<int(max={MAX_ID}):route_id>/stops")
@requires("admin")
def add_bus_stop(route_id: int) -> Any:
    check_csrf()
    name, am, pm = _stop_form()
    with base.db() as db, db.begin():
        route = _route(db, route_id)
        if route.stopped_at is not None:
            refuse(ROUTE_STOPPED.format(route=route.label))
        try:
            stop = add_stop(db, route, name, am, pm)
        except BusProblem as exc:
            refuse(exc.message)
        text = STOP_ADDED.format(route=route.label, name=stop.name, seq=stop.seq)
        record(db, actor(), "bus_stop_add", f"{route.label} {stop.name}", text, at=base.services().now())
        number = route.number
    flash(text)
    return _back(f"route-{number}")


@bp.post(f"/bus/stops/<int(max={MAX_ID}):stop_id>/edit")
@requires("admin")
def edit_bus_stop(stop_id: int) -> Any:
    check_csrf()
    name, am, pm = _stop_form()
    with base.db() as db, db.begin():
        stop = _stop(db, stop_id)
        try:
            changes = edit_stop(db, stop, name, am, pm)
        except BusProblem as exc:
            refuse(exc.message)
        route = stop.route
        if changes:
            record(db, actor(), "bus_stop_edit", f"{route.label} {stop.name}", "；".join(changes),
                   at=base.services().now())
        text = STOP_SAVED.format(route=route.label, name=stop.name, changes="；".join(changes)) if changes \
            else STOP_SAME.format(name=stop.name)
        number = route.number
    flash(text)
    return _back(f"route-{number}")


@bp.post(f"/bus/stops/<int(max={MAX_ID}):stop_id>/move")
@requires("admin")
def move_bus_stop(stop_id: int) -> Any:
    check_csrf()
    direction = request.form.get("direction", "")
    if direction not in ("up", "down"):
        abort(400)
    with base.db() as db, db.begin():
        stop = _stop(db, stop_id)
        route = stop.route
        if not move_stop(db, stop, -1 if direction == "up" else 1):
            refuse(STOP_AT_END.format(name=stop.name, route=route.label, end="第一" if direction == "up" else "最后一"))
        text = STOP_MOVED.format(route=route.label, name=stop.name, seq=stop.seq)
        record(db, actor(), "bus_stop_move", f"{route.label} {stop.name}", text, at=base.services().now())
        number = route.number
    flash(text)
    return _back(f"route-{number}")


@bp.post(f"/bus/stops/<int(max={MAX_ID}):stop_id>/delete")
@requires("admin")
def remove_bus_stop(stop_id: int) -> Any:
    check_csrf()
    with base.db() as db, db.begin():
        stop = _stop(db, stop_id)
        route, name = stop.route, stop.name
        try:
            remove_stop(db, stop)
        except BusProblem as exc:
            refuse(exc.message)
        text = STOP_REMOVED.format(route=route.label, name=name)
        record(db, actor(), "bus_stop_remove", f"{route.label} {name}", text, at=base.services().now())
        number = route.number
    flash(text)
    return _back(f"route-{number}")


# -- riders -------------------------------------------------------------------------------------------------
def _student(db: Session, name: str) -> Student:
    student_id = base.number(request.form.get(name, ""))
    student = db.get(Student, student_id) if student_id is not None else None
    if student is None:
        abort(404)
    return student


@bp.post("/bus/riders")
@requires("admin")
def set_bus_rider() -> Any:
    check_csrf()
    stop_id = base.number(request.form.get("stop", ""))
    with base.db() as db, db.begin():
        student = _student(db, "student")
        stop = _stop(db, stop_id) if stop_id is not None else None
        if stop is None:
            abort(400)
        try:
            change = set_rider(student, stop)
        except BusProblem as exc:
            refuse(exc.message)
        text = RIDER_SET.format(name=student.name, class_name=student.class_name, change=change)
        record(db, actor(), "bus_rider_set", f"{student.class_name}{student.name}", text, at=base.services().now())
        number = stop.route.number
    flash(text)
    return _back(f"route-{number}")


@bp.post("/bus/riders/remove")
@requires("admin")
def remove_bus_rider() -> Any:
    check_csrf()
    with base.db() as db, db.begin():
        student = _student(db, "student")
        if not student.route:
            refuse(RIDER_NONE.format(name=student.name))
        number = student.route
        text = RIDER_REMOVED.format(name=student.name, class_name=student.class_name, change=remove_rider(student))
        record(db, actor(), "bus_rider_remove", f"{student.class_name}{student.name}", text, at=base.services().now())
    flash(text)
    return _back(f"route-{number}")


# -- leave (请假 / 销假) ---------------------------------------------------------------------------------------
def _leave_day(text: str, today: date) -> date:
    day = parse_day(text, today) if text else None
    if day is None or not today <= day <= today + LEAVE_HORIZON:
        refuse(bad_day(text, today))
    return day


@bp.post("/bus/leaves")
@requires("admin")
def add_bus_leave() -> Any:
    """请假 for a student on a day (or each day up to 至), one trip or both: the chat's 请假, by the signed-in
    person — the monitors' expected counts drop by the student."""
    check_csrf()
    name = field("student", "学生", 64)
    trips = request.form.get("trips", "all")
    if not name:
        refuse(LEAVE_NO_STUDENT_GIVEN)
    if trips not in LEAVE_TRIPS:
        refuse(LEAVE_BAD_TRIP)
    today = _today()
    first = _leave_day(field("day", "日期", 16), today)
    until_text = field("until", "结束日期", 16)
    last = first
    if until_text:
        last_day = parse_day(until_text, today)
        if last_day is None or not first <= last_day <= today + LEAVE_HORIZON:
            refuse(LEAVE_BAD_UNTIL.format(value=until_text))
        last = last_day
    with base.db() as db, db.begin():
        ctx = chat_context(db, acting_person(db))
        found = find_student(ctx, name)
        if isinstance(found, str):
            refuse(found)
        if not found.route:
            refuse(LEAVE_NO_ROUTE.format(name=found.name))
        days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        answers = [take_leave(ctx, found, day, trips) for day in days]
        text = answers[0] if len(days) == 1 else LEAVE_DONE_DAYS.format(
            name=found.name, days=len(days), first=f"{first:%m-%d}", last=f"{last:%m-%d}", trips=LEAVE_TRIPS[trips])
        record(db, actor(), "bus_leave", f"{found.class_name}{found.name}", text, at=ctx.now)
    flash(text)
    return _back("leaves")


@bp.post(f"/bus/leaves/<int(max={MAX_ID}):leave_id>/cancel")
@requires("admin")
def cancel_bus_leave(leave_id: int) -> Any:
    """销假 of one leave (the chat's 销假 cancels the day's; here the office picks the row)."""
    check_csrf()
    today = _today()
    now = base.services().now()
    with base.db() as db, db.begin():
        leave = db.get(BusLeave, leave_id)
        if leave is None:
            abort(404)
        if leave.cancelled_at is not None:
            refuse(LEAVE_ALREADY_CANCELLED)
        if leave.day < today:
            refuse(LEAVE_PAST.format(day=f"{leave.day:%Y-%m-%d}"))
        cancel_leave(leave, now)
        student = leave.student
        text = LEAVE_CANCELLED.format(name=student.name, day=f"{leave.day.month}月{leave.day.day}日",
                                      trips=LEAVE_TRIPS[leave.trips])
        record(db, actor(), "bus_leave_cancel", f"{student.class_name}{student.name}", text, at=now)
    flash(text)
    return _back("leaves")


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


