"""食堂: a month's feedback with its photos and replies, the survey answers and 陪餐 records."""

from __future__ import annotations

from datetime import timedelta

from flask import Response, render_template, request

from bot.console import base
from bot.console.base import MAX_ID, bp, month_asked, requires, send_photo
from bot.text import month_key, month_span
from handlers.canteen import (
    KIND_NAMES,
    SCORE_NAMES,
    average,
    counted_ratings,
    month_feedback,
    month_meals,
    month_surveys,
    photo_state,
    superseded_code,
    survey_averages,
    survey_counted,
)
from models import FeedbackPhoto

SHOWN = 200  # the month's newest feedback on the page; every one is in the 食堂台账 (台账)


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
        rows = month_feedback(db, month)[::-1]
        codes = {r.id: r.code for r in rows}
        surveys = month_surveys(db, month, tz)
        return render_template("admin/canteen.html", month=month, rows=rows, photo_state=photo_state,
                               surveys=surveys, survey_averages=survey_averages(surveys), score_names=SCORE_NAMES,
                               kind_names=KIND_NAMES, survey_counted=lambda a: survey_counted(a, tz),
                               meals=month_meals(db, month),
                               average=average(counted_ratings(rows)),
                               superseded={r.id: superseded_code(r, codes) for r in rows if not r.counted},
                               alerts=sum(1 for r in rows if r.alert_words), shown=SHOWN,
                               earlier=month_key(first - timedelta(days=1)), later=month_key(after))


@bp.get(f"/canteen-photos/<int(max={MAX_ID}):photo_id>")
@requires("admin", "canteen", "bureau")
def canteen_photo(photo_id: int) -> Response:
    return send_photo(FeedbackPhoto, photo_id)
