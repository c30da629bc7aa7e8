"""The school's voice (issue 19): notices that are confirmed (回执), the suggestion box (意见箱) and the
office's satisfaction survey (后勤工作满意度测评).

Anonymity is in the schema. An anonymous suggestion has no person and no time of day: only the day it
was filed and `claim`, a keyed HMAC of the sender's openid (handlers/suggestions.py) by which the sender
reads the reply. A survey answer is never a row: the ratings are counters per item, group and level
(`office_survey_tallies`), a comment is a row with a random key and no time and no person, and who took
part (`office_survey_takers`, for the reminders) says how many items they answered, never what."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow
from models.identity import Person

# suggestion status
OPEN, ANSWERED = "open", "answered"
# survey groups: who answered, as the results show them
STAFF_GROUP, PARENT_GROUP = "staff", "parent"


class Notice(Base):
    """A 通知 N<n> to a group, with or without 回执 (confirmation)."""

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(unique=True)
    kind: Mapped[str] = mapped_column(String(48), default="notice")  # the push kind (drill_notice, notice)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    audience: Mapped[str] = mapped_column(String(200))  # 全体家长, 三(2)班家长, 教师, 后勤, a name
    confirm: Mapped[bool] = mapped_column(default=True)
    sender_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    sender_name: Mapped[str] = mapped_column(String(64), default="")  # 后勤处, 教育局, or the person
    push_id: Mapped[int | None] = mapped_column(ForeignKey("pushes.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    reminded_at: Mapped[datetime | None] = mapped_column()  # 提醒未确认: once

    sender: Mapped[Person | None] = relationship()
    recipients: Mapped[list[NoticeRecipient]] = relationship(
        back_populates="notice", cascade="all, delete-orphan", order_by="NoticeRecipient.id")

    @property
    def code(self) -> str:
        return f"N{self.number}"


class NoticeRecipient(Base):
    """One recipient of a notice and their confirmation: the record (回执台账)."""

    __tablename__ = "notice_recipients"
    __table_args__ = (UniqueConstraint("notice_id", "person_id"),
                      Index("ix_notice_recipients_person_open", "person_id", "confirmed_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id", ondelete="CASCADE"))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(64))  # as it was when sent
    detail: Mapped[str] = mapped_column(String(200), default="")  # a parent's child and class
    reached: Mapped[bool] = mapped_column(default=True)  # a channel could take the push
    confirmed_at: Mapped[datetime | None] = mapped_column()
    confirmed_via: Mapped[str] = mapped_column(String(16), default="")  # 微信回复 | 详情页
    reminded_at: Mapped[datetime | None] = mapped_column()

    notice: Mapped[Notice] = relationship(back_populates="recipients")
    person: Mapped[Person | None] = relationship()


class Suggestion(Base):
    """意见箱 Y<n>. Signed: the person and the moment. Anonymous: neither — the day and `claim` only."""

    __tablename__ = "suggestions"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(unique=True)
    anonymous: Mapped[bool] = mapped_column(default=False)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    claim: Mapped[str | None] = mapped_column(String(64), index=True)  # anonymous: HMAC of the openid
    text: Mapped[str] = mapped_column(Text)
    topic: Mapped[str] = mapped_column(String(32), default="")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    filed_on: Mapped[date] = mapped_column(index=True)
    filed_at: Mapped[datetime | None] = mapped_column()  # signed ones only
    status: Mapped[str] = mapped_column(String(16), default=OPEN)
    # whoever answers for it has been told: a signed one at once; anonymous ones together, on the hour
    # (scheduler/suggestions.py), so that the push's time does not point to the message that brought it
    routed: Mapped[bool] = mapped_column(default=False, index=True)

    person: Mapped[Person | None] = relationship(foreign_keys=[person_id])
    assignee: Mapped[Person | None] = relationship(foreign_keys=[assignee_id])
    replies: Mapped[list[SuggestionReply]] = relationship(
        back_populates="suggestion", cascade="all, delete-orphan", order_by="SuggestionReply.id")

    @property
    def code(self) -> str:
        return f"Y{self.number}"


class SuggestionReply(Base):
    """The office's answer to a suggestion; every answer is kept."""

    __tablename__ = "suggestion_replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    suggestion_id: Mapped[int] = mapped_column(ForeignKey("suggestions.id", ondelete="CASCADE"))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(64), default="")
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)

    suggestion: Mapped[Suggestion] = relationship(back_populates="replies")


class OfficeSurvey(Base):
    """One round of 后勤工作满意度测评, open from `opens_on` to `closes_on` (school days)."""

    __tablename__ = "office_surveys"

    id: Mapped[int] = mapped_column(primary_key=True)
    period: Mapped[str] = mapped_column(String(16), unique=True)  # the term: 2026秋
    items: Mapped[str] = mapped_column(String(500))  # ";"-separated, in asking order
    parent_items: Mapped[str] = mapped_column(String(500), default="")  # the ones parents are asked
    opens_on: Mapped[date] = mapped_column()
    closes_on: Mapped[date] = mapped_column()
    started_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    reminded_at: Mapped[datetime | None] = mapped_column()

    @property
    def item_list(self) -> list[str]:
        return [i for i in self.items.split(";") if i]

    @property
    def parent_item_list(self) -> list[str]:
        return [i for i in self.parent_items.split(";") if i]


class OfficeSurveyTally(Base):
    """How many of a group gave an item a level: the only trace of a rating."""

    __tablename__ = "office_survey_tallies"

    survey_id: Mapped[int] = mapped_column(ForeignKey("office_surveys.id", ondelete="CASCADE"), primary_key=True)
    item: Mapped[str] = mapped_column(String(32), primary_key=True)
    group: Mapped[str] = mapped_column(String(16), primary_key=True)
    level: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(default=0)


class OfficeSurveyComment(Base):
    """A comment given with a rating: random key, no person, no time."""

    __tablename__ = "office_survey_comments"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("office_surveys.id", ondelete="CASCADE"), index=True)
    item: Mapped[str] = mapped_column(String(32))
    group: Mapped[str] = mapped_column(String(16))
    level: Mapped[int] = mapped_column()
    text: Mapped[str] = mapped_column(Text)


class OfficeSurveyTaker(Base):
    """Who has taken part, and how far (items answered): for reminders and to go on where they stopped."""

    __tablename__ = "office_survey_takers"

    survey_id: Mapped[int] = mapped_column(ForeignKey("office_surveys.id", ondelete="CASCADE"), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), primary_key=True)
    answered: Mapped[int] = mapped_column(default=0)
    reminded: Mapped[bool] = mapped_column(default=False)
