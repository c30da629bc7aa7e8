"""推送: the outbox (every delivery with its times, kind and state in Chinese, filtered and paged), 重发 of a
failed delivery, and composing a 通知 to a group with a preview of exactly what each recipient's channel
will get. The preview queues the notice in a transaction that is rolled back, so it is what 发送 does:
the same channels, the same quiet hours, the same people who cannot be reached.

A notice is sent through the notices engine (handlers.notices.send_notice): it gets its N<n>, its page
and, when asked, its 回执, exactly as 「发通知」 from the chat or `houqin notices`."""

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
from bot.console.base import MAX_ID, acting_person, actor, bp, check_csrf, requires
from bot.outbox import KIND_NAMES, Outbox, kind_name, quiet_until, requeue, short_reason
from bot.text import day_bounds
from bot.worker import custom_text
from handlers.notices import (
    ALL_PARENTS,
    EVERY_STAFF,
    NOTICE_KIND,
    NOTICE_SUBJECT,
    STAFF,
    TEACHERS,
    AudienceError,
    Sent,
    resolve_audience,
    send_notice,
)
from models import Delivery, Person, Push
from models.outbox import FAILED, PENDING, SENDING, SENT, UNDELIVERABLE

DELIVERY_STATUSES = (PENDING, SENDING, SENT, FAILED, UNDELIVERABLE)
# the outbox page's words for a delivery's status (as its filter links) and channel
DELIVERY_STATUS_NAMES = {PENDING: "待发送", SENDING: "发送中", SENT: "已送达", FAILED: "失败", UNDELIVERABLE: "无法送达"}
CHANNEL_NAMES = {"template": "模板消息", "custom": "客服消息"}
PAGE_SIZE = 50
TEXT_LIMIT = 1000
TITLE_LIMIT = 100
NAME_LIMIT = 64
RETRIED = "投递 {id} 已重新排队。"
NO_RETRY = "这条投递没有可以重发的微信账号（对方未绑定或已取消关注）。"
BAD_DAY = "日期「{value}」不对：请写成 2026-11-24。"
AUDIENCES = {"parents": "全体家长", "class": "某班家长", "teachers": "全体教师", "staff": "后勤人员",
             "everyone": "全体教职工", "person": "某个人"}
AUDIENCE_WORDS = {"parents": ALL_PARENTS[0], "teachers": TEACHERS[0], "staff": STAFF[0], "everyone": EVERY_STAFF[0]}
NO_AUDIENCE = "请选择发给谁。"
NO_CLASS = "请填写班级，例如：三(2)班。"
NO_PERSON = "请填写收件人姓名。"
NO_TITLE = "请填写通知标题。"
NOBODY_REACHED = "这个范围里没有人。"
SENT_DONE = "通知 {code} 已发出（{count} 人）：{told}"
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
def _audience_words(form: dict[str, str]) -> str:
    """The form's choice as the notices engine's audience words (handlers.notices.resolve_audience)."""
    audience = form["audience"]
    if audience not in AUDIENCES:
        refuse(NO_AUDIENCE)
    if audience == "class":
        if not form["class_name"]:
            refuse(NO_CLASS)
        return f"{form['class_name']}家长"
    if audience == "person":
        if not form["person"]:
            refuse(NO_PERSON)
        return form["person"]
    return AUDIENCE_WORDS[audience]


def _form() -> dict[str, str]:
    return {"audience": field("audience", "发给", 16), "class_name": field("class_name", "班级", NAME_LIMIT),
            "person": field("person", "收件人", NAME_LIMIT), "title": field("title", "标题", TITLE_LIMIT),
            "body": field("body", "通知内容", TEXT_LIMIT, lines=True),
            "confirm": "1" if request.form.get("confirm") else ""}


def _preview(db: Session, sent: Sent, now: datetime) -> Preview:
    """What the queued notice's deliveries say each recipient's channel will do."""
    settings = base.services().settings
    rows = [r.id for r in sent.notice.recipients]
    pushes = list(db.scalars(select(Push).where(Push.subject == NOTICE_SUBJECT, Push.subject_id.in_(rows))
                             .order_by(Push.id))) if rows else []
    if not pushes:
        refuse(NOBODY_REACHED)
    push = pushes[0]  # every recipient's copy has the same text and fields; the deliveries are spread over them
    deliveries = [d for p in pushes for d in p.deliveries]
    template = settings.templates.get(push.kind)
    channel = CHANNEL_NAMES["template" if template is not None else "custom"]
    names = {r.person_id: r.name for r in sent.notice.recipients}
    reached: dict[int, str] = {}
    unreached: dict[str, list[str]] = {}
    held = None
    for delivery in deliveries:
        name = names.get(delivery.person_id, delivery.openid)
        if delivery.status == UNDELIVERABLE:
            continue
        reached.setdefault(delivery.person_id or 0, name)
        if delivery.next_attempt_at > now:
            held = delivery.next_attempt_at
    for delivery in deliveries:
        if delivery.status == UNDELIVERABLE and (delivery.person_id or 0) not in reached:
            unreached.setdefault(short_reason(delivery.last_error or ""), []).append(
                names.get(delivery.person_id, delivery.openid))
    unreached = {reason: list(dict.fromkeys(people)) for reason, people in unreached.items()}
    return Preview(len(sent.notice.recipients), {channel: list(reached.values())}, unreached, held,
                   template.render(push.fields or {}) if template is not None else None, custom_text(push, settings))


@bp.route("/outbox/compose", methods=["GET", "POST"])
@requires("admin")
def compose() -> Any:
    """GET: the form. POST 预览: what each channel will send, to whom (the notice is queued in a
    transaction rolled back); POST 发送: the same, committed — notice N<n> with its 回执 when asked."""
    services = base.services()
    now = services.now()
    quiet = quiet_until(now, services.settings)
    if request.method == "GET":
        return render_template("admin/compose.html", form={"confirm": "1"}, preview=None, audiences=AUDIENCES,
                               quiet=quiet, shown=SHOWN_NAMES)
    check_csrf()
    form = _form()
    if not form["title"]:
        refuse(NO_TITLE)
    words = _audience_words(form)
    sending = request.form.get("action") == "send"
    with base.db() as db:
        db.begin()
        try:
            try:
                audience = resolve_audience(db, words)
            except AudienceError as exc:
                refuse(str(exc))
            sent = send_notice(db, Outbox(db, services.settings, now), acting_person(db), audience,
                               form["title"], form["body"], confirm=bool(form["confirm"]))
            if not sending:
                return render_template("admin/compose.html", form=form, preview=_preview(db, sent, now),
                                       audiences=AUDIENCES, quiet=quiet, shown=SHOWN_NAMES, who=audience.label)
            record(db, actor(), "notice_send", f"{sent.notice.code} {audience.label}",
                   f"{form['title']}\n{form['body']}", at=now)
            code, count, told = sent.notice.code, len(audience.people), sent.told
            db.commit()
        finally:
            if db.in_transaction():
                db.rollback()  # a preview (or a refusal) leaves nothing behind
    flash(SENT_DONE.format(code=code, count=count, told=told))
    return redirect(url_for("console.outbox", kind=NOTICE_KIND))
