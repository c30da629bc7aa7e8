"""The county: the schools one installation serves, and who follows a shared account in which school.

These tables are used only in the main (default school's) database namespace; every school's own data
lives in its own namespace (a PostgreSQL schema, or a SQLite file beside the main one), built by the
same migrations, so no other table carries a school column. The migrations create these tables in
every namespace; only the main one's rows mean anything.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

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
