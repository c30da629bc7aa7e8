"""county: the schools one installation serves, shared-account followers, bind codes and conversations

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-30 21:00:00.000000

`county_schools` lists the schools (the default one registered here: an existing installation is that
school and nothing else changes); a school's own official account's secrets are stored encrypted.
`county_followers`, `county_codes` and `county_conversations` route a shared account's messages.
`school_settings.value` becomes Text (a school's own template mapping is long).
Every school's namespace is built by these same migrations; only the main namespace's county rows count.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade() -> None:
    schools = op.create_table(
        'county_schools',
        sa.Column('slug', sa.String(length=32), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('is_default', sa.Boolean(), nullable=False),
        sa.Column('appid', sa.String(length=64), nullable=False),
        sa.Column('token_enc', sa.Text(), nullable=False),
        sa.Column('aes_key_enc', sa.Text(), nullable=False),
        sa.Column('secret_enc', sa.Text(), nullable=False),
        sa.Column('tz_name', sa.String(length=64), nullable=False),
        sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('slug', name=op.f('pk_county_schools')),
    )
    op.create_table(
        'county_followers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('openid', sa.String(length=64), nullable=False),
        sa.Column('slug', sa.String(length=32), nullable=False),
        sa.Column('bound_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_county_followers')),
        sa.UniqueConstraint('openid', 'slug', name=op.f('uq_county_followers_openid')),
    )
    op.create_index(op.f('ix_county_followers_openid'), 'county_followers', ['openid'], unique=False)
    op.create_table(
        'county_codes',
        sa.Column('code', sa.String(length=16), nullable=False),
        sa.Column('slug', sa.String(length=32), nullable=False),
        sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('code', name=op.f('pk_county_codes')),
    )
    op.create_table(
        'county_conversations',
        sa.Column('openid', sa.String(length=64), nullable=False),
        sa.Column('slug', sa.String(length=32), nullable=False),
        sa.Column('pending', sa.Text(), nullable=False),
        sa.Column('expires_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('openid', name=op.f('pk_county_conversations')),
    )
    with op.batch_alter_table('school_settings', schema=None) as batch_op:
        batch_op.alter_column('value', existing_type=sa.String(length=500), type_=sa.Text(),
                              existing_nullable=False)
    from datetime import UTC, datetime

    op.bulk_insert(schools, [{"slug": "default", "name": "本校", "is_default": True, "appid": "", "token_enc": "",
                              "aes_key_enc": "", "secret_enc": "", "tz_name": "",
                              "created_at": datetime.now(UTC)}])


def downgrade() -> None:
    with op.batch_alter_table('school_settings', schema=None) as batch_op:
        batch_op.alter_column('value', existing_type=sa.Text(), type_=sa.String(length=500),
                              existing_nullable=False)
    op.drop_table('county_conversations')
    op.drop_table('county_codes')
    op.drop_index(op.f('ix_county_followers_openid'), table_name='county_followers')
    op.drop_table('county_followers')
    op.drop_table('county_schools')
