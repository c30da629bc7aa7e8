"""区县概览, read-only: /admin/county (?view=term, ?month=YYYY-MM) and its XLSX, for the bureau (and the
home school's admin). It shows only on the default school's console, the county office's home; the figures
come from every school's own namespace (bot.county_report).
"""

from __future__ import annotations

import tempfile
from datetime import date, datetime
from pathlib import Path

from flask import Response, abort, render_template, request, send_file

from bot.console import base
from bot.console.base import bp, requires
from bot.county_report import HEADER, MONTH, TERM, county_rows, write_xlsx

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
    from bot.county import County

    services = base.services()
    if services.settings.school:  # signed in to another school: the county is not its business
        abort(404)
    return County.of(services)


@bp.get("/county")
@requires("bureau", "admin")
def county() -> str:
    view, month = _asked()
    period, rows = county_rows(_county(), view, month)
    return render_template("admin/county.html", period=period, rows=rows, header=HEADER, view=view,
                           month=f"{period.first:%Y-%m}")


@bp.get("/county/export.xlsx")
@requires("bureau", "admin")
def county_export() -> Response:
    view, month = _asked()
    period, rows = county_rows(_county(), view, month)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_xlsx(Path(tmp) / "county.xlsx", period, rows)
        data = path.read_bytes()
    name = XLSX_NAME.format(period=f"{period.first:%Y%m%d}-{period.last:%Y%m%d}")
    from io import BytesIO

    return send_file(BytesIO(data), mimetype=XLSX_TYPE, as_attachment=True, download_name=name)
