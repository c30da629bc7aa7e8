"""the audit log (操作记录): every change made from the console or the CLI; people.deactivated_at

Revision ID: 0027
Revises: 0024
Create Date: 2026-11-30 21:10:00.000000

`audit_log` gets one row per change: when, who (a console account's name, or the CLI's user), from
where (console / cli), the action, its target and a detail. `people.deactivated_at`: when a person was
停用 from the console (their roles and bindings ended, the person and their history kept).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'audit_log',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('actor', sa.String(length=64), nullable=False),
        sa.Column('via', sa.String(length=8), nullable=False),
        sa.Column('action', sa.String(length=40), nullable=False),
        sa.Column('target', sa.String(length=200), nullable=False),
        sa.Column('detail', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log')),
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_log_action'), ['action'], unique=False)
    op.add_column('people', sa.Column('deactivated_at', models.base.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # a plain DROP COLUMN (SQLite 3.35+): a batch rebuild of `people` would cascade-delete every row
    # that references a person
    op.drop_column('people', 'deactivated_at')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_action'))
        batch_op.drop_index(batch_op.f('ix_audit_log_at'))
    op.drop_table('audit_log')
