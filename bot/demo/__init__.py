"""The demo school (names from seeds/001's 分工 table), loaded through the same imports operators use."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.school import import_calendar, set_setting
from handlers.bus import import_routes
from handlers.duty import import_posts, import_roster
from handlers.identity import import_people, import_students
from handlers.repair import import_assets, import_rooms
from handlers.safety import import_drills
from models import ParentLink, Person, Student

HERE = Path(__file__).resolve().parent
DEMO_TEACHER = "张丽"


def is_empty(db: Session) -> bool:
    return (db.scalar(select(func.count()).select_from(Person)) or 0) == 0


def load_demo(db: Session, now: datetime) -> None:
    import_people(db, HERE / "people.csv", now)
    import_students(db, HERE / "students.csv", now)
    import_calendar(db, HERE / "calendar.csv")
    import_drills(db, HERE / "drills.csv")
    import_rooms(db, HERE / "rooms.csv")
    import_assets(db, HERE / "assets.csv")
    import_routes(db, HERE / "routes.csv")
    set_setting(db, "bus_manager", "宦欢")  # 校车管理 in seeds/001's 分工 table
    set_setting(db, "school_latitude", "31.810000")
    set_setting(db, "school_longitude", "119.974000")
    import_posts(db, HERE / "posts.csv")
    import_roster(db, HERE / "duty.csv")
    parent = db.scalar(select(Person).where(Person.name == "陈建国"))
    child = db.scalar(select(Student).where(Student.name == "陈小明"))
    if parent is not None and child is not None:
        db.add(ParentLink(person=parent, student=child))
    db.flush()
