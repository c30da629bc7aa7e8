"""Consumables (日常用品) with a stock level, and every movement: 入库, 领用 L<n> (pending when the item
needs approval), so that a month's consumption per item and per department can be read back."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base
from models.identity import Person

STOCK_IN, ISSUE = "in", "out"
DONE, PENDING, DECLINED = "done", "pending", "declined"


class Supply(Base):
    __tablename__ = "supplies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    unit: Mapped[str] = mapped_column(String(8), default="")
    stock: Mapped[int] = mapped_column(default=0)
    reorder_level: Mapped[int] = mapped_column(default=0)
    needs_approval: Mapped[bool] = mapped_column(default=False)
    keeper_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))

    keeper: Mapped[Person | None] = relationship()


class SupplyMove(Base):
    __tablename__ = "supply_moves"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(unique=True)
    supply_id: Mapped[int] = mapped_column(ForeignKey("supplies.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[int] = mapped_column()
    status: Mapped[str] = mapped_column(String(12), default=DONE)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"), index=True)
    department: Mapped[str] = mapped_column(String(64), default="")
    purpose: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(index=True)
    stock_after: Mapped[int | None] = mapped_column()
    approver_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))

    supply: Mapped[Supply] = relationship()
    person: Mapped[Person | None] = relationship(foreign_keys=[person_id])
    approver: Mapped[Person | None] = relationship(foreign_keys=[approver_id])

    @property
    def code(self) -> str:
        return f"L{self.number}"
