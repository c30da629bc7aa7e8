"""Canteen (食堂): the weekly menu (a draft until published), feedback F<n> with its photo and the
canteen's replies, satisfaction surveys (每月一次小调查，学期大调查), and leaders' accompanied meals (陪餐)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow
from models.identity import Person
from models.media import DownloadedPhoto

BREAKFAST, LUNCH, SNACK = "早餐", "午餐", "点心"
MEALS = (BREAKFAST, LUNCH, SNACK)
DRAFT, PUBLISHED = "draft", "published"
MONTHLY, TERM = "monthly", "term"


class MenuWeek(Base):
    """One ISO week's menu: a draft until published; the Thursday job's bookkeeping."""

    __tablename__ = "menu_weeks"
    __table_args__ = (UniqueConstraint("year", "week"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int] = mapped_column()  # ISO year
    week: Mapped[int] = mapped_column()  # ISO week 1-53
    status: Mapped[str] = mapped_column(String(16), default=DRAFT)
    published_at: Mapped[datetime | None] = mapped_column()
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    reminded_at: Mapped[datetime | None] = mapped_column()  # Thursday 12:00: the canteen was reminded
    pushed_at: Mapped[datetime | None] = mapped_column()  # sent to parents and teachers
    late_told_at: Mapped[datetime | None] = mapped_column()  # Thursday 16:00: admin told it was unpublished
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    published_by: Mapped[Person | None] = relationship()
    items: Mapped[list[MenuItem]] = relationship(back_populates="menu", cascade="all, delete-orphan",
                                                 order_by="[MenuItem.day, MenuItem.position]")

    @property
    def key(self) -> str:
        return f"{self.year}-W{self.week:02d}"

    @property
    def published(self) -> bool:
        return self.status == PUBLISHED


class MenuItem(Base):
    """One meal on one day: its dishes (、-separated), allergens, and an optional photo in storage."""

    __tablename__ = "menu_items"
    __table_args__ = (UniqueConstraint("day", "meal"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    menu_id: Mapped[int] = mapped_column(ForeignKey("menu_weeks.id", ondelete="CASCADE"), index=True)
    day: Mapped[date] = mapped_column()
    meal: Mapped[str] = mapped_column(String(8))  # 早餐 | 午餐 | 点心
    position: Mapped[int] = mapped_column(default=0)  # the meal's order within the day
    dishes: Mapped[str] = mapped_column(Text)
    allergens: Mapped[str] = mapped_column(String(200), default="")
    photo: Mapped[str] = mapped_column(String(300), default="")  # path under the storage folder

    menu: Mapped[MenuWeek] = relationship(back_populates="items")

    @property
    def dish_list(self) -> list[str]:
        return [d for d in self.dishes.split("、") if d]

    @property
    def allergen_list(self) -> list[str]:
        return [a for a in self.allergens.split("、") if a]


class CanteenFeedback(Base):
    """`食堂 <1-5> [意见]`, numbered F<n>. Every feedback is kept: a person's later rating the same day
    gets its own F<n> and only supersedes the earlier one's score in the averages (`superseded_by`);
    the earlier text, its food-safety words, photo and replies stay with it."""

    __tablename__ = "canteen_feedback"
    __table_args__ = (Index("ix_canteen_feedback_person_day", "person_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(unique=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    role: Mapped[str] = mapped_column(String(16))  # the giver's role: teacher | parent | staff
    day: Mapped[date] = mapped_column(index=True)  # school-local date of the meal
    rating: Mapped[int] = mapped_column()
    comment: Mapped[str] = mapped_column(Text, default="")
    alert_words: Mapped[str] = mapped_column(String(200), default="")  # food-safety words found
    given_at: Mapped[datetime] = mapped_column(default=utcnow)
    replaced: Mapped[int] = mapped_column(default=0)  # before 0010 a second rating overwrote the row: how often
    # the same person's later rating that day, whose score counts in the averages instead of this one's
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("canteen_feedback.id", ondelete="SET NULL"))

    person: Mapped[Person | None] = relationship()
    superseded_by: Mapped[CanteenFeedback | None] = relationship(remote_side=[id])
    replies: Mapped[list[CanteenReply]] = relationship(back_populates="feedback", cascade="all, delete-orphan",
                                                       order_by="CanteenReply.at")
    photo: Mapped[FeedbackPhoto | None] = relationship(back_populates="feedback", cascade="all, delete-orphan",
                                                       lazy="selectin")

    @property
    def counted(self) -> bool:
        """Whether the score counts in averages: not superseded by the giver's later rating that day."""
        return self.superseded_by_id is None

    @property
    def code(self) -> str:
        return f"F{self.number}"


class FeedbackPhoto(DownloadedPhoto, Base):
    """The photo sent within 10 minutes of a rating (one per feedback: a second replaces it). The media
    worker downloads it at once into the storage folder, as canteen/F<n>/<id>-<media digest>.jpg."""

    __tablename__ = "feedback_photos"
    __table_args__ = (Index("ix_feedback_photos_due", "status", "next_attempt_at"),)

    feedback_id: Mapped[int] = mapped_column(ForeignKey("canteen_feedback.id", ondelete="CASCADE"), unique=True)

    feedback: Mapped[CanteenFeedback] = relationship(back_populates="photo")


class CanteenReply(Base):
    """`回复 F<n> <内容>`: the canteen's answer, pushed to the giver."""

    __tablename__ = "canteen_replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    feedback_id: Mapped[int] = mapped_column(ForeignKey("canteen_feedback.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)

    feedback: Mapped[CanteenFeedback] = relationship(back_populates="replies")
    person: Mapped[Person | None] = relationship()


class SurveyResponse(Base):
    """A satisfaction survey answer: the monthly one (overall 1-5) or the term questionnaire
    (taste, hygiene, portion, service). Every answer is kept: a person's later answer of the same kind
    and period is a row of its own and only supersedes the earlier one's scores in the results
    (`superseded_by`); the earlier comment and its food-safety words stay with it."""

    __tablename__ = "canteen_surveys"
    __table_args__ = (Index("ix_canteen_surveys_person_period", "person_id", "kind", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    role: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(8))  # monthly | term
    period: Mapped[str] = mapped_column(String(16))  # 2026-11 | 2026秋
    overall: Mapped[int | None] = mapped_column()
    taste: Mapped[int | None] = mapped_column()
    hygiene: Mapped[int | None] = mapped_column()
    portion: Mapped[int | None] = mapped_column()
    service: Mapped[int | None] = mapped_column()
    comment: Mapped[str] = mapped_column(Text, default="")
    alert_words: Mapped[str] = mapped_column(String(200), default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)
    # the same person's later answer of this kind and period, whose scores count instead of this one's
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("canteen_surveys.id", ondelete="SET NULL"))

    person: Mapped[Person | None] = relationship()
    superseded_by: Mapped[SurveyResponse | None] = relationship(remote_side=[id])

    @property
    def counted(self) -> bool:
        """Whether the scores count in the results: not superseded by the person's later answer."""
        return self.superseded_by_id is None


class SurveyRound(Base):
    """The month's survey push, sent once (the term questionnaire in the term-survey months)."""

    __tablename__ = "canteen_survey_rounds"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # YYYY-MM
    kind: Mapped[str] = mapped_column(String(8))
    pushed_at: Mapped[datetime] = mapped_column(default=utcnow)
    recipients: Mapped[int] = mapped_column(default=0)


class AccompaniedMeal(Base):
    """陪餐: a school leader ate with the pupils, with an optional note. Every record is kept: a second
    record of the same meal is a row of its own (the meal still counts once)."""

    __tablename__ = "accompanied_meals"
    __table_args__ = (Index("ix_accompanied_meals_person_day", "person_id", "day", "meal"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    day: Mapped[date] = mapped_column(index=True)
    meal: Mapped[str] = mapped_column(String(8))
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)

    person: Mapped[Person | None] = relationship()
