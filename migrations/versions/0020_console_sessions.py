"""console sessions that can be revoked, and sign-in counters that cannot be raced

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-30 18:10:00.000000

A console account keeps a session version (a signed-in browser holds the one it signed in with;
logout, a new password and a change of the admin role bump it) and the addresses it last signed in
from. The per-account read-modify-write counter (failed_logins, locked_until) gives way to
`console_login_throttles`: failures per (name, address), per address and per name, each taken with
one conditional UPDATE before a password is checked.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('console_accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_version', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('known_addresses', sa.String(length=400), nullable=False, server_default=''))
        batch_op.drop_column('failed_logins')
        batch_op.drop_column('locked_until')
    op.create_table('console_login_throttles',
    sa.Column('key', sa.String(length=80), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('window_start', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_console_login_throttles'))
    )
    with op.batch_alter_table('console_login_throttles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_console_login_throttles_window_start'), ['window_start'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('console_login_throttles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_console_login_throttles_window_start'))
    op.drop_table('console_login_throttles')
    with op.batch_alter_table('console_accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locked_until', models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('failed_logins', sa.Integer(), nullable=False, server_default='0'))
        batch_op.drop_column('known_addresses')
        batch_op.drop_column('session_version')
