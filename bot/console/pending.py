"""Stand-ins for the console house's role decorator and audit log, used by 食堂·校车·值日·日程·推送 until
wave2-console's `base.requires` and `bot.audit.record` are merged; then these names point at them and this
module goes. Until then every signed-in console user is an admin, and nothing is recorded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import session
from sqlalchemy.orm import Session

from bot.console.base import login_required
from models import Person


def requires(*roles: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A page for these roles (admins only can sign in for now)."""
    return login_required


def actor() -> str:
    return str(session.get("name", ""))


def record(db: Session, actor: str, action: str, target: str = "", detail: str = "", via: str = "console") -> None:
    """The audit log's record(): a no-op until the audit log is merged."""


def signed_in_person(db: Session) -> Person | None:
    """The person signed in to this request's console session."""
    person_id = session.get("person_id")
    return db.get(Person, person_id) if isinstance(person_id, int) else None
