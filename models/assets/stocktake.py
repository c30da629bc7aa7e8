"""Stocktakes (盘点): the scope admin started, and every check — a registered asset seen in a room, or
a code or thing not in the register (with its photo)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base
from models.identity import Person
from models.media import DownloadedPhoto
from models.repair import Asset, Room

SCHOOL, BUILDING, ROOM = "school", "building", "room"  # scopes


class Stocktake(Base):
    __tablename__ = "stocktakes"

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(12))
    scope_name: Mapped[str] = mapped_column(String(100), default="")  # 全校, the building, the room's name
    building: Mapped[str] = mapped_column(String(64), default="")
    room_id: Mapped[int | None] = mapped_column(ForeignKey("rooms.id", ondelete="SET NULL"))
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    started_at: Mapped[datetime] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()

    room: Mapped[Room | None] = relationship()
    started_by: Mapped[Person | None] = relationship()
    checks: Mapped[list[StocktakeCheck]] = relationship(back_populates="stocktake", lazy="selectin",
                                                        order_by="StocktakeCheck.id")


class StocktakeCheck(Base):
    __tablename__ = "stocktake_checks"

    id: Mapped[int] = mapped_column(primary_key=True)
    stocktake_id: Mapped[int] = mapped_column(ForeignKey("stocktakes.id", ondelete="CASCADE"), index=True)
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id", ondelete="SET NULL"))
    code: Mapped[str] = mapped_column(String(100))  # as scanned or written; an unregistered thing's code or name
    room_id: Mapped[int | None] = mapped_column(ForeignKey("rooms.id", ondelete="SET NULL"))  # where it was seen
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column()
    photo_media_id: Mapped[str] = mapped_column(String(200), default="")

    stocktake: Mapped[Stocktake] = relationship(back_populates="checks")
    asset: Mapped[Asset | None] = relationship()
    room: Mapped[Room | None] = relationship()
    person: Mapped[Person | None] = relationship()


class StocktakePhoto(DownloadedPhoto, Base):
    """The photo of a thing not in the register, sent during a stocktake (to register it later); downloaded
    by the media worker as stocktakes/<check id>/<id>-<media digest>.jpg."""

    __tablename__ = "stocktake_photos"
    __table_args__ = (Index("ix_stocktake_photos_due", "status", "next_attempt_at"),)

    check_id: Mapped[int] = mapped_column(ForeignKey("stocktake_checks.id", ondelete="CASCADE"), index=True)

    check: Mapped[StocktakeCheck] = relationship()
