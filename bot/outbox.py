"""Queueing pushes: a row per push and per recipient, written in the caller's transaction.

Nothing here talks to WeChat; bot.worker delivers. Parents' pushes that are not safety alerts
wait out the quiet hours (default 21:00-07:00, school time) and go when they end.

`Outbox.notify` also says who the push can reach: a bound, following person, by a template when
the push's kind has one, else by a customer-service message while their 48-hour window is open.
Whoever cannot be reached is recorded as undeliverable at once; for safety pushes (and whenever
the caller asks) the office is told another way: a push to the other admins (and the bus manager
or the canteen head, as fitting) and a DeliveryAlert row, shown on the console until acknowledged.
`told()` phrases a Notice for a reply, so a reply says only what happened.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Connection, and_, func, insert, or_, select
from sqlalchemy.orm import Session

from bot.push_kinds import PUSH_KINDS, push_fields
from bot.school import admins, people_with_role, setting_person
from bot.text import clock_time
from models import Binding, Delivery, DeliveryAlert, InboundMessage, MenuWeek, Person, Push, RepairTicket
from models.outbox import FAILED, PENDING, SENT, UNDELIVERABLE

if TYPE_CHECKING:
    from collections.abc import Mapping

    from bot.config import Settings

NOT_BOUND = "未绑定微信"
NOT_FOLLOWING = "已取消关注公众号"
REPLY_KIND = "reply"  # a reply pushed because it could not be the webhook's answer
REPLY_KIND = "reply"  # a reply pushed because it could not be the webhook's answer
UNSUBSCRIBED = "用户已取消关注或拒收"
WINDOW_CLOSED = "客服消息窗口已关闭（48小时内无互动或已达5条上限），且该类推送未配置模板"
# the same reasons, short enough for a reply
SHORT_REASONS = {WINDOW_CLOSED: "48小时内未与公众号互动，且该类推送未配置模板", UNSUBSCRIBED: "已取消关注或拒收消息"}

WINDOW = timedelta(hours=48)
WINDOW_BUDGET = 5
# What opens the 48-hour window, as WeChat lists it: any message from the user, following, scanning
# a QR code, and the click / scan-code menu events. Not VIEW, LOCATION reports, unsubscribing or
# WeChat's own TEMPLATESENDJOBFINISH notices, which also arrive "from" the user.
WINDOW_EVENTS = ("subscribe", "scan", "click", "scancode_push", "scancode_waitmsg")

ESCALATION_KIND = "delivery_alert"
PAGE_PATH = "/p/"  # a push's detail page: bot.push_page
REPAIR_SUBJECT, MENU_SUBJECT = "repair", "menu"  # what a push's page shows beside its text
# -- how a reply says what happened (told())
TOLD = "已通知{names}"
UNREACHED = "{names}暂时无法送达（{reason}）"
OFFICE_TOLD = "已告知{names}"
OFFICE_CONSOLE = "已在后勤控制台标红提醒"
NOBODY = "暂无可通知的人"
ESCALATION = "【推送未送达】{what}未能送达{names}（{reasons}），请电话或当面转告。\n原文：{text}"
NO_TEMPLATES = ("未配置模板消息（HOUQIN_TEMPLATES）：48小时内没有给公众号发过消息的人，收不到以下推送："
                "{kinds}。请在公众号后台申请模板并配置。")

# Every push kind, by its Chinese name (the console, `houqin serve` and escalations name them);
# each kind's named fields are declared in bot.push_kinds.
SAFETY_KINDS = {kind: declared.name for kind, declared in PUSH_KINDS.items() if declared.safety}
KIND_NAMES = {kind: declared.name for kind, declared in PUSH_KINDS.items()}


def kind_name(kind: str) -> str:
    return KIND_NAMES.get(kind, kind)


def kinds_without_template(templates: Mapping[str, object]) -> list[str]:
    """The known push kinds that have no template, safety pushes first."""
    return [k for k in KIND_NAMES if k not in templates]


def template_warning(settings: Settings) -> str | None:
    """What `houqin serve` and the console say when push kinds lack a template; None when all have one."""
    missing = kinds_without_template(settings.templates)
    if not missing:
        return None
    return NO_TEMPLATES.format(kinds="、".join(kind_name(k) for k in missing))


def quiet_until(now: datetime, settings: Settings) -> datetime | None:
    """If `now` falls in the quiet hours, the UTC moment they end; else None."""
    local = now.astimezone(settings.tz)
    start, end = clock_time(settings.quiet_start), clock_time(settings.quiet_end)
    t = local.time()
    inside = (t >= start or t < end) if start > end else (start <= t < end)
    if not inside:
        return None
    day = local.date() if t < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=settings.tz).astimezone(now.tzinfo)


def held_for_quiet_hours(person: Person) -> bool:
    """Quiet hours protect parents; someone who also works at the school is reached at once."""
    roles = person.role_set
    return "parent" in roles and roles <= {"parent"}


def windows(db: Session, openids: list[str], now: datetime) -> dict[str, tuple[datetime | None, int]]:
    """Per openid: the last time the user wrote to us within 48 hours, and the customer-service
    messages sent since (one query). The worker and the outbox judge the window the same way."""
    result: dict[str, tuple[datetime | None, int]] = dict.fromkeys(openids, (None, 0))
    for chunk in chunks(openids):
        last = (select(InboundMessage.openid, func.max(InboundMessage.received_at).label("since"))
                .where(InboundMessage.openid.in_(chunk), InboundMessage.received_at > now - WINDOW,
                       or_(InboundMessage.msg_type != "event", InboundMessage.event.in_(WINDOW_EVENTS)))
                .group_by(InboundMessage.openid).subquery())
        rows = db.execute(
            select(last.c.openid, last.c.since, func.count(Delivery.id))
            .outerjoin(Delivery, and_(Delivery.openid == last.c.openid, Delivery.channel == "custom",
                                      Delivery.status == SENT, Delivery.sent_at >= last.c.since))
            .group_by(last.c.openid, last.c.since))
        result.update({openid: (since, int(sent)) for openid, since, sent in rows})
    return result


def chunks(items: list[str], size: int = 500) -> Iterable[list[str]]:
    """`items` in slices small enough for one IN (...) on every backend."""
    return (items[i:i + size] for i in range(0, len(items), size))


def short_reason(reason: str) -> str:
    return SHORT_REASONS.get(reason, reason)


@dataclass
class Notice:
    """What one or more `notify` calls did: who a channel reaches, who it cannot (and why), and
    whether the office was told of the latter."""

    push: Push | None = None
    reached: list[Person] = field(default_factory=list)
    unreached: list[tuple[Person, str]] = field(default_factory=list)
    held_until: datetime | None = None  # quiet hours hold the push to a reached recipient until then
    escalated: bool = False  # the unreached were recorded for the office (console banner, digest)
    office: list[Person] = field(default_factory=list)  # whom the escalation push reaches

    def __add__(self, other: Notice) -> Notice:
        seen = {p.id for p in self.reached} | {p.id for p, _ in self.unreached}
        return Notice(self.push or other.push,
                      self.reached + [p for p in other.reached if p.id not in seen],
                      self.unreached + [(p, r) for p, r in other.unreached if p.id not in seen],
                      self.held_until or other.held_until, self.escalated or other.escalated,
                      self.office + [p for p in other.office if p not in self.office])

    @property
    def anybody(self) -> bool:
        return bool(self.reached or self.unreached)


def told(*notices: Notice) -> str:
    """A reply's sentence for what was done: "已通知 X；Y暂时无法送达（…），已告知管理员。"."""
    notice = Notice()
    for each in notices:
        notice += each
    if not notice.anybody:
        return NOBODY + "。"
    parts = []
    if notice.reached:
        parts.append(TOLD.format(names="、".join(p.name for p in notice.reached)))
    by_reason: dict[str, list[str]] = {}
    for person, reason in notice.unreached:
        by_reason.setdefault(short_reason(reason), []).append(person.name)
    unreached = "，".join(UNREACHED.format(names="、".join(names), reason=reason)
                         for reason, names in by_reason.items())
    if unreached and notice.escalated:
        unreached += "，" + (OFFICE_TOLD.format(names="、".join(p.name for p in notice.office)) if notice.office
                              else OFFICE_CONSOLE)
    if unreached:
        parts.append(unreached)
    return "；".join(parts) + "。"


def office_for(db: Session, kind: str, unreached: Iterable[Person]) -> list[Person]:
    """Who hears that a push did not reach someone: every admin, and the bus manager for the bus's
    pushes or the canteen head for the canteen's, less those who could not be reached."""
    people = admins(db)
    if kind.startswith("bus_") and (manager := setting_person(db, "bus_manager")):
        people.append(manager)
    if kind.startswith("canteen_"):
        people += people_with_role(db, "canteen")
    skip = {p.id for p in unreached}
    return [p for p in {p.id: p for p in people}.values() if p.id not in skip]


def new_page_token() -> str:
    """An unguessable address for a push's page: 192 random bits, URL-safe (32 characters)."""
    return secrets.token_urlsafe(24)


def page_url(settings: Settings, push: Push) -> str:
    """The absolute address of `push`'s detail page, for links in pushes; "" if it has none."""
    return f"{settings.public_url}{PAGE_PATH}{push.token}" if push.token else ""


def subject_of(db: Session, thing: RepairTicket | MenuWeek | None) -> tuple[str | None, int | None]:
    """The (subject, subject_id) a push about `thing` records for its page."""
    if thing is None:
        return None, None
    if thing.id is None:
        db.flush()
    return (REPAIR_SUBJECT if isinstance(thing, RepairTicket) else MENU_SUBJECT), thing.id


class Outbox:
    def __init__(self, db: Session, settings: Settings, now: datetime) -> None:
        self.db = db
        self.settings = settings
        self.now = now

    def notify(
        self,
        recipients: Person | Iterable[Person] | None,
        kind: str,
        text: str,
        *,
        url: str = "",
        safety: bool = False,
        escalate: bool | None = None,
        about: RepairTicket | MenuWeek | None = None,
        fields: Mapping[str, object] | None = None,
    ) -> Notice:
        """Queue `text` for each recipient's WeChat. `kind` names the push for template mapping;
        `safety` pushes skip quiet hours. Recipients no channel can reach are recorded as
        undeliverable now; with `escalate` (default: `safety`) the office is told of them too.
        `about` names the repair ticket or menu week the push is about, shown on its page. `fields` are
        the push's named fields for its template (bot.push_kinds); title and time are derived when not
        given. Returns the Notice (its push is None when there is nobody to tell)."""
        if recipients is None:
            return Notice()
        people = [recipients] if isinstance(recipients, Person) else list(recipients)
        unique = list({p.id: p for p in people}.values())
        if not unique:
            return Notice()
        subject, subject_id = subject_of(self.db, about)
        push = Push(kind=kind, text=text, url=url, safety=safety, token=new_page_token(), subject=subject,
                    subject_id=subject_id, created_at=self.now,
                    fields=push_fields(kind, text, self.now.astimezone(self.settings.tz), fields))
        self.db.add(push)
        notice = Notice(push)
        quiet = None if safety else quiet_until(self.now, self.settings)
        custom = kind not in self.settings.templates
        reachable = self._reachable([o for p in unique for o in p.openids])
        open_at = windows(self.db, [o for p in unique for o in p.openids], self.now) if custom else {}
        for person in unique:
            due = quiet if quiet is not None and held_for_quiet_hours(person) else self.now
            reasons = []
            for openid in person.openids:
                reason = (UNSUBSCRIBED if not reachable.get(openid, True)
                          else WINDOW_CLOSED if custom and not self._window_open(open_at.get(openid), due) else None)
                reasons.append(reason)
                push.deliveries.append(Delivery(person_id=person.id, openid=openid, next_attempt_at=due,
                                                status=UNDELIVERABLE if reason else PENDING, last_error=reason))
            if not person.openids:
                reason = NOT_FOLLOWING if person.bindings else NOT_BOUND
                reasons.append(reason)
                push.deliveries.append(Delivery(person_id=person.id, openid=f"person:{person.id}",
                                                status=UNDELIVERABLE, last_error=reason, next_attempt_at=self.now))
            if None in reasons:
                notice.reached.append(person)
                if due != self.now:
                    notice.held_until = due
            else:
                notice.unreached.append((person, next(r for r in reasons if r)))
        if notice.unreached and (safety if escalate is None else escalate):
            office = self.escalate(push, notice.unreached)
            notice.escalated, notice.office = True, office.reached
        return notice

    def _reachable(self, openids: list[str]) -> dict[str, bool]:
        found: dict[str, bool] = {}
        for chunk in chunks(openids):
            found.update({openid: ok for openid, ok in self.db.execute(
                select(Binding.openid, Binding.reachable).where(Binding.openid.in_(chunk)))})
        return found

    @staticmethod
    def _window_open(window: tuple[datetime | None, int] | None, due: datetime) -> bool:
        since, used = window or (None, 0)
        return since is not None and since + WINDOW > due and used < WINDOW_BUDGET

    def escalate(self, push: Push, unreached: list[tuple[Person, str]]) -> Notice:
        """Record who `push` could not reach (the console shows it until acknowledged) and tell the
        office at once. Returns the escalation push's Notice (who of the office it reaches)."""
        for person, reason in unreached:
            self.db.add(DeliveryAlert(push=push, person_id=person.id, name=person.name, reason=reason,
                                      safety=push.safety, raised_at=self.now))
        if push.kind == ESCALATION_KIND:
            return Notice()
        people = [p for p, _ in unreached]
        text = ESCALATION.format(what=kind_name(push.kind), names="、".join(p.name for p in people),
                                 reasons="；".join(dict.fromkeys(short_reason(r) for _, r in unreached)),
                                 text=push.text)
        notice = self.notify(office_for(self.db, push.kind, people), ESCALATION_KIND, text, url=push.url,
                             safety=push.safety, escalate=False)
        if notice.push is not None:
            notice.push.subject, notice.push.subject_id = push.subject, push.subject_id
        return notice


def requeue(delivery: Delivery, now: datetime) -> None:
    """Queue a delivery again (after a failure, or to re-send): `houqin outbox retry` and the console's 重发."""
    delivery.status, delivery.attempts, delivery.next_attempt_at = PENDING, 0, now
    delivery.last_error, delivery.claim, delivery.lease_until = None, None, None


def queue_reply(conn: Connection, openid: str, text: str, now: datetime) -> None:
    """Queue `text` for the follower `openid`, in the caller's transaction: the reply to a message
    that was answered with an apology (replayed from the spool). It answers what they wrote, so it
    goes at once, quiet hours or not, as a customer-service message (unless `reply` has a template)."""
    push_id = conn.execute(insert(Push).returning(Push.id),
                           {"kind": REPLY_KIND, "text": text, "created_at": now,
                            "token": new_page_token()}).scalar_one()
    person_id = conn.scalar(select(Binding.person_id).where(Binding.openid == openid))
    conn.execute(insert(Delivery), {"push_id": push_id, "person_id": person_id, "openid": openid,
                                    "next_attempt_at": now})


# -- WeChat's report on a template send (the TEMPLATESENDJOBFINISH event) ------------------------
JOB_SUCCESS = "success"
JOB_USER_BLOCK = "failed:user block"
USER_BLOCKED = "用户已拒收模板消息（failed:user block）"
JOB_FAILED = "微信未能送达模板消息（{status}）"


def settle_template_job(db: Session, settings: Settings, openid: str, msgid: str, status: str,
                        now: datetime) -> Delivery | None:
    """Settle the template delivery with `msgid` to `openid` as WeChat reports it: `success` confirms
    it; `failed:user block` (the recipient blocked template messages) makes it undeliverable, not
    retried, and a safety push tells the office; any other failure (`failed: system failed`) is
    retried like a transient error. Returns the delivery, or None for a msgid we never sent."""
    if not msgid:
        return None
    delivery = db.scalar(select(Delivery).where(Delivery.msgid == msgid, Delivery.openid == openid))
    if delivery is None or delivery.status != SENT:  # unknown, or already settled / being resent
        return delivery
    reported = " ".join(status.split()).lower()
    if reported == JOB_SUCCESS:
        delivery.confirmed_at = now
    elif reported.replace(" ", "") == JOB_USER_BLOCK.replace(" ", ""):
        delivery.status, delivery.last_error = UNDELIVERABLE, USER_BLOCKED
        person = db.get(Person, delivery.person_id) if delivery.person_id is not None else None
        alerted = delivery.push_id in set(db.scalars(select(DeliveryAlert.push_id).where(
            DeliveryAlert.push_id == delivery.push_id, DeliveryAlert.person_id == delivery.person_id)))
        if delivery.push.safety and person is not None and not alerted:
            Outbox(db, settings, now).escalate(delivery.push, [(person, USER_BLOCKED)])
    else:
        error = JOB_FAILED.format(status=status)
        if delivery.attempts >= settings.push_max_attempts:
            delivery.status, delivery.last_error = FAILED, f"{error} (gave up after {delivery.attempts} attempts)"
        else:
            delivery.status, delivery.last_error = PENDING, error
            delivery.next_attempt_at = now + timedelta(seconds=settings.push_backoff_seconds
                                                       * 2 ** max(delivery.attempts - 1, 0))
    return delivery
