"""People, their roles, students, parent links, WeChat bindings and bind codes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow

ROLES = ("admin", "staff", "teacher", "bus_monitor", "canteen", "parent")
ROLE_NAMES = {
    "admin": "管理员",
    "staff": "后勤",
    "teacher": "教师",
    "bus_monitor": "跟车老师",
    "canteen": "食堂",
    "parent": "家长",
}


class Person(Base):
    __tablename__ = "people"
    __table_args__ = (UniqueConstraint("name", "phone"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str] = mapped_column(String(32), default="")
    class_name: Mapped[str] = mapped_column(String(64), default="")
    route: Mapped[str] = mapped_column(String(32), default="")
    categories: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deactivated_at: Mapped[datetime | None] = mapped_column()  # left the school (停用): roles and bindings ended

    roles: Mapped[list[PersonRole]] = relationship(
        back_populates="person", cascade="all, delete-orphan", lazy="selectin"
    )
    bindings: Mapped[list[Binding]] = relationship(back_populates="person", lazy="selectin",
                                                   foreign_keys="Binding.person_id")

    @property
    def role_set(self) -> set[str]:
        return {r.role for r in self.roles}

    @property
    def category_list(self) -> list[str]:
        return [c for c in self.categories.replace("、", ";").split(";") if c]

    @property
    def openids(self) -> list[str]:
        return [b.openid for b in self.bindings if b.subscribed]


class PersonRole(Base):
    __tablename__ = "person_roles"
    __table_args__ = (UniqueConstraint("person_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))

    person: Mapped[Person] = relationship(back_populates="roles")


class Student(Base):
    __tablename__ = "students"
    __table_args__ = (UniqueConstraint("name", "class_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    class_name: Mapped[str] = mapped_column(String(64), default="")
    route: Mapped[str] = mapped_column(String(32), default="")
    stop: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    parents: Mapped[list[ParentLink]] = relationship(back_populates="student", lazy="selectin")


class ParentLink(Base):
    """A parent (a person with the parent role) linked to a student; many-to-many."""

    __tablename__ = "parent_links"
    __table_args__ = (UniqueConstraint("person_id", "student_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    person: Mapped[Person] = relationship()
    student: Mapped[Student] = relationship(back_populates="parents")


class Binding(Base):
    """A WeChat follower (openid); bound to a person once they send a valid code."""

    __tablename__ = "bindings"

    openid: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"), index=True)
    # whom this follower was bound to before 解绑 (or before a reissued code moved the person to another
    # WeChat): binding their child's parent code again returns them to that person, not a new one
    previous_person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    subscribed: Mapped[bool] = mapped_column(default=True)
    reachable: Mapped[bool] = mapped_column(default=True)
    bound_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # The follower's menu (bot.wechat.menu): the Houqin tag WeChat has on this openid, and whether it
    # must be set again. Binding, unbinding, following and a change of the person's roles set `menu_due`
    # and bump `menu_version` in the same transaction; the menu worker tags the openid and clears
    # `menu_due` only if the version is still the one it read. `menu_retry_at` is its lease or backoff.
    menu_due: Mapped[bool] = mapped_column(default=False, index=True)
    menu_version: Mapped[int] = mapped_column(default=0)
    menu_tag_id: Mapped[int | None] = mapped_column()
    menu_retry_at: Mapped[datetime | None] = mapped_column()
    menu_attempts: Mapped[int] = mapped_column(default=0)
    menu_error: Mapped[str | None] = mapped_column(Text)

    person: Mapped[Person | None] = relationship(back_populates="bindings", foreign_keys=[person_id])


class BindCode(Base):
    """A code that binds: a `person` code binds its person once; a `student` code binds any of the
    student's parents until it expires. A reissued code revokes the ones before it (`revoked_at`)."""

    __tablename__ = "bind_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(6), unique=True)
    kind: Mapped[str] = mapped_column(String(8))  # person | student
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    student_id: Mapped[int | None] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()
    used_by: Mapped[str | None] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    person: Mapped[Person | None] = relationship()
    student: Mapped[Student | None] = relationship()


class BindAttempt(Base):
    """A wrong bind code, kept to lock out guessing (5 in 10 minutes → 10 minutes refused)."""

    __tablename__ = "bind_attempts"
    __table_args__ = (Index("ix_bind_attempts_openid_at", "openid", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    openid: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class BindWindow(Base):
    """Wrong bind codes from everyone in one fixed window (an hour from `started_at`): past the limit,
    binds are refused for the rest of the window. Counted by one atomic UPDATE per wrong code; the
    row is locked for the rest of each bind's transaction, so concurrent guesses are counted exactly."""

    __tablename__ = "bind_windows"

    started_at: Mapped[datetime] = mapped_column(primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
