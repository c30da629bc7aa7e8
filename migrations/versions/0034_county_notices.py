"""the bureau's 通知 to schools' admins, tied together in the main namespace

Revision ID: 0034
Revises: 0031
Create Date: 2026-11-30 22:30:00

New tables only: `county_notices` (the bureau's notice) and `county_notice_schools` (each chosen school's
notice number N<n> in its own namespace, where its 回执 are kept).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = '0034'
down_revision = '0031'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'county_notices',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('title', sa.String(length=100), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('sender_name', sa.String(length=64), nullable=False),
        sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_county_notices')),
    )
    op.create_table(
        'county_notice_schools',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('county_notice_id', sa.Integer(), nullable=False),
        sa.Column('slug', sa.String(length=32), nullable=False),
        sa.Column('notice_number', sa.Integer(), nullable=False),
        sa.Column('told', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['county_notice_id'], ['county_notices.id'],
                                name=op.f('fk_county_notice_schools_county_notice_id_county_notices'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_county_notice_schools')),
        sa.UniqueConstraint('county_notice_id', 'slug', name=op.f('uq_county_notice_schools_county_notice_id')),
    )


def downgrade() -> None:
    op.drop_table('county_notice_schools')
    op.drop_table('county_notices')
