"""numbers and feedback history: numbers from one counter row per series; every canteen feedback kept

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 15:30:00.000000

`counters` holds the last number given in each series (R<n>: repair_tickets, F<n>: canteen_feedback),
started at the largest number each table holds, so that numbers are handed out by one atomic UPDATE.

canteen_feedback loses its one-row-per-person-per-day constraint: a later rating is a row of its own
and `superseded_by_id` points from the earlier one to it (only the score is superseded). On SQLite
the table is rebuilt, and dropping the old table would delete its replies and photos by ON DELETE
CASCADE (foreign keys are on and cannot be switched off inside the migration's transaction), so
those rows are read first and written back after the rebuild.

The downgrade refuses while someone has more than one feedback on a day: the old schema cannot
hold them, and nothing given is deleted to make it fit.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

SERIES = ('repair_tickets', 'canteen_feedback')


def _keeping_children(parent: str, change: Callable[[], None]) -> None:
    """Run `change` (a batch rebuild of `parent`) and keep the rows of every table that references it."""
    conn = op.get_bind()
    if conn.dialect.name != 'sqlite':
        change()
        return
    inspector = sa.inspect(conn)
    meta = sa.MetaData()
    kept = []
    for name in inspector.get_table_names():
        if name != parent and any(fk['referred_table'] == parent for fk in inspector.get_foreign_keys(name)):
            table = sa.Table(name, meta, autoload_with=conn)
            kept.append((table, [dict(row._mapping) for row in conn.execute(sa.select(table))]))
    change()
    for table, rows in kept:
        conn.execute(table.delete())  # whatever the cascade left
        if rows:
            conn.execute(table.insert(), rows)


def upgrade() -> None:
    counters = op.create_table(
        'counters',
        sa.Column('series', sa.String(length=64), nullable=False),
        sa.Column('last', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('series', name=op.f('pk_counters')),
    )
    for series in SERIES:
        numbers = sa.table(series, sa.column('number', sa.Integer()))
        largest = sa.select(sa.func.coalesce(sa.func.max(numbers.c.number), 0)).scalar_subquery()
        op.execute(counters.insert().values(series=series, last=largest))

    def change() -> None:
        with op.batch_alter_table('canteen_feedback', schema=None) as batch_op:
            batch_op.drop_constraint('uq_canteen_feedback_person_id', type_='unique')
            batch_op.add_column(sa.Column('superseded_by_id', sa.Integer(), nullable=True))
            batch_op.create_foreign_key(batch_op.f('fk_canteen_feedback_superseded_by_id_canteen_feedback'),
                                        'canteen_feedback', ['superseded_by_id'], ['id'], ondelete='SET NULL')
            batch_op.create_index('ix_canteen_feedback_person_day', ['person_id', 'day'], unique=False)

    _keeping_children('canteen_feedback', change)


def downgrade() -> None:
    feedback = sa.table('canteen_feedback', sa.column('person_id', sa.Integer()), sa.column('day', sa.Date()))
    several = op.get_bind().execute(
        sa.select(feedback.c.person_id, feedback.c.day).where(feedback.c.person_id.is_not(None))
        .group_by(feedback.c.person_id, feedback.c.day).having(sa.func.count() > 1)).all()
    if several:
        raise RuntimeError(f"cannot downgrade below 0010: {len(several)} times someone gave more than one canteen "
                           "feedback on a day, and the old schema keeps only one (nothing is deleted to fit)")

    def change() -> None:
        with op.batch_alter_table('canteen_feedback', schema=None) as batch_op:
            batch_op.drop_index('ix_canteen_feedback_person_day')
            batch_op.drop_constraint(batch_op.f('fk_canteen_feedback_superseded_by_id_canteen_feedback'),
                                     type_='foreignkey')
            batch_op.drop_column('superseded_by_id')
            batch_op.create_unique_constraint('uq_canteen_feedback_person_id', ['person_id', 'day'])

    _keeping_children('canteen_feedback', change)
    op.drop_table('counters')
