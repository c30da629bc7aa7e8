"""A push's detail page `/p/<token>`: its whole text and when it was sent, and for a repair push the
ticket's current status and history, for a menu push the week's menu. Phone-sized and Chinese like the
menu page (bot.menu_page). The token (bot.outbox.new_page_token) is the only key: the page is not
indexed, sends no Referer onward, and closes `push_page_days` (a school setting) after the push; an
unknown token is 404, an expired one 410, both a Chinese page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Blueprint, Response, make_response, redirect, render_template
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.county import request_services
from bot.menu_page import week_view
from bot.outbox import MENU_SUBJECT, PAGE_PATH, REPAIR_SUBJECT, kind_name
from bot.school import get_setting
from bot.services import Services
from handlers.notices import NOTICE_SUBJECT, confirm_from_page
from handlers.repair.rules import local_label
from models import MenuWeek, NoticeRecipient, Push, RepairTicket
from models.repair import COMPLETION, FOLLOW_UP, REPORT, STATUS_NAMES, WITHDRAWAL

bp = Blueprint("push_page", __name__)

UNKNOWN_TITLE = "页面不存在"
UNKNOWN = "没有找到这条推送。请核对链接是否完整，或在公众号中查看原消息。"
EXPIRED_TITLE = "页面已过期"
EXPIRED = "这条推送的详情页已过期（推送后保留{days}天）。如需了解详情，请联系学校后勤处。"
SENT_AT = "{when} 推送 · 后勤处"
TICKET_TITLE = "报修单 {code} · {status}"
# a ticket's history, one line per step
FILED = "{who}报修"
FILED_HAZARD = "{who}登记安全隐患"
ACCEPTED = "{who}接单"
DONE = "已修好{note}"
CLOSED = "已关闭{rating}"
RATED = "（评分 {rating} 分）"
EVENTS = {FOLLOW_UP: "{who}补充：{text}", WITHDRAWAL: "{who}撤销{text}"}
OTHER_EVENT = "{who}：{text}"
PHOTOS = {REPORT: "报修照片 {n} 张", COMPLETION: "完成照片 {n} 张"}
SOMEONE = "（未知）"
NOTICE_CONFIRM = "请点下面的按钮，或在公众号中回复「收到 {code}」确认已阅（回执）。"
NOTICE_CONFIRMED = "你已于 {at} 确认收到。"
NOTICE_BUTTON = "确认收到"


@dataclass
class Step:
    at: datetime
    text: str


def _services() -> Services:
    """The school the URL names (/s/<school>/…), else the default school (bot.county)."""
    return request_services()


def _private(response: Response) -> Response:
    """Nothing on the page leaves by a Referer; nobody caches it for others."""
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


def _gone(status: int, title: str, text: str) -> Response:
    return _private(make_response(render_template("push_gone.html", title=title, text=text, private=True), status))


def history(ticket: RepairTicket) -> list[Step]:
    """The ticket's steps so far, oldest first: filing, follow-ups, acceptance, completion, closing."""
    reporter = ticket.reporter.name if ticket.reporter else SOMEONE
    steps = [Step(ticket.filed_at, (FILED_HAZARD if ticket.hazard else FILED).format(who=reporter))]
    if ticket.accepted_at is not None:
        who = ticket.assignee.name if ticket.assignee else SOMEONE
        steps.append(Step(ticket.accepted_at, ACCEPTED.format(who=who)))
    if ticket.done_at is not None:
        steps.append(Step(ticket.done_at, DONE.format(note=f"：{ticket.note}" if ticket.note else "")))
    if ticket.closed_at is not None:
        rating = RATED.format(rating=ticket.rating) if ticket.rating else ""
        steps.append(Step(ticket.closed_at, CLOSED.format(rating=rating)))
    for event in ticket.events:
        text = event.text if event.kind == FOLLOW_UP else f"（{event.text}）" if event.text else ""
        steps.append(Step(event.created_at, EVENTS.get(event.kind, OTHER_EVENT).format(who=event.who, text=text)))
    return sorted(steps, key=lambda s: s.at)


def photo_counts(ticket: RepairTicket) -> list[str]:
    counts = {kind: sum(1 for p in ticket.photos if p.kind == kind) for kind in PHOTOS}
    return [PHOTOS[kind].format(n=n) for kind, n in counts.items() if n]


def _subject(db: Session, push: Push, services: Services) -> dict[str, object]:
    """What the page shows beside the text: the ticket or the week, as they are now."""
    if push.subject == REPAIR_SUBJECT and push.subject_id is not None:
        ticket = db.get(RepairTicket, push.subject_id)
        if ticket is not None:
            tz = services.settings.tz
            return {"ticket": ticket,
                    "ticket_title": TICKET_TITLE.format(code=ticket.code, status=STATUS_NAMES[ticket.status]),
                    "steps": [(local_label(tz, s.at), s.text) for s in history(ticket)],
                    "photos": photo_counts(ticket)}
    if push.subject == MENU_SUBJECT and push.subject_id is not None:
        week = db.get(MenuWeek, push.subject_id)
        if week is not None and week.published and week.items:
            today = services.now().astimezone(services.settings.tz).date()
            menu_title, days, allergens = week_view(week, today)
            return {"week": week, "menu_title": menu_title, "days": days, "allergens": allergens}
    if push.subject == NOTICE_SUBJECT and push.subject_id is not None:
        row = db.get(NoticeRecipient, push.subject_id)
        if row is not None:
            tz = services.settings.tz
            confirmed = (NOTICE_CONFIRMED.format(at=local_label(tz, row.confirmed_at))
                         if row.confirmed_at is not None else "")
            return {"notice": row.notice, "notice_confirmed": confirmed,
                    "notice_confirm": NOTICE_CONFIRM.format(code=row.notice.code)
                    if row.notice.confirm and row.confirmed_at is None else "",
                    "confirm_label": NOTICE_BUTTON}
    return {}


@bp.get(f"{PAGE_PATH}<token>")
def show(token: str) -> Response:
    services = _services()
    with services.read_factory() as db:
        push = db.scalar(select(Push).where(Push.token == token)) if token else None
        if push is None:
            return _gone(404, UNKNOWN_TITLE, UNKNOWN)
        days = int(get_setting(db, "push_page_days"))
        if services.now() >= push.created_at + timedelta(days=days):
            return _gone(410, EXPIRED_TITLE, EXPIRED.format(days=days))
        page = render_template("push.html", title=kind_name(push.kind), push=push, private=True,
                               sent=SENT_AT.format(when=local_label(services.settings.tz, push.created_at)),
                               **_subject(db, push, services))
    return _private(make_response(page))


@bp.post(f"{PAGE_PATH}<token>/confirm")
def confirm(token: str) -> Response:
    """确认收到 on a notice's page: the page's token is the recipient's own (one push each), so it is the 回执."""
    services = _services()
    with services.factory() as db, db.begin():
        push = db.scalar(select(Push).where(Push.token == token)) if token else None
        if push is None or push.subject != NOTICE_SUBJECT or push.subject_id is None:
            return _gone(404, UNKNOWN_TITLE, UNKNOWN)
        days = int(get_setting(db, "push_page_days"))
        if services.now() >= push.created_at + timedelta(days=days):
            return _gone(410, EXPIRED_TITLE, EXPIRED.format(days=days))
        row = db.get(NoticeRecipient, push.subject_id)
        if row is None:
            return _gone(404, UNKNOWN_TITLE, UNKNOWN)
        confirm_from_page(db, row, services.now())
    return _private(redirect(f"{PAGE_PATH}{token}", code=303))  # type: ignore[arg-type]
