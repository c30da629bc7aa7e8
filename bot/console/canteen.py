"""食堂: a month's feedback with its photos and replies, the survey answers and 陪餐 records."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import date, timedelta, tzinfo
from pathlib import Path
from typing import Any

from flask import Response, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload, selectinload

from bot.audit import record
from bot.console import base
from bot.console.acting import field, refuse
from bot.console.base import MAX_ID, acting_person, actor, bp, check_csrf, month_asked, requires, send_photo
from bot.outbox import Outbox
from bot.text import month_bounds, month_key, month_span
from bot.wechat.gateway import sniff_image
from handlers.canteen import (
    DAILY_HEADER,
    GROUP_HEADER,
    KIND_NAMES,
    MEAL_CODES,
    NAME_ONLY,
    NEXT_WEEK,
    PUBLISH_NONE,
    SCORE_NAMES,
    SURVEY_SCORES,
    THIS_WEEK,
    MealRow,
    canteen_report,
    find_week,
    iso_week,
    joined,
    menu_url,
    month_meals,
    next_week_of,
    parse_week,
    photo_state,
    publish_week,
    reply_feedback,
    save_menu,
    survey_counted,
    week_key,
    week_monday,
)
from models import CanteenFeedback, CanteenReply, FeedbackPhoto, MenuItem, SurveyResponse
from models.canteen import MEALS

WEEKDAY_NAMES = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")

SHOWN = 100  # the month's newest feedback on the page; every one is in the 食堂台账 (台账)
SURVEYS_SHOWN = 100  # the month's newest survey answers on the page; every one is in the 食堂台账 too


@bp.get("/canteen")
@requires("admin", "canteen", "bureau")
def canteen() -> str:
    """A month's canteen feedback, newest first, with its photos, food-safety words and replies; the
    month's survey answers (every one, with the averages of those that count) and 陪餐 records."""
    services = base.services()
    month = month_asked(request.args.get("month", ""), services.now().astimezone(services.settings.tz).date())
    first, after = month_span(month)
    tz = services.settings.tz
    with base.read_db() as db:
        figures = _month_figures(db, first, after)
        rows = _newest_feedback(db, first, after, SHOWN)
        survey_total, survey_counted_count, averages = _survey_figures(db, month, tz)
        surveys = _newest_surveys(db, month, tz, SURVEYS_SHOWN)
        return render_template("admin/canteen.html", month=month, rows=rows, photo_state=photo_state,
                               surveys=surveys, survey_total=survey_total, survey_counted_count=survey_counted_count,
                               survey_averages=averages, surveys_shown=SURVEYS_SHOWN, score_names=SCORE_NAMES,
                               kind_names=KIND_NAMES, survey_counted=lambda a: survey_counted(a, tz),
                               meals=month_meals(db, month), total=figures.total, average=figures.average,
                               superseded=_superseded_codes(db, rows), superseded_count=figures.superseded,
                               alerts=figures.alerts, shown=SHOWN,
                               earlier=month_key(first - timedelta(days=1)), later=month_key(after))


@dataclass
class MonthFigures:
    total: int  # every feedback of the month
    average: float | None  # over the scores that count (not superseded), as handlers.canteen.average rounds it
    superseded: int  # feedback whose score a later rating of the same person and day replaced
    alerts: int  # feedback with food-safety words


def _month_figures(db: Session, first: date, after: date) -> MonthFigures:
    """The month's figures as one SQL aggregate: the page shows them over every feedback of the month
    but loads only the rows it shows."""
    counted = CanteenFeedback.superseded_by_id.is_(None)
    total, scored, score_sum, alerts = db.execute(
        select(func.count(), func.count().filter(counted), func.coalesce(func.sum(CanteenFeedback.rating).filter(counted), 0),
               func.count().filter(CanteenFeedback.alert_words != ""))
        .where(CanteenFeedback.day >= first, CanteenFeedback.day < after)).one()
    return MonthFigures(total=total, average=round(score_sum / scored, 1) if scored else None,
                        superseded=total - scored, alerts=alerts)


def _newest_feedback(db: Session, first: date, after: date, limit: int) -> list[CanteenFeedback]:
    """The month's newest `limit` feedback (by day and number, newest first) with givers, photos, replies."""
    return list(db.scalars(select(CanteenFeedback).where(CanteenFeedback.day >= first, CanteenFeedback.day < after)
                           .options(joinedload(CanteenFeedback.person).options(*NAME_ONLY),
                                    selectinload(CanteenFeedback.replies).joinedload(CanteenReply.person)
                                    .options(*NAME_ONLY))
                           .order_by(CanteenFeedback.day.desc(), CanteenFeedback.number.desc()).limit(limit)))


def _survey_figures(db: Session, month: date, tz: tzinfo) -> tuple[int, int, dict[str, float | None]]:
    """The month's answers, those that count, and each score's average over those that count (one SQL
    aggregate; rounded as handlers.canteen.average rounds)."""
    start, end = month_bounds(month, tz)
    counted = SurveyResponse.superseded_by_id.is_(None)
    columns = [getattr(SurveyResponse, key) for key in SURVEY_SCORES]
    row = db.execute(select(func.count(), func.count().filter(counted),
                            *(func.count(c).filter(counted) for c in columns),
                            *(func.coalesce(func.sum(c).filter(counted), 0) for c in columns))
                     .where(SurveyResponse.at >= start, SurveyResponse.at < end)).one()
    n = len(SURVEY_SCORES)
    scored, sums = row[2:2 + n], row[2 + n:]
    averages = {key: round(sums[i] / scored[i], 1) if scored[i] else None for i, key in enumerate(SURVEY_SCORES)}
    return row[0], row[1], averages


def _newest_surveys(db: Session, month: date, tz: tzinfo, limit: int) -> list[SurveyResponse]:
    """The month's newest `limit` survey answers, oldest of them first, with who gave them and the answer
    that superseded each."""
    start, end = month_bounds(month, tz)
    newest = list(db.scalars(select(SurveyResponse).where(SurveyResponse.at >= start, SurveyResponse.at < end)
                             .options(joinedload(SurveyResponse.person).options(*NAME_ONLY),
                                      joinedload(SurveyResponse.superseded_by))
                             .order_by(SurveyResponse.at.desc(), SurveyResponse.id.desc()).limit(limit)))
    return newest[::-1]


def _superseded_codes(db: Session, rows: list[CanteenFeedback]) -> dict[int, str]:
    """For each shown row whose score was superseded, the code of the later rating that counts instead
    (read in one query when it is not itself among the shown rows)."""
    codes = {r.id: r.code for r in rows}
    missing = {r.superseded_by_id for r in rows if r.superseded_by_id is not None} - codes.keys()
    if missing:
        codes.update((i, f"F{n}") for i, n in db.execute(
            select(CanteenFeedback.id, CanteenFeedback.number).where(CanteenFeedback.id.in_(missing))))
    return {r.id: codes.get(r.superseded_by_id, "?") for r in rows if r.superseded_by_id is not None}


@bp.get(f"/canteen-photos/<int(max={MAX_ID}):photo_id>")
@requires("admin", "canteen", "bureau")
def canteen_photo(photo_id: int) -> Response:
    return send_photo(FeedbackPhoto, photo_id)


# -- 下周菜单: the week grid, 发布 ---------------------------------------------------------------------
DISHES_LIMIT = 300
ALLERGENS_LIMIT = 200
PHOTO_LIMIT = 5 * 1024 * 1024
SHOWN_DAYS = range(5)  # Monday to Friday, and a weekend day only when it has a meal
BAD_WEEK = "周次「{value}」不对：请写成 2026-W49。"
BAD_PHOTO = "{day}{meal}的照片不是图片（jpg、png、gif、webp），或大于 5 MB。"
ALLERGENS_WITHOUT_DISHES = "{day}{meal}写了过敏原但没有菜品。"
MENU_SAVED = "{key} 菜单已保存：{count} 餐。"
MENU_SAVED_PUBLISHED = "（本周菜单已发布：页面即时更新，已发出的推送不再重发。）"
REPLY_LIMIT = 500
NO_REPLY = "请填写回复内容。"
PHOTO_SUFFIX = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp"}


def _cell(day: date, meal: str) -> str:
    return f"{day:%Y%m%d}-{MEAL_CODES[meal]}"


def _week_asked(text: str, today: date) -> tuple[int, int]:
    if not text:
        return next_week_of(today)
    parsed = parse_week(text)
    if parsed is None:
        refuse(BAD_WEEK.format(value=text[:20]))
    return parsed


def _which(target: tuple[int, int], today: date) -> str:
    return NEXT_WEEK if target == next_week_of(today) else THIS_WEEK if target == iso_week(today) else ""


@bp.get("/canteen/menu")
@requires("admin", "canteen", "bureau")
def menu() -> str:
    """A week's menu as a grid, meals × days: dishes, allergens and a photo per meal (next week unless
    ?week= names another), with 发布 while it is a draft."""
    services = base.services()
    today = services.now().astimezone(services.settings.tz).date()
    year, week = _week_asked(request.args.get("week", ""), today)
    monday = week_monday(year, week)
    with base.read_db() as db:
        found = find_week(db, year, week)
        items = {(i.day, i.meal): i for i in found.items} if found is not None else {}
        days = [monday + timedelta(days=n) for n in range(7)
                if n in SHOWN_DAYS or any(d == monday + timedelta(days=n) for d, _ in items)]
        return render_template("admin/menu.html", found=found, key=week_key(year, week), days=days, meals=MEALS,
                               items=items, cell=_cell, which=_which((year, week), today),
                               earlier=week_key(*iso_week(monday - timedelta(days=7))),
                               later=week_key(*iso_week(monday + timedelta(days=7))),
                               url=menu_url(services.settings, year, week), weekdays=WEEKDAY_NAMES)


@bp.post("/canteen/menu")
@requires("admin", "canteen")
def save_menu_grid() -> Any:
    """Save the grid: a filled meal is written as the menu import writes it (handlers.canteen.save_menu),
    an emptied one is removed. A bad cell refuses the whole grid."""
    check_csrf()
    services = base.services()
    today = services.now().astimezone(services.settings.tz).date()
    year, week = _week_asked(request.form.get("week", ""), today)
    monday = week_monday(year, week)
    days = [monday + timedelta(days=n) for n in range(7)]
    rows, emptied, problems = [], [], []
    with tempfile.TemporaryDirectory() as folder:
        for day in days:
            for meal in MEALS:
                name = _cell(day, meal)
                if f"dishes-{name}" not in request.form:
                    continue  # a weekend day the grid did not show
                label = f"{WEEKDAY_NAMES[day.weekday()]}{meal}"
                dishes = joined(field(f"dishes-{name}", f"{label}菜品", DISHES_LIMIT))
                allergens = joined(field(f"allergens-{name}", f"{label}过敏原", ALLERGENS_LIMIT))
                upload = request.files.get(f"photo-{name}")
                photo = None
                if upload is not None and upload.filename:
                    content = upload.read(PHOTO_LIMIT + 1)
                    kind = sniff_image(content[:16])
                    if kind is None or len(content) > PHOTO_LIMIT:
                        problems.append(BAD_PHOTO.format(day=WEEKDAY_NAMES[day.weekday()], meal=meal))
                        continue
                    photo = Path(folder) / f"{name}{PHOTO_SUFFIX[kind]}"
                    photo.write_bytes(content)
                if not dishes:
                    if allergens:
                        problems.append(ALLERGENS_WITHOUT_DISHES.format(day=WEEKDAY_NAMES[day.weekday()], meal=meal))
                    emptied.append((day, meal))
                    continue
                rows.append(MealRow(day, meal, dishes, allergens, photo))
        if problems:
            refuse("；".join(problems))
        with base.db() as db, db.begin():
            count = save_menu(db, rows, services.settings.storage_dir)
            for day, meal in emptied:
                item = db.scalar(select(MenuItem).where(MenuItem.day == day, MenuItem.meal == meal))
                if item is not None:
                    db.delete(item)
            found = find_week(db, year, week)
            key = week_key(year, week)
            text = MENU_SAVED.format(key=key, count=count)
            if found is not None and found.published:
                text += MENU_SAVED_PUBLISHED
            record(db, actor(), "menu_edit", key, "；".join(f"{r.day:%m-%d}{r.meal}：{r.dishes}" for r in rows), at=base.services().now())
    flash(text)
    return redirect(url_for("console.menu", week=key))


@bp.post("/canteen/menu/publish")
@requires("admin", "canteen")
def publish_menu() -> Any:
    """发布, as 「发布菜单」 in the chat and `houqin menu publish` do (handlers.canteen.publish_week)."""
    check_csrf()
    services = base.services()
    now = services.now()
    today = now.astimezone(services.settings.tz).date()
    year, week = _week_asked(request.form.get("week", ""), today)
    which = _which((year, week), today)
    with base.db() as db, db.begin():
        found = find_week(db, year, week)
        if found is None or not found.items:
            refuse(PUBLISH_NONE.format(which=f"{which}（{week_key(year, week)}）" if which else week_key(year, week)))
        text = publish_week(db, found, acting_person(db), now, services.settings,
                            Outbox(db, services.settings, now), which)
        record(db, actor(), "menu_publish", found.key, text, at=base.services().now())
    flash(text)
    return redirect(url_for("console.menu", week=week_key(year, week)))


@bp.post(f"/canteen/feedback/<int(max={MAX_ID}):number>/reply")
@requires("admin", "canteen")
def reply_to_feedback(number: int) -> Any:
    """The canteen's reply to F<n>, as 「回复 F<n> 内容」 in the chat: kept with it, pushed to the giver."""
    check_csrf()
    text = field("text", "回复", REPLY_LIMIT, lines=True)
    if not text:
        refuse(NO_REPLY)
    services = base.services()
    now = services.now()
    with base.db() as db, db.begin():
        feedback = db.scalar(select(CanteenFeedback).where(CanteenFeedback.number == number))
        if feedback is None:
            abort(404)
        result = reply_feedback(db, Outbox(db, services.settings, now), feedback, acting_person(db), text, now,
                                services.settings.tz)
        record(db, actor(), "canteen_reply", feedback.code, text, at=base.services().now())
        month = month_key(feedback.day)
    flash(result)
    return redirect(url_for("console.canteen", month=month))


# -- the monthly report, its chart drawn here as SVG ---------------------------------------------------
CHART_WIDTH, CHART_HEIGHT, CHART_TOP = 720, 220, 5


@bp.get("/canteen/report")
@requires("admin", "canteen", "bureau")
def canteen_report_page() -> str:
    """The month's report, the same figures `houqin export canteen` writes: daily averages (with their
    chart), averages per group, the complaints' frequent words."""
    services = base.services()
    month = month_asked(request.args.get("month", ""), services.now().astimezone(services.settings.tz).date())
    first, after = month_span(month)
    with base.read_db() as db:
        report = canteen_report(db, month, services.settings.tz)
    bars = []
    if report.daily:
        step = CHART_WIDTH / len(report.daily)
        for index, (day, count, avg, *_groups) in enumerate(report.daily):
            height = (avg or 0) / CHART_TOP * (CHART_HEIGHT - 30)
            bars.append({"x": round(index * step + step * 0.15, 1), "width": round(step * 0.7, 1),
                         "y": round(CHART_HEIGHT - 20 - height, 1), "height": round(height, 1),
                         "label": f"{day.day}", "value": avg, "count": count, "mid": round(index * step + step / 2, 1)})
    return render_template("admin/canteen_report.html", month=month, report=report, bars=bars,
                           width=CHART_WIDTH, height=CHART_HEIGHT, daily_header=DAILY_HEADER,
                           group_header=GROUP_HEADER, earlier=month_key(first - timedelta(days=1)),
                           later=month_key(after))
