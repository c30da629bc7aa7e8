"""Queueing pushes: a row per push and per recipient, written in the caller's transaction.

Nothing here talks to WeChat; bot.worker delivers. Parents' pushes that are not safety alerts
wait out the quiet hours (default 21:00-07:00, school time) and go when they end.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Connection, insert, select
from sqlalchemy.orm import Session

from bot.text import clock_time
from models import Binding, Delivery, Person, Push
from models.outbox import UNDELIVERABLE

if TYPE_CHECKING:
    from bot.config import Settings

NOT_BOUND = "未绑定微信"
NOT_FOLLOWING = "已取消关注公众号"
REPLY_KIND = "reply"  # a reply pushed because it could not be the webhook's answer


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
    ) -> Push | None:
        """Queue `text` for each recipient's WeChat. `kind` names the push for template mapping;
        `safety` pushes skip quiet hours. Returns the Push, or None when there is nobody to tell."""
        if recipients is None:
            return None
        people = [recipients] if isinstance(recipients, Person) else list(recipients)
        unique = list({p.id: p for p in people}.values())
        if not unique:
            return None
        push = Push(kind=kind, text=text, url=url, safety=safety)
        self.db.add(push)
        quiet = None if safety else quiet_until(self.now, self.settings)
        for person in unique:
            openids = person.openids
            if not openids:
                reason = NOT_FOLLOWING if person.bindings else NOT_BOUND
                push.deliveries.append(Delivery(person_id=person.id, openid=f"person:{person.id}",
                                                status=UNDELIVERABLE, last_error=reason, next_attempt_at=self.now))
                continue
            due = quiet if quiet is not None and held_for_quiet_hours(person) else self.now
            for openid in openids:
                push.deliveries.append(Delivery(person_id=person.id, openid=openid, next_attempt_at=due))
        return push


def queue_reply(conn: Connection, openid: str, text: str, now: datetime) -> None:
    """Queue `text` for the follower `openid`, in the caller's transaction: the reply to a message
    that was answered with an apology (replayed from the spool). It answers what they wrote, so it
    goes at once, quiet hours or not, as a customer-service message (unless `reply` has a template)."""
    push_id = conn.execute(insert(Push).returning(Push.id),
                           {"kind": REPLY_KIND, "text": text, "created_at": now}).scalar_one()
    person_id = conn.scalar(select(Binding.person_id).where(Binding.openid == openid))
    conn.execute(insert(Delivery), {"push_id": push_id, "person_id": person_id, "openid": openid,
                                    "next_attempt_at": now})
