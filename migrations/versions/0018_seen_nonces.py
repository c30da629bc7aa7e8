"""seen nonces: a signed webhook request's (timestamp, nonce) pair is accepted once

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-30 16:10:00.000000

One row per accepted POST to /wechat, keyed on the request's timestamp and nonce; a second request
with the same pair inside the timestamp window is a replay and is refused. Rows whose timestamp has
left the window are purged by the webhook itself, so the table stays small. Nothing else refers to it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'seen_nonces',
        sa.Column('timestamp', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('nonce', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('timestamp', 'nonce', name=op.f('pk_seen_nonces')),
    )


def downgrade() -> None:
    op.drop_table('seen_nonces')
