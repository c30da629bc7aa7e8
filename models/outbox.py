"""The outbox: pushes written in the caller's transaction, one delivery row per recipient."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow

PENDING, SENDING, SENT, FAILED, UNDELIVERABLE = "pending", "sending", "sent", "failed", "undeliverable"
DELIVERY_STATES = (PENDING, SENDING, SENT, FAILED, UNDELIVERABLE)


class Push(Base):
    __tablename__ = "pushes"
    __table_args__ = (Index("ix_pushes_token", "token", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(48))
    text: Mapped[str] = mapped_column(Text)
    url: Mapped[str] = mapped_column(String(500), default="")
    # the push's named fields (bot.push_kinds), filled into its template's keywords; None: derived from text
    fields: Mapped[dict[str, Any] | None] = mapped_column()
    safety: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # the push's detail page /p/<token> (bot.push_page); None for pushes queued before it existed
    token: Mapped[str | None] = mapped_column(String(64))
    # what the page shows beside the text: a repair ticket (subject "repair") or a menu week ("menu")
    subject: Mapped[str | None] = mapped_column(String(16))
    subject_id: Mapped[int | None] = mapped_column()

    deliveries: Mapped[list[Delivery]] = relationship(back_populates="push", cascade="all, delete-orphan")


class Delivery(Base):
    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("push_id", "openid"),
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        Index("ix_deliveries_openid_sent", "openid", "sent_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    push_id: Mapped[int] = mapped_column(ForeignKey("pushes.id", ondelete="CASCADE"))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    openid: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    channel: Mapped[str] = mapped_column(String(16), default="")  # template | custom
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claim: Mapped[str | None] = mapped_column(String(40))
    lease_until: Mapped[datetime | None] = mapped_column()
    sent_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    # the msgid WeChat returned for a template send; its TEMPLATESENDJOBFINISH event settles the delivery
    msgid: Mapped[str | None] = mapped_column(String(32), index=True)
    confirmed_at: Mapped[datetime | None] = mapped_column()  # WeChat reported the template delivered

    push: Mapped[Push] = relationship(back_populates="deliveries", lazy="joined")


class DeliveryAlert(Base):
    """Someone a push could not reach, and whether the office has seen it: a red banner on the console
    overview until an admin acknowledges it. One row per push and person; never updated but to acknowledge."""

    __tablename__ = "delivery_alerts"
    __table_args__ = (
        UniqueConstraint("push_id", "person_id"),
        Index("ix_delivery_alerts_open", "acknowledged_at", "raised_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    push_id: Mapped[int] = mapped_column(ForeignKey("pushes.id", ondelete="CASCADE"))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(64))  # who could not be reached, kept if the person goes
    reason: Mapped[str] = mapped_column(Text)
    safety: Mapped[bool] = mapped_column(default=False)
    raised_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column()
    acknowledged_by: Mapped[str] = mapped_column(String(64), default="")

    push: Mapped[Push] = relationship(lazy="joined")


class AccessToken(Base):
    """The one access token every process shares; `refreshing_until` is the refresh lock."""

    __tablename__ = "access_tokens"

    appid: Mapped[str] = mapped_column(String(64), primary_key=True)
    token: Mapped[str] = mapped_column(String(600), default="")
    expires_at: Mapped[datetime | None] = mapped_column()
    refreshing_until: Mapped[datetime | None] = mapped_column()
    fetches: Mapped[int] = mapped_column(default=0)
    forced_at: Mapped[datetime | None] = mapped_column()  # the last force_refresh (at most one per 30 s)


class TemplateQuota(Base):
    """The template messages an official account has sent (or tried to) on one of its days: WeChat caps
    template sends per account per day, and its day runs midnight to midnight Beijing time. The worker
    reserves from `sent` before it calls WeChat; `exhausted_at`: WeChat answered 45009 that day."""

    __tablename__ = "template_quota"

    appid: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    sent: Mapped[int] = mapped_column(default=0)
    deferred: Mapped[int] = mapped_column(default=0)  # deliveries moved to the next day for the quota
    exhausted_at: Mapped[datetime | None] = mapped_column()
