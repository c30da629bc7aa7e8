"""The school's voice in the console (issue 19), mirroring handlers/notices.py, suggestions.py, survey.py:

- 通知回执 /admin/notices: the notices sent (composed on 推送 → 发通知, bot.console.outbox) with their
  confirmation counts; a notice's page lists each recipient's 回执 and reminds the rest once (提醒未确认,
  the same function as 「通知 N<n> 提醒」).
- 意见箱 /admin/suggestions: the month's suggestions (an anonymous one without its sender) and 回复 on the
  page (the same function as 「回复 Y<n> …」).
- 满意度测评 /admin/survey: start this term's survey, the results per item (share satisfied, shown from
  MIN_SHOWN answers), the comments grouped by keyword, the comparison, and the XLSX.
Every change is recorded in the audit log; refusals say why in Chinese and change nothing."""

from __future__ import annotations

import tempfile
from io import BytesIO
from pathlib import Path
from typing import Any

from flask import Response, abort, flash, redirect, render_template, request, send_file, url_for
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bot.audit import record
from bot.console import base
from bot.console.acting import field, refuse
from bot.console.base import MAX_ID, acting_person, actor, bp, requires
from bot.outbox import Outbox
from bot.text import split_list
from handlers import survey as office_survey
from handlers.notices import find_notice, notice_status, remind_unconfirmed
from handlers.suggestions import MAX_TEXT, STATUS_NAMES, answer_suggestion, suggestions_in_month
from models import Notice, Suggestion

NOTICES_SHOWN = 100
NO_REPLY = "请填写答复内容。"
BAD_DAYS = "测评天数请填写 1 到 60 之间的整数。"
ITEMS_LIMIT = 300
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SURVEY_XLSX = "后勤满意度测评-{period}.xlsx"


# -- 通知回执 ----------------------------------------------------------------------------------------
@bp.get("/notices")
@requires("admin", "bureau")
def notices() -> str:
    with base.read_db() as db:
        rows = list(db.scalars(select(Notice).order_by(Notice.number.desc()).limit(NOTICES_SHOWN)
                               .options(selectinload(Notice.recipients))))
        listed = [(n, notice_status(n)) for n in rows]
        return render_template("admin/notices.html", notices=listed)


@bp.get(f"/notices/<int(max={MAX_ID}):number>")
@requires("admin", "bureau")
def notice(number: int) -> str:
    with base.read_db() as db:
        found = find_notice(db, f"N{number}")
        if found is None:
            abort(404)
        return render_template("admin/notice.html", notice=found, status=notice_status(found))


@bp.post(f"/notices/<int(max={MAX_ID}):number>/remind")
@requires("admin")
def notice_remind(number: int) -> Any:
    """提醒未确认: once per notice (handlers.notices.remind_unconfirmed says when it was done already)."""
    services = base.services()
    now = services.now()
    with base.db() as db, db.begin():
        found = find_notice(db, f"N{number}")
        if found is None:
            abort(404)
        before = found.reminded_at
        said = remind_unconfirmed(db, Outbox(db, services.settings, now), found)
        if found.reminded_at == before:  # reminded already, nobody waiting, or no 回执 asked: nothing done
            refuse(said)
        record(db, actor(), "notice_remind", found.code, said, at=now)
    flash(said)
    return redirect(url_for("console.notice", number=number))


# -- 意见箱 ------------------------------------------------------------------------------------------
@bp.get("/suggestions")
@requires("admin", "bureau")
def suggestions() -> str:
    services = base.services()
    month = base.month_asked(request.args.get("month", ""), services.now().astimezone(services.settings.tz).date())
    with base.read_db() as db:
        rows = suggestions_in_month(db, month)
        return render_template("admin/suggestions.html", suggestions=rows, month=f"{month:%Y-%m}",
                               status_names=STATUS_NAMES, limit=MAX_TEXT)


@bp.post(f"/suggestions/<int(max={MAX_ID}):number>/reply")
@requires("admin")
def suggestion_reply(number: int) -> Any:
    """回复 Y<n> from the page: the same answer (and push to a signed sender) as in the chat."""
    text = field("text", "答复", MAX_TEXT, lines=True)
    if not text:
        refuse(NO_REPLY)
    services = base.services()
    now = services.now()
    with base.db() as db, db.begin():
        suggestion = db.scalar(select(Suggestion).where(Suggestion.number == number))
        if suggestion is None:
            abort(404)
        said = answer_suggestion(Outbox(db, services.settings, now), acting_person(db), suggestion, text)
        record(db, actor(), "suggestion_reply", suggestion.code, text, at=now)
        month = f"{suggestion.filed_on:%Y-%m}"
    flash(said)
    return redirect(url_for("console.suggestions", month=month))


# -- 满意度测评 ---------------------------------------------------------------------------------------
def _survey_asked(db: Any) -> Any:
    period = request.args.get("period", "")
    if len(period) > 16:
        abort(400)
    found = office_survey.find_survey(db, period)
    if period and found is None:
        abort(404)
    return found


@bp.get("/survey")
@requires("admin", "bureau")
def survey() -> str:
    with base.read_db() as db:
        found = _survey_asked(db)
        res = office_survey.results(db, found) if found is not None else None
        return render_template("admin/survey.html", survey=found, res=res,
                               rows=office_survey.result_rows(res) if res else [],
                               header=office_survey.RESULT_HEADER, percent=office_survey.percent,
                               days=office_survey.DEFAULT_DAYS)


@bp.post("/survey/start")
@requires("admin")
def survey_start() -> Any:
    days_text = field("days", "天数", 3)
    days = base.number(days_text) if days_text else office_survey.DEFAULT_DAYS
    if days is None or not 1 <= days <= 60:
        refuse(BAD_DAYS)
    items = split_list(field("items", "测评项目", ITEMS_LIMIT))
    parents_text = field("parent_items", "家长评价的项目", ITEMS_LIMIT)
    services = base.services()
    now = services.now()
    with base.db() as db:
        db.begin()
        try:
            try:
                found, said = office_survey.start_survey(
                    db, Outbox(db, services.settings, now), days=days, items=items,
                    parent_items=split_list(parents_text) if parents_text else None, by=actor())
            except office_survey.SurveyError as exc:
                refuse(str(exc))
            record(db, actor(), "survey_start", found.period, said, at=now)
            db.commit()
        finally:
            if db.in_transaction():
                db.rollback()
    flash(said)
    return redirect(url_for("console.survey"))


@bp.get("/survey/export.xlsx")
@requires("admin", "bureau")
def survey_export() -> Response:
    with base.read_db() as db:
        found = _survey_asked(db)
        if found is None:
            abort(404)
        res = office_survey.results(db, found)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "survey.xlsx"
            office_survey.write_results(str(path), res)
            data = path.read_bytes()
        name = SURVEY_XLSX.format(period=found.period)
    return send_file(BytesIO(data), mimetype=XLSX_TYPE, as_attachment=True, download_name=name)
