"""The demo school (names from seeds/001's 分工 table), loaded through the same imports operators use."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.school import import_calendar, set_setting
from bot.tables import read_table
from bot.text import WEEKDAYS
from handlers.assets.register import import_assets
from handlers.assets.supplies import import_supplies
from handlers.bus import import_routes
from handlers.canteen import MEAL_WORDS, MealRow, find_week, iso_week, joined, save_menu
from handlers.duty import import_posts, import_roster
from handlers.identity import import_people, import_students
from handlers.repair.ledger import import_rooms
from handlers.safety import import_drills
from handlers.tasks.ledger import import_tasks
from models import ParentLink, Person, Student
from models.canteen import PUBLISHED

HERE = Path(__file__).resolve().parent
DEMO_TEACHER = "张丽"
DEMO_SCHOOL = "龙城实验小学"  # the demo school's name, in the title row of its ledgers
DEMO_TZ = ZoneInfo("Asia/Shanghai")
MENU_COLUMNS = {"week": ("周",), "weekday": ("星期",), "meal": ("餐次",), "dishes": ("菜品",), "allergens": ("过敏原",)}
NEXT_WEEK = "下周"


def is_empty(db: Session) -> bool:
    return (db.scalar(select(func.count()).select_from(Person)) or 0) == 0


def load_demo(db: Session, now: datetime) -> None:
    import_people(db, HERE / "people.csv", now)
    import_routes(db, HERE / "routes.csv")  # before the students, who ride its routes
    import_students(db, HERE / "students.csv", now)
    import_calendar(db, HERE / "calendar.csv")
    import_drills(db, HERE / "drills.csv")
    import_rooms(db, HERE / "rooms.csv")
    import_assets(db, HERE / "assets.csv", now)  # the register: equipment, things to lend, keys
    import_supplies(db, HERE / "supplies.csv")  # 日常用品 with their reorder levels (seeds/001 分工 14)
    set_setting(db, "school_name", DEMO_SCHOOL)  # heads every printed ledger (台账)
    set_setting(db, "bus_manager", "宦欢")  # 校车管理 in seeds/001's 分工 table
    set_setting(db, "school_latitude", "31.810000")
    set_setting(db, "school_longitude", "119.974000")
    import_posts(db, HERE / "posts.csv")
    import_roster(db, HERE / "duty.csv")
    load_demo_menu(db, now)
    import_tasks(db, HERE / "tasks.csv", now.astimezone(DEMO_TZ).date())  # seeds/001 附1 行事历, 附2 分工
    parent = db.scalar(select(Person).where(Person.name == "陈建国"))
    child = db.scalar(select(Student).where(Student.name == "陈小明"))
    if parent is not None and child is not None:
        db.add(ParentLink(person=parent, student=child))
    db.flush()


def load_demo_menu(db: Session, now: datetime) -> None:
    """This week's and next week's menus from a weekday template (menu.csv), whatever the date: this
    week published, next week left a draft — so the Thursday 12:00 reminder and the 16:00 fallback to
    admin can be seen, and 宦欢 can send 发布菜单."""
    today = now.astimezone(DEMO_TZ).date()
    monday = today - timedelta(days=today.weekday())
    rows = [MealRow(_demo_day(monday, row.get("week"), row.get("weekday")), MEAL_WORDS[row.get("meal")],
                    joined(row.get("dishes")), joined(row.get("allergens")))
            for row in read_table(HERE / "menu.csv", MENU_COLUMNS, required=tuple(MENU_COLUMNS))]
    save_menu(db, rows)
    this_week = find_week(db, *iso_week(today))
    if this_week is not None:
        this_week.status, this_week.published_at = PUBLISHED, now


def _demo_day(monday: date, week: str, weekday: str) -> date:
    return monday + timedelta(days=(7 if week == NEXT_WEEK else 0) + WEEKDAYS.index(weekday[-1]))
