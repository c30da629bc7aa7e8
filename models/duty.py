"""Duty (值日 / 巡查打卡): posts, the weekly roster and dated overrides, each day's shifts,
check-ins, and handovers (代班)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow
from models.identity import Person

QR, LOCATION, TEXT = "qr", "location", "text"
METHOD_NAMES = {QR: "扫码", LOCATION: "定位", TEXT: "文字"}


class DutyPost(Base):
    __tablename__ = "duty_posts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    latitude: Mapped[float | None] = mapped_column()
    longitude: Mapped[float | None] = mapped_column()
    radius: Mapped[float | None] = mapped_column()  # metres; None: the school's geofence
    qr_ticket: Mapped[str] = mapped_column(String(200), default="")
    qr_url: Mapped[str] = mapped_column(String(300), default="")
    stopped_at: Mapped[datetime | None] = mapped_column()  # 停用: kept (its shifts are history), no longer staffed


class DutyRoster(Base):
    """The weekly pattern: weekday (0 = Monday) × slot × post → teacher."""

    __tablename__ = "duty_roster"
    __table_args__ = (UniqueConstraint("weekday", "slot", "post_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    weekday: Mapped[int] = mapped_column()
    slot: Mapped[str] = mapped_column(String(16))
    post_id: Mapped[int] = mapped_column(ForeignKey("duty_posts.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))

    post: Mapped[DutyPost] = relationship()
    person: Mapped[Person] = relationship()


class DutyOverride(Base):
    """A dated change to the pattern (an imported override or an accepted 代班)."""

    __tablename__ = "duty_overrides"
    __table_args__ = (UniqueConstraint("day", "slot", "post_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(index=True)
    slot: Mapped[str] = mapped_column(String(16))
    post_id: Mapped[int] = mapped_column(ForeignKey("duty_posts.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    note: Mapped[str] = mapped_column(String(200), default="")

    post: Mapped[DutyPost] = relationship()
    person: Mapped[Person] = relationship()


class DutyShift(Base):
    """One post in one slot on one day, with who was rostered; made when the slot's reminder goes
    out, or at the first check-in."""

    __tablename__ = "duty_shifts"
    __table_args__ = (UniqueConstraint("day", "slot", "post_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(index=True)
    slot: Mapped[str] = mapped_column(String(16))
    post_id: Mapped[int] = mapped_column(ForeignKey("duty_posts.id", ondelete="CASCADE"))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    note: Mapped[str] = mapped_column(String(200), default="")
    reminded_at: Mapped[datetime | None] = mapped_column()
    missed_at: Mapped[datetime | None] = mapped_column()

    post: Mapped[DutyPost] = relationship()
    person: Mapped[Person | None] = relationship()
    checkins: Mapped[list[DutyCheckin]] = relationship(back_populates="shift", order_by="DutyCheckin.at")


class DutyCheckin(Base):
    __tablename__ = "duty_checkins"

    id: Mapped[int] = mapped_column(primary_key=True)
    shift_id: Mapped[int] = mapped_column(ForeignKey("duty_shifts.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    method: Mapped[str] = mapped_column(String(8))  # qr | location | text
    verified: Mapped[bool] = mapped_column(default=False)
    stand_in: Mapped[bool] = mapped_column(default=False)
    distance: Mapped[float | None] = mapped_column()

    shift: Mapped[DutyShift] = relationship(back_populates="checkins")
    person: Mapped[Person] = relationship()


class DutySwap(Base):
    """代班: a teacher asks a colleague to take a shift; accepted with 同意, declined with 不同意."""

    __tablename__ = "duty_swaps"

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column()
    slot: Mapped[str] = mapped_column(String(16))
    post_id: Mapped[int] = mapped_column(ForeignKey("duty_posts.id", ondelete="CASCADE"))
    from_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    to_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    accepted_at: Mapped[datetime | None] = mapped_column()
    declined_at: Mapped[datetime | None] = mapped_column()  # 不同意

    post: Mapped[DutyPost] = relationship()
    from_person: Mapped[Person] = relationship(foreign_keys=[from_id])
    to_person: Mapped[Person] = relationship(foreign_keys=[to_id])
