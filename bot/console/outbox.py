"""推送: the outbox (every delivery with its times, kind and state in Chinese, filtered and paged), 重发 of a
failed delivery, and composing a 通知 to a group with a preview of exactly what each recipient's channel
will get. The preview queues the notice in a transaction that is rolled back, so it is what 发送 does:
the same channels, the same quiet hours, the same people who cannot be reached.

The notices engine with confirmations (wave2-voice, handlers/notices.py) is not merged yet: 发送 here
queues one `office_notice` push through the outbox. When that engine lands, `_queue_notice` is the one
place to call it instead."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from bot.audit import record
from bot.console import base
from bot.console.acting import field, refuse
from bot.console.base import MAX_ID, actor, bp, check_csrf, requires
from bot.outbox import KIND_NAMES, Notice, Outbox, kind_name, quiet_until, requeue, short_reason, told
from bot.people import PersonNotFound, resolve_person
from bot.school import people_with_role
from bot.text import day_bounds
from bot.worker import custom_text
from models import Delivery, ParentLink, Person, Push, Student
from models.outbox import FAILED, PENDING, SENDING, SENT, UNDELIVERABLE

DELIVERY_STATUSES = (PENDING, SENDING, SENT, FAILED, UNDELIVERABLE)
# the outbox page's words for a delivery's status (as its filter links) and channel
DELIVERY_STATUS_NAMES = {PENDING: "待发送", SENDING: "发送中", SENT: "已送达", FAILED: "失败", UNDELIVERABLE: "无法送达"}
CHANNEL_NAMES = {"template": "模板消息", "custom": "客服消息"}
PAGE_SIZE = 50
NOTICE_KIND = "office_notice"
TEXT_LIMIT = 600
NAME_LIMIT = 64
RETRIED = "投递 {id} 已重新排队。"
NO_RETRY = "这条投递没有可以重发的微信账号（对方未绑定或已取消关注）。"
BAD_DAY = "日期「{value}」不对：请写成 2026-11-24。"
AUDIENCES = {"parents": "全体家长", "class": "某班家长", "teachers": "全体教师", "staff": "后勤职工", "person": "某个人"}
NO_AUDIENCE = "请选择发给谁。"
NO_CLASS = "请填写班级，例如：三(2)班。"
EMPTY_CLASS = "「{name}」没有已登记的家长。"
NO_PERSON = "请填写收件人姓名。"
NO_TEXT = "请填写通知内容。"
NOBODY_THERE = "这个范围里没有人。"
SENT_DONE = "通知已发出（{count} 人）：{told}"
HELD = "现在是夜间免打扰时段，家长将在 {at} 后收到。"
SHOWN_NAMES = 30


@dataclass
class Preview:
    """What sending would do, per channel: who gets it how, and who cannot be reached and why."""

    count: int
    channels: dict[str, list[str]]  # channel's words -> names
    unreached: dict[str, list[str]]  # reason -> names
    held_until: datetime | None
    template: dict[str, dict[str, str]] | None  # the template message's keywords and values
    custom: str  # the customer-service message's text


def _deliveries(status: str, kind: str, day: date | None, who: str) -> Select[Any]:
    query = select(Delivery).join(Push).order_by(Delivery.id.desc())
    if status:
        query = query.where(Delivery.status == status)
    if kind:
        query = query.where(Push.kind == kind)
    if day is not None:
        start, end = day_bounds(day, base.services().settings.tz)
        query = query.where(Push.created_at >= start, Push.created_at < end)
    if who:
        query = query.where(Delivery.person_id.in_(select(Person.id).where(Person.name.contains(who))))
    return query


@bp.get("/outbox")
@requires("admin", "bureau")
def outbox() -> str:
    status, kind, who = request.args.get("status", ""), request.args.get("kind", ""), request.args.get("who", "")
    day_text = request.args.get("day", "")
    page = base.number(request.args.get("page", "1")) or 0
    if (status and status not in DELIVERY_STATUSES) or (kind and kind not in KIND_NAMES) or page < 1 \
            or len(who) > NAME_LIMIT:
        abort(400)
    try:
        day = datetime.strptime(day_text, "%Y-%m-%d").date() if day_text else None
    except ValueError:
        abort(400)
    query = _deliveries(status, kind, day, who.strip())
    with base.read_db() as db:
        total = db.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
        deliveries = list(db.scalars(query.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).unique())
        ids = {d.person_id for d in deliveries if d.person_id}
        names = dict(db.execute(select(Person.id, Person.name).where(Person.id.in_(ids))).all()) if ids else {}
        filters = {k: v for k, v in (("status", status), ("kind", kind), ("day", day_text), ("who", who)) if v}
        return render_template("admin/outbox.html", deliveries=deliveries, names=names, status=status, kind=kind,
                               day=day_text, who=who, page=page, pages=max(1, -(-total // PAGE_SIZE)), total=total,
                               filters=filters, kind_name=kind_name, kind_names=KIND_NAMES, short_reason=short_reason,
                               status_names=DELIVERY_STATUS_NAMES, channel_names=CHANNEL_NAMES,
                               retryable=(FAILED, UNDELIVERABLE))


@bp.post(f"/outbox/<int(max={MAX_ID}):delivery_id>/retry")
@requires("admin")
def retry_delivery(delivery_id: int) -> Any:
    """Queue a delivery again, as `houqin outbox retry` does."""
    check_csrf()
    with base.db() as db, db.begin():
        delivery = db.get(Delivery, delivery_id)
        if delivery is None:
            abort(404)
        if delivery.openid.startswith("person:"):
            refuse(NO_RETRY)
        requeue(delivery, base.services().now())
        record(db, actor(), "outbox_retry", f"投递 {delivery_id}", kind_name(delivery.push.kind), at=base.services().now())
    flash(RETRIED.format(id=delivery_id))
    return redirect(request.form.get("back", "") if request.form.get("back", "").startswith("/admin/outbox")
                    else url_for("console.outbox"))


# -- 发通知 ----------------------------------------------------------------------------------------
def _audience(db: Session, form: dict[str, str]) -> tuple[list[Person], str]:
    """The people the form names, and how the audit log and the page say who they are."""
    audience = form.get("audience", "")
    if audience not in AUDIENCES:
        refuse(NO_AUDIENCE)
    if audience == "class":
        name = form.get("class_name", "")
        if not name:
            refuse(NO_CLASS)
        people = list(db.scalars(select(Person).join(ParentLink, ParentLink.person_id == Person.id)
                                 .join(Student).where(Student.class_name == name).order_by(Person.name)).unique())
        if not people:
            refuse(EMPTY_CLASS.format(name=name))
        return people, f"{name}家长"
    if audience == "person":
        name = form.get("person", "")
        if not name:
            refuse(NO_PERSON)
        try:
            person = resolve_person(db, name)
        except PersonNotFound as exc:
            refuse(exc.message)
        return [person], person.name
    role = {"parents": "parent", "teachers": "teacher", "staff": "staff"}[audience]
    people = people_with_role(db, role)
    if not people:
        refuse(NOBODY_THERE)
    return people, AUDIENCES[audience]


def _form() -> dict[str, str]:
    return {"audience": field("audience", "发给", 16), "class_name": field("class_name", "班级", NAME_LIMIT),
            "person": field("person", "收件人", NAME_LIMIT), "text": field("text", "通知内容", TEXT_LIMIT, lines=True)}


def _queue_notice(db: Session, people: list[Person], text: str, now: datetime) -> Notice:
    return Outbox(db, base.services().settings, now).notify(people, NOTICE_KIND, text, escalate=False)


def _preview(db: Session, people: list[Person], text: str, notice: Notice) -> Preview:
    settings = base.services().settings
    push = notice.push
    assert push is not None
    template = settings.templates.get(NOTICE_KIND)
    channel = CHANNEL_NAMES["template" if template is not None else "custom"]
    names = {p.id: p.name for p in people}
    unreached: dict[str, list[str]] = {}
    for person, reason in notice.unreached:
        unreached.setdefault(short_reason(reason), []).append(person.name)
    return Preview(len(people), {channel: [names[p.id] for p in notice.reached]}, unreached, notice.held_until,
                   template.render(push.fields or {}) if template is not None else None, custom_text(push, settings))


@bp.route("/outbox/compose", methods=["GET", "POST"])
@requires("admin")
def compose() -> Any:
    """GET: the form. POST 预览: what each channel will send, to whom; POST 发送: queue it."""
    services = base.services()
    now = services.now()
    if request.method == "GET":
        return render_template("admin/compose.html", form={}, preview=None, audiences=AUDIENCES,
                               quiet=quiet_until(now, services.settings), shown=SHOWN_NAMES)
    check_csrf()
    form = _form()
    if not form["text"]:
        refuse(NO_TEXT)
    sending = request.form.get("action") == "send"
    with base.db() as db:
        db.begin()
        try:
            people, who = _audience(db, form)
            notice = _queue_notice(db, people, form["text"], now)
            if not sending:
                preview = _preview(db, people, form["text"], notice)
                return render_template("admin/compose.html", form=form, preview=preview, audiences=AUDIENCES,
                                       quiet=quiet_until(now, services.settings), shown=SHOWN_NAMES, who=who)
            record(db, actor(), "notice_send", who, form["text"], at=base.services().now())
            db.commit()
        finally:
            if db.in_transaction():
                db.rollback()  # a preview (or a refusal) leaves nothing behind
    result = SENT_DONE.format(count=len(people), told=told(notice))
    if notice.held_until is not None:
        result += HELD.format(at=f"{notice.held_until.astimezone(services.settings.tz):%m-%d %H:%M}")
    flash(result)
    return redirect(url_for("console.outbox", kind=NOTICE_KIND))
