"""人员: the people with their roles and bind codes."""

from __future__ import annotations

from flask import render_template
from sqlalchemy import select

from bot.console import base
from bot.console.base import bp, login_required
from handlers.identity import outstanding_codes
from models import Person, PersonRole


@bp.get("/people")
@login_required
def people() -> str:
    with base.read_db() as db:
        everyone = list(db.scalars(select(Person).outerjoin(PersonRole).order_by(Person.name)).unique())
        codes = {c["name"]: c for c in outstanding_codes(db, base.services().now()) if c["kind"] == "person"}
        return render_template("admin/people.html", people=everyone, codes=codes)
