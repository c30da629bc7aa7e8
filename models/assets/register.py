"""An asset's history (一物一档: moves, loans, stocktakes, disposal; repairs are its tickets) and the
disposal requests (报废 BF<n>) admin approves."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base
from models.identity import Person
from models.media import DownloadedPhoto
from models.repair import Asset

# history kinds
REGISTERED, MOVED, LENT, RETURNED, CHECKED, DISPOSED_EVENT = "registered", "moved", "lent", "returned", "checked", \
    "disposed"
EVENT_NAMES = {REGISTERED: "登记", MOVED: "调动", LENT: "借出", RETURNED: "归还", CHECKED: "盘点", DISPOSED_EVENT: "报废"}
PENDING, APPROVED, DECLINED = "pending", "approved", "declined"  # a request's states (loans, requisitions, disposals)
REQUEST_NAMES = {PENDING: "待审批", APPROVED: "已批准", DECLINED: "已驳回"}


class AssetEvent(Base):
    """One line of an asset's history, never updated: nothing the office may be audited on is overwritten."""

    __tablename__ = "asset_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column()
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    note: Mapped[str] = mapped_column(Text, default="")

    asset: Mapped[Asset] = relationship()
    person: Mapped[Person | None] = relationship()


class Disposal(Base):
    """报废 BF<n>: asked by staff or the custodian, approved (or declined) by admin."""

    __tablename__ = "asset_disposals"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(unique=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default=PENDING)
    asked_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    asked_at: Mapped[datetime] = mapped_column()
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column()

    asset: Mapped[Asset] = relationship()
    asked_by: Mapped[Person | None] = relationship(foreign_keys=[asked_by_id])
    decided_by: Mapped[Person | None] = relationship(foreign_keys=[decided_by_id])

    @property
    def code(self) -> str:
        return f"BF{self.number}"


class AssetPhoto(DownloadedPhoto, Base):
    """A thing's photo for its file (一物一档), sent after 资产 <编号>; the media worker downloads it at
    once into the storage folder, as assets/<asset id>/<id>-<media digest>.jpg."""

    __tablename__ = "asset_photos"
    __table_args__ = (Index("ix_asset_photos_due", "status", "next_attempt_at"),)

    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)

    asset: Mapped[Asset] = relationship()
