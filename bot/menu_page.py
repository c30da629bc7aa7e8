"""The public mobile menu page: `/menu/<year>-W<week>` shows a published week (Chinese, phone-sized,
allergens marked); `/menu` goes to this week's. Drafts and unknown weeks are a Chinese 404 page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from flask import Blueprint, Response, abort, make_response, redirect, render_template, send_file
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.county import request_services, school_prefix
from bot.services import Services
from bot.text import WEEKDAYS
from handlers.canteen import by_day, find_week, iso_week, parse_week, week_key, week_monday
from models import MenuItem, MenuWeek
from models.canteen import PUBLISHED

bp = Blueprint("menu_page", __name__)

TITLE = "{first}–{last} 食堂菜单"
NO_MENU_TITLE = "没有这一周的菜单"
NO_MENU = "这一周的菜单还没有发布（或链接不完整）。食堂每周四公布下周菜单。"
THIS_WEEK = ("/menu", "查看本周菜单")


@dataclass
class DayView:
    day: date
    label: str
    items: list[MenuItem]
    today: bool


def _services() -> Services:
    """The school the URL names (/s/<school>/…), else the default school (bot.county)."""
    return request_services()


def _published(db: Session, year: int, week: int) -> bool:
    found = find_week(db, year, week)
    return found is not None and found.published


def week_view(found: MenuWeek, today: date) -> tuple[str, list[DayView], list[str]]:
    """A week with items as the page shows it (here and on a menu push's page): its title, its days
    and every allergen in it."""
    days = [DayView(day, f"周{WEEKDAYS[day.weekday()]} {day.month}月{day.day}日", items, day == today)
            for day, items in by_day(found.items).items()]
    allergens = sorted({a for item in found.items for a in item.allergen_list})
    title = TITLE.format(first=f"{days[0].day.month}月{days[0].day.day}日",
                         last=f"{days[-1].day.month}月{days[-1].day.day}日")
    return title, days, allergens


def _no_menu() -> Response:
    """A week nobody can see, as a Chinese phone page that leads to this week's menu."""
    page = render_template("push_gone.html", title=NO_MENU_TITLE, text=NO_MENU,
                           link=(school_prefix() + THIS_WEEK[0], THIS_WEEK[1]))
    return make_response(page, 404)


@bp.get("/menu")
@bp.get("/menu/")
def this_week() -> ResponseReturnValue:
    services = _services()
    today = services.now().astimezone(services.settings.tz).date()
    return redirect(f"{school_prefix()}/menu/{week_key(*iso_week(today))}")


@bp.get("/menu/<key>")
def show_week(key: str) -> ResponseReturnValue:
    parsed = parse_week(key)
    if parsed is None:
        return _no_menu()
    services = _services()
    today = services.now().astimezone(services.settings.tz).date()
    with services.read_factory() as db:
        found = find_week(db, *parsed)
        if found is None or not found.published or not found.items:
            return _no_menu()
        title, days, allergens = week_view(found, today)
        monday = week_monday(*parsed)
        neighbours = {label: week_key(*iso_week(monday + timedelta(days=shift)))
                      for label, shift in (("上一周", -7), ("下一周", 7))
                      if _published(db, *iso_week(monday + timedelta(days=shift)))}
        return render_template("menu.html", title=title, week=found, days=days, allergens=allergens,
                               neighbours=neighbours)


@bp.get("/menu/photo/<int:item_id>")
def photo(item_id: int) -> ResponseReturnValue:
    services = _services()
    storage = services.settings.storage_dir.resolve()
    with services.read_factory() as db:
        item = db.scalar(select(MenuItem).join(MenuWeek).where(MenuItem.id == item_id,
                                                               MenuWeek.status == PUBLISHED))
        relative = item.photo if item is not None else ""
    if not relative:
        abort(404)
    path = (storage / relative).resolve()
    if not path.is_relative_to(storage) or not path.is_file():
        abort(404)
    return send_file(Path(path), max_age=3600)
