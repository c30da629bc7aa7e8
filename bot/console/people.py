"""人员: the people with their roles and bind codes."""

from __future__ import annotations

from flask import abort, render_template
from sqlalchemy import select

from bot.audit import record
from bot.console import base
from bot.console.auth import LINK_HOURS, password_link
from bot.console.base import MAX_ID, actor, bp, requires
from handlers.identity import outstanding_codes
from models import Person, PersonRole


@bp.get("/people")
@requires("admin", "bureau")
def people() -> str:
    with base.read_db() as db:
        everyone = list(db.scalars(select(Person).outerjoin(PersonRole).order_by(Person.name)).unique())
        codes = {c["name"]: c for c in outstanding_codes(db, base.services().now()) if c["kind"] == "person"}
        return render_template("admin/people.html", people=everyone, codes=codes)


@bp.post(f"/people/<int(max={MAX_ID}):person_id>/password-link")
@requires("admin")
def make_password_link(person_id: int) -> str:
    """A one-time link for this person to set their console password (shown once, to hand over)."""
    now = base.services().now()
    with base.db() as db, db.begin():
        person = db.get(Person, person_id)
        if person is None:
            abort(404)
        try:
            link = password_link(db, person, now)
        except ValueError as exc:
            return render_template("admin/message.html", title="设置密码链接", text=str(exc))
        record(db, actor(), "password_link", person.name, at=now)
        return render_template("admin/password_link.html", person=person, link=link, hours=LINK_HOURS)
