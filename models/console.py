"""Who may sign in to the web console (admins with a password set by `houqin console-password`), the
version that ends their sessions, and the counters of failed sign-ins (bot.console explains them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, event, inspect, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, Mapper, mapped_column, relationship

from models.base import Base, utcnow
from models.identity import Person, PersonRole


class ConsoleAccount(Base):
    __tablename__ = "console_accounts"

    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    # a signed-in browser keeps the version it signed in with; bumping it ends every session of the account
    session_version: Mapped[int] = mapped_column(default=0)
    # the last few addresses the account signed in from (space-separated): the per-name ceiling spares them
    known_addresses: Mapped[str] = mapped_column(String(400), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    person: Mapped[Person] = relationship()


def revoke_sessions(person_id: int) -> Any:
    """The statement that ends every console session of a person (run it in the caller's transaction)."""
    return (update(ConsoleAccount).where(ConsoleAccount.person_id == person_id)
            .values(session_version=ConsoleAccount.session_version + 1))


@event.listens_for(PersonRole, "after_insert")
@event.listens_for(PersonRole, "after_update")
@event.listens_for(PersonRole, "after_delete")
def _admin_role_changed(mapper: Mapper[PersonRole], connection: Connection, target: PersonRole) -> None:
    """Giving or taking the admin role, however it happens (`houqin people import` today), ends the
    person's console sessions: the one place a role change reaches the console."""
    if target.role == "admin" or "admin" in (inspect(target).attrs.role.history.deleted or ()):
        connection.execute(revoke_sessions(target.person_id))


class ConsoleLoginThrottle(Base):
    """Failed sign-ins counted under one key (a name from an address, an address, a name) since
    `window_start`; a key at its limit refuses attempts until the window has passed."""

    __tablename__ = "console_login_throttles"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    window_start: Mapped[datetime] = mapped_column(index=True)


class AuditEntry(Base):
    """操作记录: one change made from the console or the CLI — who, when, what, to what (bot.audit)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(64))
    via: Mapped[str] = mapped_column(String(8))  # console | cli
    action: Mapped[str] = mapped_column(String(40), index=True)
    target: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
