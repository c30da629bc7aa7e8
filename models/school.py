"""The school itself: settings operators change at run time, the calendar, and the record of job runs."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow

HOLIDAY, WORKDAY, TERM_START, TERM_END = "holiday", "workday", "term_start", "term_end"
DAY_KINDS = (HOLIDAY, WORKDAY, TERM_START, TERM_END)


class SchoolSetting(Base):
    """A school setting an admin may change (fire self-check day, bus manager, ...)."""

    __tablename__ = "school_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)  # Text: a school's template mapping (bot.county) is long
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CalendarDay(Base):
    """A day the calendar says something about: a holiday, a make-up working day (调休), a term's first or last day."""

    __tablename__ = "calendar_days"
    __table_args__ = (UniqueConstraint("day", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(String(200), default="")


class JobRun(Base):
    """One attempt at a job's occurrence. An occurrence is claimed by inserting its first attempt: the
    unique (job_id, occurrence, attempt) means two schedulers never run it twice. A `running` claim
    holds a lease (`lease_until`, renewed while the job runs); once it expires (the process was
    killed) the next scheduler closes that attempt and claims the next one. Runs of a job without a
    schedule have no occurrence."""

    __tablename__ = "job_runs"
    __table_args__ = (
        UniqueConstraint("job_id", "occurrence", "attempt"),
        Index("ix_job_runs_job_started", "job_id", "started_at"),
        Index("ix_job_runs_status_lease", "status", "lease_until"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(String(64))
    occurrence: Mapped[datetime | None] = mapped_column()
    attempt: Mapped[int] = mapped_column(default=1)
    as_of: Mapped[datetime] = mapped_column()
    manual: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | done | failed | skipped
    owner: Mapped[str] = mapped_column(String(64), default="")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    result: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(Text)
