"""Safety programme: emergency drills and their log, the safety-education calendar, fire self-checks."""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow
from models.identity import Person


class Drill(Base):
    """A planned emergency drill (每月一次应急演练) and, once held, its log."""

    __tablename__ = "drills"

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(index=True)
    at: Mapped[time] = mapped_column()
    kind: Mapped[str] = mapped_column(String(32))  # 消防疏散 / 防震 / 防踩踏 / 校车 ...
    scope: Mapped[str] = mapped_column(String(100), default="全校")
    logged_at: Mapped[datetime | None] = mapped_column()
    logged_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    evacuation_minutes: Mapped[float | None] = mapped_column()
    problems: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    logged_by: Mapped[Person | None] = relationship()


class SafetyTopic(Base):
    """The month's safety-education topics (附件3 安全教育行事历); editable by import."""

    __tablename__ = "safety_topics"

    month: Mapped[int] = mapped_column(primary_key=True)  # 1-12
    topics: Mapped[str] = mapped_column(Text)
    activities: Mapped[str] = mapped_column(Text, default="")


class FireCheck(Base):
    """This month's fire-equipment self-check (消防设备自检): reminded, closed, or escalated."""

    __tablename__ = "fire_checks"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # YYYY-MM
    reminded_at: Mapped[datetime | None] = mapped_column()
    done_at: Mapped[datetime | None] = mapped_column()
    done_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    note: Mapped[str] = mapped_column(Text, default="")
    escalated_at: Mapped[datetime | None] = mapped_column()

    done_by: Mapped[Person | None] = relationship()
