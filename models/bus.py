"""School bus (校车): routes and stops, each day's trips with their headcounts, left-on-bus alarms,
leave (请假) and parents' arrival-notice subscriptions."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow
from models.identity import Person, Student
from models.outbox import Push

MORNING, AFTERNOON = "am", "pm"
TRIP_NAMES = {MORNING: "上学", AFTERNOON: "放学"}
BOARD, ALIGHT = "上车", "下车"


def route_label(number: str) -> str:
    """A route as people name it: "3" is 3号线 (a student's route is stored as the bare number)."""
    return f"{number}号线" if number else ""


class BusRoute(Base):
    __tablename__ = "bus_routes"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(16), unique=True)  # "3", matched with Student.route
    aliases: Mapped[str] = mapped_column(String(200), default="")
    plate: Mapped[str] = mapped_column(String(20), default="")
    driver: Mapped[str] = mapped_column(String(64), default="")
    driver_phone: Mapped[str] = mapped_column(String(32), default="")
    monitors: Mapped[str] = mapped_column(String(200), default="")  # names, ";"-separated
    stopped_at: Mapped[datetime | None] = mapped_column()  # 停运: kept (its trips are history), no longer run

    stops: Mapped[list[BusStop]] = relationship(back_populates="route", order_by="BusStop.seq",
                                                cascade="all, delete-orphan")

    @property
    def label(self) -> str:
        return route_label(self.number)

    @property
    def monitor_names(self) -> list[str]:
        return [n for n in self.monitors.split(";") if n]


class BusStop(Base):
    __tablename__ = "bus_stops"
    __table_args__ = (UniqueConstraint("route_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    route_id: Mapped[int] = mapped_column(ForeignKey("bus_routes.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column()
    name: Mapped[str] = mapped_column(String(64))
    am_time: Mapped[str] = mapped_column(String(5), default="")  # HH:MM
    pm_time: Mapped[str] = mapped_column(String(5), default="")

    route: Mapped[BusRoute] = relationship(back_populates="stops")


class BusTrip(Base):
    """One route's morning or afternoon trip on one day, with the counts its monitor reported."""

    __tablename__ = "bus_trips"
    __table_args__ = (UniqueConstraint("route_id", "day", "trip"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    route_id: Mapped[int] = mapped_column(ForeignKey("bus_routes.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(index=True)
    trip: Mapped[str] = mapped_column(String(2))  # am | pm
    expected: Mapped[int | None] = mapped_column()
    boarded: Mapped[int | None] = mapped_column()
    boarded_at: Mapped[datetime | None] = mapped_column()
    boarded_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    alighted: Mapped[int | None] = mapped_column()
    alighted_at: Mapped[datetime | None] = mapped_column()
    alighted_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    mismatch_alerted_at: Mapped[datetime | None] = mapped_column()
    data_error: Mapped[str] = mapped_column(String(200), default="")
    reminded_at: Mapped[datetime | None] = mapped_column()
    escalated_at: Mapped[datetime | None] = mapped_column()
    arrival_notified_at: Mapped[datetime | None] = mapped_column()

    route: Mapped[BusRoute] = relationship()
    boarded_by: Mapped[Person | None] = relationship(foreign_keys=[boarded_by_id])
    alighted_by: Mapped[Person | None] = relationship(foreign_keys=[alighted_by_id])
    alarms: Mapped[list[BusAlarm]] = relationship(back_populates="trip", order_by="BusAlarm.id")
    count_notices: Mapped[list[BusCountNotice]] = relationship(back_populates="trip",
                                                               order_by="BusCountNotice.id")


class BusCountNotice(Base):
    """What the office was told about a trip's 上车 count: a mismatch (diff ≠ 0) or its correction
    (diff = 0), with the push that told them. The latest row says what they believe now."""

    __tablename__ = "bus_count_notices"

    id: Mapped[int] = mapped_column(primary_key=True)
    trip_id: Mapped[int] = mapped_column(ForeignKey("bus_trips.id", ondelete="CASCADE"), index=True)
    boarded: Mapped[int] = mapped_column()
    expected: Mapped[int] = mapped_column()
    diff: Mapped[int] = mapped_column()  # boarded - expected
    push_id: Mapped[int | None] = mapped_column(ForeignKey("pushes.id", ondelete="SET NULL"))
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)

    trip: Mapped[BusTrip] = relationship(back_populates="count_notices")
    push: Mapped[Push | None] = relationship()


class BusAlarm(Base):
    """A child may be left on the bus: pushed at once, repeated every 5 minutes until 确认."""

    __tablename__ = "bus_alarms"

    id: Mapped[int] = mapped_column(primary_key=True)
    trip_id: Mapped[int] = mapped_column(ForeignKey("bus_trips.id", ondelete="CASCADE"), index=True)
    raised_at: Mapped[datetime] = mapped_column(default=utcnow)
    missing: Mapped[int] = mapped_column()
    pushes: Mapped[int] = mapped_column(default=1)
    last_pushed_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column()
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    note: Mapped[str] = mapped_column(Text, default="")

    trip: Mapped[BusTrip] = relationship(back_populates="alarms")
    acknowledged_by: Mapped[Person | None] = relationship()


class BusLeave(Base):
    """A student not riding on a day's trips (请假); cancelled by 销假."""

    __tablename__ = "bus_leaves"

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"), index=True)
    day: Mapped[date] = mapped_column(index=True)
    trips: Mapped[str] = mapped_column(String(3))  # am | pm | all
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column()

    student: Mapped[Student] = relationship()
    requested_by: Mapped[Person | None] = relationship()

    def covers(self, trip: str) -> bool:
        return self.cancelled_at is None and self.trips in ("all", trip)


class BusSubscription(Base):
    """A parent who asked (订阅 校车) to be told when their child's morning bus reaches school."""

    __tablename__ = "bus_subscriptions"

    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
