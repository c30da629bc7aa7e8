"""feedback photos: canteen feedback photos are downloaded like repair photos

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-21 20:10:00.000000

Each non-empty canteen_feedback.photo_media_id becomes a pending feedback_photos row, due now (a
media id older than WeChat's 3 days ends up failed, with WeChat's reason), and the column goes.
The column is dropped in place (SQLite 3.35+ can): rebuilding canteen_feedback, as batch mode
would on SQLite, drops the old table and with it, by ON DELETE CASCADE, its replies and photos.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

feedback = sa.table('canteen_feedback', sa.column('id', sa.Integer()), sa.column('photo_media_id', sa.String()))
photos = sa.table(
    'feedback_photos',
    sa.column('feedback_id', sa.Integer()),
    sa.column('media_id', sa.String()),
    sa.column('status', sa.String()),
    sa.column('path', sa.String()),
    sa.column('content_type', sa.String()),
    sa.column('size', sa.Integer()),
    sa.column('attempts', sa.Integer()),
    sa.column('next_attempt_at', models.base.UTCDateTime(timezone=True)),
    sa.column('created_at', models.base.UTCDateTime(timezone=True)),
)


def upgrade() -> None:
    op.create_table('feedback_photos',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('feedback_id', sa.Integer(), nullable=False),
    sa.Column('media_id', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('path', sa.String(length=300), nullable=False),
    sa.Column('content_type', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('claim', sa.String(length=40), nullable=True),
    sa.Column('lease_until', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('saved_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['feedback_id'], ['canteen_feedback.id'], name=op.f('fk_feedback_photos_feedback_id_canteen_feedback'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feedback_photos')),
    sa.UniqueConstraint('feedback_id', name=op.f('uq_feedback_photos_feedback_id'))
    )
    with op.batch_alter_table('feedback_photos', schema=None) as batch_op:
        batch_op.create_index('ix_feedback_photos_due', ['status', 'next_attempt_at'], unique=False)

    now = models.base.utcnow()
    found = op.get_bind().execute(sa.select(feedback.c.id, feedback.c.photo_media_id)
                                  .where(feedback.c.photo_media_id != '').order_by(feedback.c.id)).all()
    if found:
        op.bulk_insert(photos, [{'feedback_id': feedback_id, 'media_id': media_id, 'status': 'pending', 'path': '',
                                 'content_type': '', 'size': 0, 'attempts': 0, 'next_attempt_at': now,
                                 'created_at': now} for feedback_id, media_id in found])

    with op.batch_alter_table('canteen_feedback', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('photo_media_id')


def downgrade() -> None:
    with op.batch_alter_table('canteen_feedback', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('photo_media_id', sa.String(length=200), nullable=False, server_default=''))
    latest = (sa.select(photos.c.media_id).where(photos.c.feedback_id == feedback.c.id).scalar_subquery())
    op.execute(feedback.update().where(sa.exists().where(photos.c.feedback_id == feedback.c.id))
               .values(photo_media_id=latest))

    with op.batch_alter_table('feedback_photos', schema=None) as batch_op:
        batch_op.drop_index('ix_feedback_photos_due')

    op.drop_table('feedback_photos')
