"""Repairs and hazards: rooms and assets (with their QR codes), tickets R<n>, their followers, photos
and history (later reports of the same fault, the withdrawal), and the category keyword map the school
can edit."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow
from models.identity import Person
from models.media import DownloadedPhoto

OPEN, ACCEPTED, DONE, CLOSED, WITHDRAWN = "open", "accepted", "done", "closed", "withdrawn"
ACTIVE = (OPEN, ACCEPTED)  # a ticket someone still has to work on
STATUS_NAMES = {OPEN: "待接单", ACCEPTED: "维修中", DONE: "已完成待评价", CLOSED: "已关闭", WITHDRAWN: "已撤销"}

REPORT, COMPLETION = "report", "completion"  # photo kinds
FOLLOW_UP, WITHDRAWAL = "follow_up", "withdrawal"  # event kinds

THING, KEY = "thing", "key"  # asset kinds
IN_USE, ON_LOAN, IN_REPAIR, DISPOSED = "in_use", "on_loan", "in_repair", "disposed"  # asset statuses
ASSET_STATUS_NAMES = {IN_USE: "在用", ON_LOAN: "借出", IN_REPAIR: "维修中", DISPOSED: "已报废"}


class Room(Base):
    """A registered place (教室, 办公室, 专用室 ...); teachers may name it by any of its aliases."""

    __tablename__ = "rooms"
    __table_args__ = (UniqueConstraint("building", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    building: Mapped[str] = mapped_column(String(64), default="")
    floor: Mapped[str] = mapped_column(String(16), default="")
    name: Mapped[str] = mapped_column(String(64))
    aliases: Mapped[str] = mapped_column(String(300), default="")  # ";"-separated
    responsible_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    qr_ticket: Mapped[str] = mapped_column(String(200), default="")
    qr_url: Mapped[str] = mapped_column(String(300), default="")

    responsible: Mapped[Person | None] = relationship()

    @property
    def alias_list(self) -> list[str]:
        return [a for a in self.aliases.replace("；", ";").replace("、", ";").split(";") if a.strip()]

    @property
    def where(self) -> str:
        """The building and floor: 教学楼 3楼."""
        floor = self.floor + ("楼" if self.floor.isdigit() else "") if self.floor else ""
        return " ".join(p for p in (self.building, floor) if p)


class Asset(Base):
    """A registered piece of equipment (projector, air conditioner ...) with its asset code."""

    __tablename__ = "assets"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(16))
    room_id: Mapped[int | None] = mapped_column(ForeignKey("rooms.id", ondelete="SET NULL"), index=True)
    qr_ticket: Mapped[str] = mapped_column(String(200), default="")
    qr_url: Mapped[str] = mapped_column(String(300), default="")
    # the register (一物一档, issue 18): who keeps it, what it cost, where it stands; keys are assets too
    kind: Mapped[str] = mapped_column(String(8), default=THING)  # thing | key
    custodian_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"), index=True)
    purchased_on: Mapped[date | None] = mapped_column()
    price: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    status: Mapped[str] = mapped_column(String(12), default=IN_USE)
    photo: Mapped[str] = mapped_column(String(300), default="")
    quantity: Mapped[int] = mapped_column(default=1)  # 篮球 ×10; a key's copies
    lendable: Mapped[bool] = mapped_column(default=False)
    needs_approval: Mapped[bool] = mapped_column(default=False)
    disposed_at: Mapped[datetime | None] = mapped_column()

    room: Mapped[Room | None] = relationship()
    custodian: Mapped[Person | None] = relationship()

    @property
    def status_name(self) -> str:
        return ASSET_STATUS_NAMES.get(self.status, self.status)

    @property
    def label(self) -> str:
        """投影仪（DJ-0302）."""
        return f"{self.name}（{self.code}）"


class RepairCategory(Base):
    """The keyword map the school edits (`houqin categories import`); empty means the defaults."""

    __tablename__ = "repair_categories"

    name: Mapped[str] = mapped_column(String(16), primary_key=True)
    keywords: Mapped[str] = mapped_column(Text, default="")  # ";"-separated
    position: Mapped[int] = mapped_column(default=0)  # the first category whose keyword matches wins


class RepairTicket(Base):
    """A repair or hazard report, R<number>, from filing to the reporter's rating."""

    __tablename__ = "repair_tickets"
    __table_args__ = (Index("ix_repair_tickets_status_filed", "status", "filed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(unique=True)
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"), index=True)
    room_id: Mapped[int | None] = mapped_column(ForeignKey("rooms.id", ondelete="SET NULL"), index=True)
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id", ondelete="SET NULL"), index=True)
    place: Mapped[str] = mapped_column(String(200))  # the room's label, or the place as typed
    category: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text)
    urgent: Mapped[bool] = mapped_column(default=False)
    hazard: Mapped[bool] = mapped_column(default=False)  # 巡查: a safety hazard (隐患) in the patrol ledger
    status: Mapped[str] = mapped_column(String(16), default=OPEN)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"), index=True)
    filed_at: Mapped[datetime] = mapped_column(default=utcnow)
    accepted_at: Mapped[datetime | None] = mapped_column()
    done_at: Mapped[datetime | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
    rating: Mapped[int | None] = mapped_column()
    note: Mapped[str] = mapped_column(Text, default="")  # the completion note (完成 R<n> 备注)
    reopen_count: Mapped[int] = mapped_column(default=0)
    unaccepted_escalated_at: Mapped[datetime | None] = mapped_column()
    overdue_escalated_at: Mapped[datetime | None] = mapped_column()

    reporter: Mapped[Person | None] = relationship(foreign_keys=[reporter_id])
    assignee: Mapped[Person | None] = relationship(foreign_keys=[assignee_id])
    room: Mapped[Room | None] = relationship()
    asset: Mapped[Asset | None] = relationship()
    followers: Mapped[list[TicketFollower]] = relationship(back_populates="ticket", cascade="all, delete-orphan",
                                                           lazy="selectin")
    photos: Mapped[list[TicketPhoto]] = relationship(back_populates="ticket", cascade="all, delete-orphan",
                                                     lazy="selectin", order_by="TicketPhoto.id")
    events: Mapped[list[TicketEvent]] = relationship(back_populates="ticket", cascade="all, delete-orphan",
                                                     lazy="selectin", order_by="TicketEvent.id")

    @property
    def code(self) -> str:
        return f"R{self.number}"

    @property
    def follower_people(self) -> list[Person]:
        return [f.person for f in self.followers]

    @property
    def follow_ups(self) -> list[TicketEvent]:
        return [e for e in self.events if e.kind == FOLLOW_UP]

    @property
    def withdrawal(self) -> TicketEvent | None:
        return next((e for e in reversed(self.events) if e.kind == WITHDRAWAL), None)


class TicketFollower(Base):
    """Someone who reported the same problem again and is told of each step, like the reporter."""

    __tablename__ = "ticket_followers"
    __table_args__ = (UniqueConstraint("ticket_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("repair_tickets.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    ticket: Mapped[RepairTicket] = relationship(back_populates="followers")
    person: Mapped[Person] = relationship(lazy="joined")


class TicketEvent(Base):
    """A ticket's history after filing, never overwritten: another report of the same fault in its
    reporter's own words (FOLLOW_UP, with `urgent` if it had urgent words), or the withdrawal with
    its reason (WITHDRAWAL)."""

    __tablename__ = "ticket_events"
    __table_args__ = (Index("ix_ticket_events_person_created", "person_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("repair_tickets.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text, default="")
    urgent: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    ticket: Mapped[RepairTicket] = relationship(back_populates="events")
    person: Mapped[Person | None] = relationship(lazy="joined")

    @property
    def who(self) -> str:
        return self.person.name if self.person else "（已删除）"


class TicketPhoto(DownloadedPhoto, Base):
    """A photo sent with a report or a completion; the media worker downloads it at once (WeChat keeps
    media for 3 days) into the storage folder, as repairs/R<n>/<id>-<kind>.jpg."""

    __tablename__ = "ticket_photos"
    __table_args__ = (Index("ix_ticket_photos_due", "status", "next_attempt_at"),)

    ticket_id: Mapped[int] = mapped_column(ForeignKey("repair_tickets.id", ondelete="CASCADE"), index=True)
    sender_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16), default=REPORT)  # report | completion

    ticket: Mapped[RepairTicket] = relationship(back_populates="photos")
    sender: Mapped[Person | None] = relationship(lazy="joined")
