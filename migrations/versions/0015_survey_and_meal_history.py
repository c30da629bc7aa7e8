"""survey and 陪餐 history: every survey answer and every 陪餐 record kept

Revision ID: 0015
Revises: 0013
Create Date: 2026-11-30 15:45:00.000000

canteen_surveys loses its one-answer-per-person-per-kind-and-period constraint: a later answer is a
row of its own and `superseded_by_id` points from the earlier one to it (only its scores stop counting;
its comment and food-safety words stay). accompanied_meals loses its one-record-per-person-per-meal
constraint: a second record of the same meal is a row of its own. Existing rows are kept as they are
(each was the only one of its kind, so none is superseded).

On SQLite both tables are rebuilt. Dropping a table during a rebuild deletes, by ON DELETE CASCADE,
the rows of any table that references it (see 0010); no table references either of these, and the
upgrade refuses on SQLite rather than lose rows if one ever does.

The downgrade refuses while someone has more than one survey answer of a kind and period or more than
one record of a meal: the old schema cannot hold them, and nothing given is deleted to make it fit.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0013'
branch_labels = None
depends_on = None

TABLES = ('canteen_surveys', 'accompanied_meals')


def _nothing_refers_to(table: str) -> None:
    """On SQLite a batch rebuild of `table` would cascade-delete the rows that refer to it: refuse instead."""
    conn = op.get_bind()
    if conn.dialect.name != 'sqlite':
        return
    inspector = sa.inspect(conn)
    children = [name for name in inspector.get_table_names() if name != table
                and any(fk['referred_table'] == table for fk in inspector.get_foreign_keys(name))]
    if children:
        raise RuntimeError(f"rebuilding {table} on SQLite would delete rows of {', '.join(children)} by cascade")


def upgrade() -> None:
    for table in TABLES:
        _nothing_refers_to(table)
    with op.batch_alter_table('canteen_surveys', schema=None) as batch_op:
        batch_op.drop_constraint('uq_canteen_surveys_person_id', type_='unique')
        batch_op.add_column(sa.Column('superseded_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_canteen_surveys_superseded_by_id_canteen_surveys'),
                                    'canteen_surveys', ['superseded_by_id'], ['id'], ondelete='SET NULL')
        batch_op.create_index('ix_canteen_surveys_person_period', ['person_id', 'kind', 'period'], unique=False)
    with op.batch_alter_table('accompanied_meals', schema=None) as batch_op:
        batch_op.drop_constraint('uq_accompanied_meals_person_id', type_='unique')
        batch_op.create_index('ix_accompanied_meals_person_day', ['person_id', 'day', 'meal'], unique=False)


def _several(table: str, *columns: str) -> int:
    """How many times a person has more than one row with the same `columns` in `table`."""
    rows = sa.table(table, sa.column('person_id', sa.Integer()), *(sa.column(c) for c in columns))
    keys = [rows.c.person_id, *(rows.c[c] for c in columns)]
    return len(op.get_bind().execute(sa.select(*keys).where(rows.c.person_id.is_not(None))
                                     .group_by(*keys).having(sa.func.count() > 1)).all())


def downgrade() -> None:
    answers, meals = _several('canteen_surveys', 'kind', 'period'), _several('accompanied_meals', 'day', 'meal')
    if answers or meals:
        raise RuntimeError(f"cannot downgrade below 0015: {answers} times someone answered a survey more than once "
                           f"and {meals} times someone recorded a 陪餐 meal more than once; the old schema keeps "
                           "only one (nothing is deleted to fit)")
    for table in TABLES:
        _nothing_refers_to(table)
    with op.batch_alter_table('accompanied_meals', schema=None) as batch_op:
        batch_op.drop_index('ix_accompanied_meals_person_day')
        batch_op.create_unique_constraint('uq_accompanied_meals_person_id', ['person_id', 'day', 'meal'])
    with op.batch_alter_table('canteen_surveys', schema=None) as batch_op:
        batch_op.drop_index('ix_canteen_surveys_person_period')
        batch_op.drop_constraint(batch_op.f('fk_canteen_surveys_superseded_by_id_canteen_surveys'),
                                 type_='foreignkey')
        batch_op.drop_column('superseded_by_id')
        batch_op.create_unique_constraint('uq_canteen_surveys_person_id', ['person_id', 'kind', 'period'])
