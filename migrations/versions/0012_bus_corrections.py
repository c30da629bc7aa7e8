"""bus corrections and declined handovers: what the office was told about a trip's 上车 count
(bus_count_notices), and when a 代班 request was declined (duty_swaps.declined_at)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 15:10:00.000000

The column is added and dropped in place (SQLite 3.35+ can), not by rebuilding duty_swaps.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bus_count_notices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('trip_id', sa.Integer(), nullable=False),
    sa.Column('boarded', sa.Integer(), nullable=False),
    sa.Column('expected', sa.Integer(), nullable=False),
    sa.Column('diff', sa.Integer(), nullable=False),
    sa.Column('push_id', sa.Integer(), nullable=True),
    sa.Column('sent_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['push_id'], ['pushes.id'], name=op.f('fk_bus_count_notices_push_id_pushes'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['trip_id'], ['bus_trips.id'], name=op.f('fk_bus_count_notices_trip_id_bus_trips'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bus_count_notices'))
    )
    with op.batch_alter_table('bus_count_notices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bus_count_notices_trip_id'), ['trip_id'], unique=False)
    op.add_column('duty_swaps', sa.Column('declined_at', models.base.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column('duty_swaps', 'declined_at')
    with op.batch_alter_table('bus_count_notices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bus_count_notices_trip_id'))
    op.drop_table('bus_count_notices')
