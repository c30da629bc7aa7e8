"""a bus route can be 停运 and a duty post 停用 from the console, their history kept

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-01 00:40:00

One nullable column each: `bus_routes.stopped_at`, `duty_posts.stopped_at` (when it was stopped; NULL while in use).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = '0035'
down_revision = '0034'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('bus_routes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stopped_at', models.base.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('duty_posts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stopped_at', models.base.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('duty_posts', schema=None) as batch_op:
        batch_op.drop_column('stopped_at')
    with op.batch_alter_table('bus_routes', schema=None) as batch_op:
        batch_op.drop_column('stopped_at')
