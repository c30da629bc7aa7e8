"""The county: the schools one installation serves, and who follows a shared account in which school.

These tables are used only in the main (default school's) database namespace; every school's own data
lives in its own namespace (a PostgreSQL schema, or a SQLite file beside the main one), built by the
same migrations, so no other table carries a school column. The migrations create these tables in
every namespace; only the main one's rows mean anything.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow

DEFAULT_SLUG = "default"


class CountySchool(Base):
    """A school of the installation. Its own official account's secrets are stored encrypted
    (bot.county: Fernet, a key derived from HOUQIN_SECRET_KEY); no appid means the shared account."""

    __tablename__ = "county_schools"

    slug: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    appid: Mapped[str] = mapped_column(String(64), default="")
    token_enc: Mapped[str] = mapped_column(Text, default="")
    aes_key_enc: Mapped[str] = mapped_column(Text, default="")
    secret_enc: Mapped[str] = mapped_column(Text, default="")
    tz_name: Mapped[str] = mapped_column(String(64), default="")  # empty: HOUQIN_TZ
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CountyFollower(Base):
    """An openid of the shared account bound in a school: its messages are routed there."""

    __tablename__ = "county_followers"
    __table_args__ = (UniqueConstraint("openid", "slug"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), index=True)
    slug: Mapped[str] = mapped_column(String(32))
    bound_at: Mapped[datetime] = mapped_column(default=utcnow)


class CountyCode(Base):
    """A bind code and the school that issued it: codes never repeat across schools, and on the shared
    account the code decides the school."""

    __tablename__ = "county_codes"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    slug: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CountyConversation(Base):
    """A shared-account follower bound in several schools: the school their conversation is with now
    (chosen when asked, until `expires_at`), or the message waiting while they are asked."""

    __tablename__ = "county_conversations"

    openid: Mapped[str] = mapped_column(String(64), primary_key=True)
    slug: Mapped[str] = mapped_column(String(32), default="")  # empty: being asked
    pending: Mapped[str] = mapped_column(Text, default="")  # the message's text while asked
    expires_at: Mapped[datetime] = mapped_column()


class CountyNotice(Base):
    """A bureau's 通知 to schools' admins: one notice N<n> in each chosen school's own namespace (the
    回执 are kept there, handlers.notices), tied together here, in the main namespace."""

    __tablename__ = "county_notices"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text, default="")
    sender_name: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    schools: Mapped[list[CountyNoticeSchool]] = relationship(
        back_populates="county_notice", cascade="all, delete-orphan", order_by="CountyNoticeSchool.id")


class CountyNoticeSchool(Base):
    """One school's part of a bureau notice: its notice's number there (0: nobody to send it to) and what
    sending said (who could not be reached)."""

    __tablename__ = "county_notice_schools"
    __table_args__ = (UniqueConstraint("county_notice_id", "slug"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    county_notice_id: Mapped[int] = mapped_column(ForeignKey("county_notices.id", ondelete="CASCADE"))
    slug: Mapped[str] = mapped_column(String(32))
    notice_number: Mapped[int] = mapped_column(default=0)
    told: Mapped[str] = mapped_column(Text, default="")
    county_notice: Mapped[CountyNotice] = relationship(back_populates="schools")
