"""The 行事历: recurring tasks (a rule, who does it, when to remind and escalate, a checklist), their
occurrences T<n> (one per due date: reminded, done, escalated) and the checklist answers given for each."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow
from models.identity import Person
from models.media import DownloadedPhoto
from models.repair import RepairTicket

NORMAL, ABNORMAL, READING = "正常", "异常", "读数"  # a checklist answer's result
FIRE_CHECK_KEY = "fire_check"  # the task that is the monthly fire self-check (消防自检 完成 closes it)


class Task(Base):
    """One line of the 行事历: what, by which rule, who, when to remind and escalate, what to check."""

    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100), unique=True)
    rule: Mapped[str] = mapped_column(String(100))  # as written: 每月15日(顺延), 每周五, 8;12月 最后一个上课日 …
    assignee: Mapped[str] = mapped_column(String(100))  # a person, a category (消防) or a role (后勤), as written
    remind_days: Mapped[int] = mapped_column(default=3)
    escalate_days: Mapped[int] = mapped_column(default=3)
    checklist: Mapped[str] = mapped_column(Text, default="")  # items, ";"-separated
    key: Mapped[str] = mapped_column(String(32), default="")  # fire_check: the built-in one it replaces
    active: Mapped[bool] = mapped_column(default=True)
    created_on: Mapped[date] = mapped_column()  # school-local day of the import: no occurrence before it
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    occurrences: Mapped[list[TaskOccurrence]] = relationship(back_populates="task", order_by="TaskOccurrence.due")

    @property
    def items(self) -> list[str]:
        return [i.strip() for i in self.checklist.replace("；", ";").split(";") if i.strip()]


class TaskOccurrence(Base):
    """T<number>: one due date of a task, from its reminder to its completion (or escalation)."""

    __tablename__ = "task_occurrences"
    __table_args__ = (UniqueConstraint("task_id", "due"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(unique=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    due: Mapped[date] = mapped_column(index=True)
    period: Mapped[str] = mapped_column(String(20), default="")  # 8月: shown after the title
    reminded_at: Mapped[datetime | None] = mapped_column()
    done_at: Mapped[datetime | None] = mapped_column()
    done_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    note: Mapped[str] = mapped_column(Text, default="")
    escalated_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    task: Mapped[Task] = relationship(back_populates="occurrences")
    done_by: Mapped[Person | None] = relationship()
    checks: Mapped[list[TaskCheck]] = relationship(back_populates="occurrence", order_by="TaskCheck.position",
                                                   cascade="all, delete-orphan")

    @property
    def code(self) -> str:
        return f"T{self.number}"

    @property
    def label(self) -> str:
        """直饮水更换滤芯（8月）"""
        return f"{self.task.title}（{self.period}）" if self.period else self.task.title


class TaskCheck(Base):
    """One checklist item's answer for an occurrence: 正常, 异常 and what, a reading; a photo; a repair."""

    __tablename__ = "task_checks"
    __table_args__ = (UniqueConstraint("occurrence_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    occurrence_id: Mapped[int] = mapped_column(ForeignKey("task_occurrences.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column()  # 0-based, in the task's checklist order
    item: Mapped[str] = mapped_column(String(100))
    result: Mapped[str] = mapped_column(String(8), default="")  # 正常 / 异常 / 读数; empty: only a photo so far
    detail: Mapped[str] = mapped_column(Text, default="")  # what is wrong, or the reading, as written
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("repair_tickets.id", ondelete="SET NULL"))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    occurrence: Mapped[TaskOccurrence] = relationship(back_populates="checks")
    ticket: Mapped[RepairTicket | None] = relationship()
    person: Mapped[Person | None] = relationship()
    photo: Mapped[TaskPhoto | None] = relationship(back_populates="check", cascade="all, delete-orphan")


class TaskPhoto(DownloadedPhoto, Base):
    """A checklist item's photo (one per item: a second replaces it); the media worker downloads it at once
    into the storage folder, as tasks/T<n>/<id>-<media digest>.jpg."""

    __tablename__ = "task_photos"
    __table_args__ = (Index("ix_task_photos_due", "status", "next_attempt_at"),)

    check_id: Mapped[int] = mapped_column(ForeignKey("task_checks.id", ondelete="CASCADE"), unique=True)
    occurrence_id: Mapped[int] = mapped_column(ForeignKey("task_occurrences.id", ondelete="CASCADE"), index=True)

    check: Mapped[TaskCheck] = relationship(back_populates="photo")
