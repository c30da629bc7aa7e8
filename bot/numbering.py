"""Numbers the office quotes (R<n>, F<n>) without read-then-write races.

`allocate_number(db, RepairTicket.number)` bumps the series' row in `counters` with one
`UPDATE … RETURNING`: on PostgreSQL the row stays locked until the transaction ends, so a
concurrent request waits for it and gets the next number; on SQLite writers are serialized anyway.
The bump is part of the caller's transaction: a request that rolls back gives its number back.
A series without a row yet (a new database, a new series) starts after the largest number its
table already holds; two first callers racing both insert, and the loser's insert does nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import InstrumentedAttribute, Session

from models import NumberSeries

_INSERTS: dict[str, Any] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def dialect_insert(db: Session | Connection | Engine) -> Any:
    """The INSERT of `db`'s backend, the one with ON CONFLICT (PostgreSQL and SQLite alike)."""
    return _INSERTS[(db.get_bind() if isinstance(db, Session) else db).dialect.name]


def allocate_number(db: Session, column: InstrumentedAttribute[int]) -> int:
    """The next number of the series `column` (a model's unique `number`) belongs to."""
    series = column.class_.__tablename__
    bump = (update(NumberSeries).where(NumberSeries.series == series).values(last=NumberSeries.last + 1)
            .returning(NumberSeries.last).execution_options(synchronize_session=False))
    number = db.execute(bump).scalar_one_or_none()
    if number is None:
        insert = dialect_insert(db)
        start = select(func.coalesce(func.max(column), 0)).scalar_subquery()
        db.execute(insert(NumberSeries).values(series=series, last=start).on_conflict_do_nothing())
        number = db.execute(bump).scalar_one()
    return int(number)
