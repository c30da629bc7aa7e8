"""The county overview in the console, read-only: /admin/county (?view=term, ?month=YYYY-MM) and its XLSX.

A small blueprint of its own beside the console (which is being rebuilt as the bot/console/ package; this
page moves there as bot/console/county.py). It uses the console's sign-in, and shows only on the default
school's console, the county office's home; the figures come from every school's own namespace.
"""

from __future__ import annotations

import tempfile
from datetime import date, datetime
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, render_template, request, send_file

from bot.console import login_required
from bot.county_report import HEADER, MONTH, TERM, county_rows, write_xlsx

bp = Blueprint("county_page", __name__, url_prefix="/admin/county", template_folder="templates")
XLSX_NAME = "区县概览-{period}.xlsx"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _asked() -> tuple[str, date | None]:
    view = TERM if request.args.get("view") == TERM else MONTH
    month = request.args.get("month", "")
    try:
        return view, (datetime.strptime(month, "%Y-%m").date() if month else None)
    except ValueError:
        abort(400)


def _county():  # type: ignore[no-untyped-def]
    from bot.county import County, console_services

    if console_services().settings.school:  # signed in to another school: the county is not its business
        abort(404)
    return County.of(current_app.extensions["houqin"])


@bp.get("")
@login_required
def overview() -> str:
    view, month = _asked()
    period, rows = county_rows(_county(), view, month)
    return render_template("admin/county.html", period=period, rows=rows, header=HEADER, view=view,
                           month=f"{period.first:%Y-%m}")


@bp.get("/export.xlsx")
@login_required
def export() -> Response:
    view, month = _asked()
    period, rows = county_rows(_county(), view, month)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_xlsx(Path(tmp) / "county.xlsx", period, rows)
        data = path.read_bytes()
    name = XLSX_NAME.format(period=f"{period.first:%Y%m%d}-{period.last:%Y%m%d}")
    from io import BytesIO

    return send_file(BytesIO(data), mimetype=XLSX_TYPE, as_attachment=True, download_name=name)
