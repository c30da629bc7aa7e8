"""template pushes: a push's named fields, and the msgid of a template send

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-30 16:20:00.000000

Since 2023-05-04 a template shows only typed keywords (no first/remark), so a push keeps its named
fields (`pushes.fields`, JSON; NULL for older pushes: they are derived from the text) to fill the
keywords with. A template send records the msgid WeChat returns (`deliveries.msgid`, indexed), so
the TEMPLATESENDJOBFINISH event can confirm the delivery (`deliveries.confirmed_at`) or fail it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('pushes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fields', sa.JSON(), nullable=True))
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('msgid', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('confirmed_at', models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_deliveries_msgid'), ['msgid'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deliveries_msgid'))
        batch_op.drop_column('confirmed_at')
        batch_op.drop_column('msgid')
    with op.batch_alter_table('pushes', schema=None) as batch_op:
        batch_op.drop_column('fields')
