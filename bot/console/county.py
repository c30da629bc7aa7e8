"""区县概览, read-only: /admin/county (?view=term, ?month=YYYY-MM) and its XLSX, for the bureau's people only:
the home school's admin is a school's admin like any other and sees no other school's figures. It shows only
on the default school's console, the county office's home; the figures come from every school's own
namespace (bot.county_report), and each links to that school's read-only records.
"""

from __future__ import annotations

import tempfile
from datetime import date, datetime
from pathlib import Path
from typing import Any

from flask import Response, abort, flash, g, redirect, render_template, request, send_file, url_for

from bot.audit import record
from bot.console import base
from bot.console.acting import field, refuse
from bot.console.base import MAX_ID, actor, bp, requires
from bot.county_notices import county_notice_status, county_notices, get_county_notice, send_county_notice
from bot.county_report import HEADER, MONTH, TERM, county_rows, write_xlsx

XLSX_NAME = "区县概览-{period}.xlsx"
TITLE_LIMIT = 100
TEXT_LIMIT = 1000
NOTICE_SENT = "教育局通知 {id} 已发出。"
ALL_OR_SOME = "请选择「全部学校」或勾选学校。"
# the overview's columns (0-based, as SchoolRow.cells) -> the school page their figure links to
FIGURE_PAGES = {2: ("safety", {}), 3: ("safety", {}), 4: ("repairs", {"state": "open"}),
                5: ("repairs", {"state": "overdue"}), 6: ("bus", {}), 7: ("bus", {}), 8: ("bus", {}),
                9: ("canteen", {}), 10: ("canteen", {}), 11: ("outbox", {})}
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
@requires("bureau")
def county() -> str:
    view, month = _asked()
    county = _county()
    period, rows = county_rows(county, view, month)
    notices = [(n, county_notice_status(county, n)) for n in county_notices(county, limit=10)]
    return render_template("admin/county.html", period=period, rows=rows, header=HEADER, view=view,
                           month=f"{period.first:%Y-%m}", schools=county.schools(), notices=notices,
                           links=FIGURE_PAGES if "bureau" in g.roles else {})


@bp.post("/county/notify")
@requires("bureau")
def county_notify() -> Any:
    """通知 from the bureau to the admins of every school or of the schools ticked (bot.county_notices)."""
    from bot.county import CountyError

    county = _county()
    title = field("title", "标题", TITLE_LIMIT)
    body = field("body", "通知内容", TEXT_LIMIT, lines=True)
    scope = request.form.get("scope", "")
    if scope not in ("all", "some"):
        refuse(ALL_OR_SOME)
    slugs = request.form.getlist("school") if scope == "some" else None
    if slugs is not None and not slugs:
        refuse(ALL_OR_SOME)
    try:
        notice, lines = send_county_notice(county, actor(), title, body, slugs)
    except CountyError as exc:
        refuse(str(exc))
    with county.default.factory() as db, db.begin():
        record(db, actor(), "county_notice", f"教育局通知 {notice.id}",
               f"{title}\n{body}\n" + "\n".join(lines), at=county.default.now())
    flash(NOTICE_SENT.format(id=notice.id))
    for line in lines:
        flash(line)
    return redirect(url_for("console.county_notice", notice_id=notice.id))


@bp.get(f"/county/notices/<int(max={MAX_ID}):notice_id>")
@requires("bureau")
def county_notice(notice_id: int) -> str:
    """Each school's admins who have and have not confirmed the bureau's notice."""
    county = _county()
    notice = get_county_notice(county, notice_id)
    if notice is None:
        abort(404)
    return render_template("admin/county_notice.html", notice=notice, parts=county_notice_status(county, notice))


@bp.get("/county/export.xlsx")
@requires("bureau")
def county_export() -> Response:
    view, month = _asked()
    period, rows = county_rows(_county(), view, month)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_xlsx(Path(tmp) / "county.xlsx", period, rows)
        data = path.read_bytes()
    name = XLSX_NAME.format(period=f"{period.first:%Y%m%d}-{period.last:%Y%m%d}")
    from io import BytesIO

    return send_file(BytesIO(data), mimetype=XLSX_TYPE, as_attachment=True, download_name=name)


# -- each figure's records: that school's read-only page, for the bureau -----------------------------------
SCHOOL_PAGES = ("repairs", "safety", "bus", "canteen", "outbox")
READ_ONLY_REFUSED = 403


@bp.route("/county/<slug>/<page>", methods=["GET", "POST"])
@requires("bureau")
def county_school(slug: str, page: str) -> Any:
    """The records behind one figure of a school's row (bot.county_pages): read-only, for bureau people
    only — a school's admin (the home school's included) does not open another school's records here.
    A POST is refused (403): there is nothing to change on these pages."""
    from bot.county import CountyError
    from bot.county_pages import OPEN, OVERDUE, PAGES, repairs_page
    from bot.county_report import period_for

    if request.method == "POST":
        abort(READ_ONLY_REFUSED)
    county = _county()
    if page not in SCHOOL_PAGES:
        abort(404)
    try:
        entry = county.school(slug)
    except CountyError:
        abort(404)
    view, month = _asked()
    default = county.default
    with default.read_factory() as db:
        period = period_for(db, view, default.now().astimezone(default.settings.tz).date(), month)
    services = county.services(entry.slug)
    if page == "repairs":
        state = request.args.get("state", OPEN)
        if state not in (OPEN, OVERDUE):
            abort(400)
        shown = repairs_page(services, period, state)
    else:
        shown = PAGES[page](services, period)
    return render_template("admin/county_school.html", school=entry, page=shown, period=period, view=view,
                           month=f"{period.first:%Y-%m}")
