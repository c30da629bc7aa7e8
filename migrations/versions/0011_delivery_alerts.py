"""delivery alerts: who a push could not reach, shown to the office until acknowledged

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 15:30:00.000000

One row per push and person that could not be reached (at queue time or by the worker after its
attempts); the console overview shows the unacknowledged ones as a red banner.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('delivery_alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('push_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('safety', sa.Boolean(), nullable=False),
    sa.Column('raised_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_delivery_alerts_person_id_people'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['push_id'], ['pushes.id'], name=op.f('fk_delivery_alerts_push_id_pushes'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_alerts')),
    sa.UniqueConstraint('push_id', 'person_id', name=op.f('uq_delivery_alerts_push_id'))
    )
    with op.batch_alter_table('delivery_alerts', schema=None) as batch_op:
        batch_op.create_index('ix_delivery_alerts_open', ['acknowledged_at', 'raised_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('delivery_alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_alerts_open')
    op.drop_table('delivery_alerts')
