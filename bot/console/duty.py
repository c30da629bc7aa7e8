"""值日: the posts and their QR codes, the weekly roster as an editable grid (weekday × slot × post), dated
overrides, today's check-ins and the month's missed duties per teacher. Names are resolved as the roster
import resolves them (bot.people.resolve_person), and a grid with one wrong name changes nothing."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from flask import Response, abort, flash, redirect, render_template, request, send_file, url_for
from sqlalchemy import select

from bot.audit import record
from bot.console import base
from bot.console.acting import field, refuse
from bot.console.base import MAX_ID, actor, bp, check_csrf, month_asked, requires
from bot.people import PersonNotFound, resolve_person
from bot.school import duty_slots
from bot.text import month_key, month_span
from handlers.duty import (
    DUTY_ROLES,
    MISSED,
    PostProblem,
    add_post,
    all_posts,
    duty_ledger,
    rename_post,
    rostered_on,
    shift_status,
    stop_post,
)
from models import Person, PersonRole
from models.duty import METHOD_NAMES, DutyOverride, DutyPost, DutyRoster, DutyShift

WEEKDAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
SCHOOL_WEEKDAYS = range(5)
NAME_LIMIT = 64
NOTE_LIMIT = 200
BAD_CELL = "{weekday}{slot}「{post}」：{problem}"
ROSTER_SAVED = "值日表已保存：改动 {count} 处。"
ROSTER_SAME = "值日表没有改动。"
BAD_DATE = "日期「{value}」不对：请写成 2026-12-14。"
BAD_SLOT = "时段「{value}」不在设置的时段中（{slots}）。"
NO_TEACHER = "请填写值日教师。"
OVERRIDE_SAVED = "已安排 {day} {slot} {post}：{name}。"
OVERRIDE_REMOVED = "已删除 {day} {slot} {post} 的调整，恢复按周值日表。"
PAST_DAY = "{day} 已经过去，不能再调整。"
QR_MISSING = "未生成（点「生成并下载岗位二维码」，或 houqin qr posts --out 文件.pdf）"
POST_ADDED = "已添加岗位「{name}」：把它排进值日表，再生成二维码贴到岗位上。"
POST_RENAMED = "岗位「{old}」已改名为「{name}」（已贴的二维码仍然有效）。"
POST_SAME = "岗位名称没有改动。"
POST_STOPPED = "岗位「{name}」已停用：不再出现在值日表和签到中，以往的签到记录保留。"
QR_TITLE = "值日岗位二维码"
QR_HEADING, QR_HINT = "值日签到 · 岗位", "微信扫一扫 · 签到"  # as `houqin qr posts` prints them
QR_REFUSED = "微信未能生成二维码：{error}"
QR_NO_POSTS = "还没有登记值日岗位：请先添加岗位。"
QR_MADE = "{count} 个二维码（新建 {created} 个），{pages} 页"


def _cell(weekday: int, slot: int, post_id: int) -> str:
    return f"r-{weekday}-{slot}-{post_id}"


@bp.get("/duty")
@requires("admin", "bureau")
def duty() -> str:
    services = base.services()
    tz = services.settings.tz
    today = services.now().astimezone(tz).date()
    month = month_asked(request.args.get("month", ""), today)
    with base.read_db() as db:
        slots = duty_slots(db)
        posts = all_posts(db)
        roster = {(r.weekday, r.slot, r.post_id): r.person.name for r in db.scalars(select(DutyRoster))}
        overrides = list(db.scalars(select(DutyOverride).where(DutyOverride.day >= today)
                                    .order_by(DutyOverride.day, DutyOverride.slot)))
        shifts = {(s.slot, s.post_id): s for s in db.scalars(select(DutyShift).where(DutyShift.day == today))}
        by_slot = {s.name: s for s in slots}
        now_today = []
        for plan in rostered_on(db, today):
            shift = shifts.get((plan.slot, plan.post.id))
            status, checkin = shift_status(shift, by_slot, tz) if shift is not None and shift.checkins else ("", None)
            now_today.append({"plan": plan, "shift": shift, "first": checkin, "status": status})
        _, teachers = duty_ledger(db, month, tz)
        missed = [t for t in teachers if t[4]]
        teachers_known = list(db.scalars(select(Person.name).join(PersonRole).where(PersonRole.role.in_(DUTY_ROLES))
                                          .distinct().order_by(Person.name)))
        first, after = month_span(month)
        return render_template("admin/duty.html", today=today, slots=slots, posts=posts, roster=roster,
                               weekdays=WEEKDAYS, school_weekdays=SCHOOL_WEEKDAYS, cell=_cell, overrides=overrides,
                               now_today=now_today, method_names=METHOD_NAMES, missed=missed, month=month,
                               earlier=month_key(first - timedelta(days=1)), later=month_key(after),
                               names=teachers_known, qr_missing=QR_MISSING, missed_word=MISSED)


@bp.post("/duty/roster")
@requires("admin")
def save_roster() -> Any:
    """The whole grid at once: a filled cell sets that weekday × slot × post's teacher, an emptied one
    removes it. Any name that fits nobody (or several people) refuses the grid with every problem."""
    check_csrf()
    with base.db() as db, db.begin():
        slots = duty_slots(db)
        posts = all_posts(db)
        existing = {(r.weekday, r.slot, r.post_id): r for r in db.scalars(select(DutyRoster))}
        wanted: dict[tuple[int, str, int], Person | None] = {}
        problems = []
        for weekday in SCHOOL_WEEKDAYS:
            for index, slot in enumerate(slots):
                for post in posts:
                    name = field(_cell(weekday, index, post.id), "值日教师", NAME_LIMIT)
                    key = (weekday, slot.name, post.id)
                    if not name:
                        wanted[key] = None
                        continue
                    try:
                        wanted[key] = resolve_person(db, name)
                    except PersonNotFound as exc:
                        problems.append(BAD_CELL.format(weekday=WEEKDAYS[weekday], slot=slot.name, post=post.name,
                                                        problem=exc.message))
        if problems:
            refuse("；".join(problems))
        changes = []
        for key, person in wanted.items():
            row = existing.get(key)
            if person is None and row is not None:
                changes.append(f"{WEEKDAYS[key[0]]}{key[1]}{row.post.name}：{row.person.name}→（空）")
                db.delete(row)
            elif person is not None and (row is None or row.person_id != person.id):
                before = row.person.name if row is not None else "（空）"
                if row is None:
                    db.add(DutyRoster(weekday=key[0], slot=key[1], post_id=key[2], person=person))
                else:
                    row.person = person
                post_name = next(p.name for p in posts if p.id == key[2])
                changes.append(f"{WEEKDAYS[key[0]]}{key[1]}{post_name}：{before}→{person.name}")
        if changes:
            record(db, actor(), "duty_roster", "值日表", "；".join(changes), at=base.services().now())
    flash(ROSTER_SAVED.format(count=len(changes)) if changes else ROSTER_SAME)
    return redirect(url_for("console.duty"))


def _day(text: str, today: date) -> date:
    try:
        day = datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        refuse(BAD_DATE.format(value=text))
    if day < today:
        refuse(PAST_DAY.format(day=f"{day:%Y-%m-%d}"))
    return day


@bp.post("/duty/overrides")
@requires("admin")
def add_override() -> Any:
    """A dated change: this day, slot and post are someone else's (an override replaces the one before)."""
    check_csrf()
    services = base.services()
    today = services.now().astimezone(services.settings.tz).date()
    day = _day(field("day", "日期", 10), today)
    slot, name = field("slot", "时段", 16), field("teacher", "值日教师", NAME_LIMIT)
    note = field("note", "备注", NOTE_LIMIT)
    post_id = base.number(field("post", "岗位", 10))
    with base.db() as db, db.begin():
        names = [s.name for s in duty_slots(db)]
        if slot not in names:
            refuse(BAD_SLOT.format(value=slot, slots="、".join(names)))
        post = db.get(DutyPost, post_id) if post_id is not None else None
        if post is None:
            abort(400)
        if not name:
            refuse(NO_TEACHER)
        try:
            person = resolve_person(db, name)
        except PersonNotFound as exc:
            refuse(exc.message)
        over = db.scalar(select(DutyOverride).where(DutyOverride.day == day, DutyOverride.slot == slot,
                                                    DutyOverride.post_id == post.id))
        if over is None:
            db.add(DutyOverride(day=day, slot=slot, post=post, person=person, note=note))
        else:
            over.person, over.note = person, note
        text = OVERRIDE_SAVED.format(day=f"{day:%Y-%m-%d}", slot=slot, post=post.name, name=person.name)
        record(db, actor(), "duty_override", f"{day:%Y-%m-%d} {slot} {post.name}", text, at=base.services().now())
    flash(text)
    return redirect(url_for("console.duty"))


@bp.post(f"/duty/overrides/<int(max={MAX_ID}):override_id>/delete")
@requires("admin")
def delete_override(override_id: int) -> Any:
    check_csrf()
    services = base.services()
    today = services.now().astimezone(services.settings.tz).date()
    with base.db() as db, db.begin():
        over = db.get(DutyOverride, override_id)
        if over is None:
            abort(404)
        if over.day < today:
            refuse(PAST_DAY.format(day=f"{over.day:%Y-%m-%d}"))
        text = OVERRIDE_REMOVED.format(day=f"{over.day:%Y-%m-%d}", slot=over.slot, post=over.post.name)
        record(db, actor(), "duty_override_delete", f"{over.day:%Y-%m-%d} {over.slot} {over.post.name}", text, at=base.services().now())
        db.delete(over)
    flash(text)
    return redirect(url_for("console.duty"))


@bp.get(f"/duty/posts/<int(max={MAX_ID}):post_id>/qr.svg")
@requires("admin", "bureau")
def post_qr(post_id: int) -> Response:
    """The post's check-in code as an SVG (the code WeChat made for it, drawn here: no outside image)."""
    from reportlab.graphics import renderSVG
    from reportlab.graphics.barcode.qr import QrCodeWidget
    from reportlab.graphics.shapes import Drawing

    with base.read_db() as db:
        post = db.get(DutyPost, post_id)
        if post is None or not post.qr_url:
            abort(404)
        url = post.qr_url
    widget = QrCodeWidget(url, barLevel="M")
    x1, y1, x2, y2 = widget.getBounds()
    size = 200
    drawing = Drawing(size, size, transform=[size / (x2 - x1), 0, 0, size / (y2 - y1), 0, 0])
    drawing.add(widget)
    return Response(renderSVG.drawToString(drawing), mimetype="image/svg+xml")


# -- posts and their QR sheet -------------------------------------------------------------------------------
def _post(db: Any, post_id: int) -> DutyPost:
    post = db.get(DutyPost, post_id)
    if post is None or post.stopped_at is not None:
        abort(404)
    return post


@bp.post("/duty/posts")
@requires("admin")
def add_duty_post() -> Any:
    check_csrf()
    name = field("name", "岗位名称", 200)
    with base.db() as db, db.begin():
        try:
            post = add_post(db, name)
        except PostProblem as exc:
            refuse(exc.message)
        text = POST_ADDED.format(name=post.name)
        record(db, actor(), "duty_post_add", post.name, text, at=base.services().now())
    flash(text)
    return redirect(url_for("console.duty", _anchor="posts"))


@bp.post(f"/duty/posts/<int(max={MAX_ID}):post_id>/rename")
@requires("admin")
def rename_duty_post(post_id: int) -> Any:
    check_csrf()
    name = field("name", "岗位名称", 200)
    with base.db() as db, db.begin():
        post = _post(db, post_id)
        try:
            old = rename_post(db, post, name)
        except PostProblem as exc:
            refuse(exc.message)
        text = POST_RENAMED.format(old=old, name=post.name) if old != post.name else POST_SAME
        if old != post.name:
            record(db, actor(), "duty_post_rename", post.name, f"{old}→{post.name}", at=base.services().now())
    flash(text)
    return redirect(url_for("console.duty", _anchor="posts"))


@bp.post(f"/duty/posts/<int(max={MAX_ID}):post_id>/stop")
@requires("admin")
def stop_duty_post(post_id: int) -> Any:
    check_csrf()
    services = base.services()
    now = services.now()
    with base.db() as db, db.begin():
        post = _post(db, post_id)
        try:
            stop_post(db, post, now.astimezone(services.settings.tz).date(), now)
        except PostProblem as exc:
            refuse(exc.message)
        text = POST_STOPPED.format(name=post.name)
        record(db, actor(), "duty_post_stop", post.name, text, at=now)
    flash(text)
    return redirect(url_for("console.duty", _anchor="posts"))


@bp.post("/duty/posts/qr.pdf")
@requires("admin")
def duty_qr_sheet() -> Any:
    """Every post's check-in code on A4 to print: the codes still missing are made through WeChat (and kept,
    so printing again reuses them) and drawn by bot/qrsheet.py — the same sheet as `houqin qr posts`."""
    import io

    from bot.county import scene_for
    from bot.fonts import FontMissing
    from bot.qrsheet import ensure_codes, post_card, render_sheet
    from bot.wechat.gateway import ApiError

    check_csrf()
    services = base.services()
    try:
        cards, created = ensure_codes(services.factory, services.api, DutyPost, "post", post_card,
                                      prefix=scene_for(services, ""))
    except ApiError as exc:
        refuse(QR_REFUSED.format(error=exc), 502)
    if not cards:
        refuse(QR_NO_POSTS, 404)
    pdf = io.BytesIO()
    try:
        pages = render_sheet(cards, pdf, QR_HEADING, QR_HINT)
    except FontMissing as exc:
        refuse(str(exc), 502)
    with base.db() as db, db.begin():
        record(db, actor(), "duty_qr_sheet", QR_TITLE, QR_MADE.format(count=len(cards), created=created, pages=pages),
               at=services.now())
    pdf.seek(0)
    return send_file(pdf, mimetype="application/pdf", as_attachment=True, download_name=f"{QR_TITLE}.pdf")
