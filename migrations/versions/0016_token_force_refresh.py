"""token force refresh: when the last force_refresh of the shared access token was asked for

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30 16:10:00.000000

Access tokens now come from WeChat's stable_token. A refused token that stable_token still answers is
replaced with `force_refresh`, which WeChat allows 20 times a day; `access_tokens.forced_at` lets every
process see the last one, so that there is at most one per 30 s. Existing rows have none (NULL).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('access_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('forced_at', models.base.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('access_tokens', schema=None) as batch_op:
        batch_op.drop_column('forced_at')
