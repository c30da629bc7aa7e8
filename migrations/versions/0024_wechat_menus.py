"""per-role WeChat menus: the uploaded conditional menus and their tags, and each follower's menu tag

Revision ID: 0024
Revises: 0021
Create Date: 2026-11-30 18:10:00.000000

`wechat_menus` keeps what `houqin wechat-menu --upload` set up: one row per distinct menu, with the
user tag it matches (tag name, WeChat's tag id) and its conditional menu id. `bindings` gains the
follower's menu state: the tag WeChat has on the openid (`menu_tag_id`), whether it must be set again
(`menu_due`, indexed, with `menu_version` so a change made while the worker is tagging is not lost),
and the worker's lease / backoff (`menu_retry_at`, `menu_attempts`, `menu_error`). Existing followers
start not due; the next upload tags every bound one. Plain ADD/DROP COLUMN on both backends.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = '0024'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'wechat_menus',
        sa.Column('tag', sa.String(length=30), nullable=False),
        sa.Column('tag_id', sa.Integer(), nullable=False),
        sa.Column('menuid', sa.String(length=32), nullable=False),
        sa.Column('menu', sa.JSON(), nullable=False),
        sa.Column('roles', sa.String(length=500), nullable=False),
        sa.Column('uploaded_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('tag', name=op.f('pk_wechat_menus')),
    )
    with op.batch_alter_table('bindings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('menu_due', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('menu_version', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('menu_tag_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('menu_retry_at', models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('menu_attempts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('menu_error', sa.Text(), nullable=True))
        batch_op.create_index(batch_op.f('ix_bindings_menu_due'), ['menu_due'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('bindings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bindings_menu_due'))
        batch_op.drop_column('menu_error')
        batch_op.drop_column('menu_attempts')
        batch_op.drop_column('menu_retry_at')
        batch_op.drop_column('menu_tag_id')
        batch_op.drop_column('menu_version')
        batch_op.drop_column('menu_due')
    op.drop_table('wechat_menus')
