"""ticket events: a repair ticket's history after filing

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 15:20:00.000000

Another report of the same fault (a follower's own words, kept rather than dropped as a duplicate)
and the withdrawal of a ticket with its reason (`撤销 R<n> 理由`) are rows of ticket_events. A
withdrawn ticket has status 'withdrawn' (the column is a free string: no change there).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ticket_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('urgent', sa.Boolean(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_ticket_events_person_id_people'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['ticket_id'], ['repair_tickets.id'], name=op.f('fk_ticket_events_ticket_id_repair_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_events'))
    )
    with op.batch_alter_table('ticket_events', schema=None) as batch_op:
        batch_op.create_index('ix_ticket_events_person_created', ['person_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_ticket_events_ticket_id'), ['ticket_id'], unique=False)


def downgrade() -> None:
    op.execute("UPDATE repair_tickets SET status = 'closed' WHERE status = 'withdrawn'")
    with op.batch_alter_table('ticket_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ticket_events_ticket_id'))
        batch_op.drop_index('ix_ticket_events_person_created')

    op.drop_table('ticket_events')
