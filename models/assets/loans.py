"""Loans J<n> of registered things and of keys: who has how many of what, since when, until when."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base
from models.identity import Person
from models.repair import Asset

PENDING, OUT, RETURNED, DECLINED = "pending", "out", "returned", "declined"
LOAN_STATUS_NAMES = {PENDING: "待批准", OUT: "借用中", RETURNED: "已归还", DECLINED: "未批准"}
HELD = (PENDING, OUT)  # counted against what is left to lend


class AssetLoan(Base):
    """A loan: asked (pending when the thing needs the lender's approval), out, returned. A key loan
    names its copy; it stays open until the key comes back, whatever its due day."""

    __tablename__ = "asset_loans"
    __table_args__ = (Index("ix_asset_loans_status_due", "status", "due_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(unique=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    quantity: Mapped[int] = mapped_column(default=1)
    copy_no: Mapped[int | None] = mapped_column()  # a key's copy: 1, 2 ...
    status: Mapped[str] = mapped_column(String(12), default=OUT)
    asked_at: Mapped[datetime] = mapped_column()
    lent_at: Mapped[datetime | None] = mapped_column()
    due_on: Mapped[date | None] = mapped_column()
    returned_at: Mapped[datetime | None] = mapped_column()
    approver_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    reminded_on: Mapped[date | None] = mapped_column()
    escalated_at: Mapped[datetime | None] = mapped_column()

    asset: Mapped[Asset] = relationship()
    borrower: Mapped[Person] = relationship(foreign_keys=[borrower_id])
    approver: Mapped[Person | None] = relationship(foreign_keys=[approver_id])

    @property
    def code(self) -> str:
        return f"J{self.number}"
