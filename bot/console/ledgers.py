"""台账: every ledger for a month or a term, to download — the very workbooks `houqin export` writes
(bot/ledgers.py builds both)."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta

from flask import Response, abort, render_template, request, send_file

from bot.console import base
from bot.console.base import bp, month_asked, requires
from bot.export import Period
from bot.ledgers import LEDGERS, build, file_name, terms
from bot.text import month_key, month_span

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _term(text: str, known: list[Period]) -> Period:
    """?term=YYYY-MM-DD, a term's first day in the school calendar; 400 for any other."""
    try:
        first = datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        abort(400)
    found = next((p for p in known if p.first == first), None)
    if found is None:
        abort(400)
    return found


@bp.get("/ledgers")
@requires("admin", "bureau")
def ledgers() -> str:
    services = base.services()
    month = month_asked(request.args.get("month", ""), services.now().astimezone(services.settings.tz).date())
    first, after = month_span(month)
    with base.read_db() as db:
        known = terms(db)
    return render_template("admin/ledgers.html", kinds=list(LEDGERS.values()), month=month, key=month_key(month),
                           period=Period.month(month), terms=known,
                           earlier=month_key(first - timedelta(days=1)), later=month_key(after))


@bp.get("/ledgers/<key>.xlsx")
@requires("admin", "bureau")
def ledger_download(key: str) -> Response:
    """One ledger as XLSX: ?month=YYYY-MM (this month without one) or ?term=<the term's first day>."""
    if key not in LEDGERS:
        abort(404)
    services = base.services()
    today: date = services.now().astimezone(services.settings.tz).date()
    with base.read_db() as db:
        if request.args.get("term"):
            period = _term(request.args["term"], terms(db))
        else:
            period = Period.month(month_asked(request.args.get("month", ""), today))
        ledger = build(key, db, period, services.settings.tz, today)
    stream = ledger.save(io.BytesIO())
    stream.seek(0)
    return send_file(stream, mimetype=XLSX, as_attachment=True, download_name=file_name(ledger))
