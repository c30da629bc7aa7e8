"""The number series the office quotes (R<n> repair tickets, F<n> canteen feedback): one row per
series holding the last number given, so that numbers are handed out by one atomic UPDATE and two
people filing at the same moment never get the same one."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class NumberSeries(Base):
    """A series, named after the table whose `number` column it numbers, and its last number given."""

    __tablename__ = "counters"

    series: Mapped[str] = mapped_column(String(64), primary_key=True)  # e.g. "repair_tickets"
    last: Mapped[int] = mapped_column(default=0)
