"""push detail pages: each push gets an unguessable token for its page /p/<token>, and what it is about

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30 16:10:00.000000

pushes gains `token` (unique; the page's address, minted by bot.outbox for every new push) and a
nullable subject (`subject` "repair" or "menu", `subject_id` the ticket's or menu week's id) so the page
can show the ticket's current status or the week's menu. No foreign key: adding one on SQLite would
rebuild pushes, and dropping it during the rebuild would delete every delivery by ON DELETE CASCADE;
the page treats a subject that is gone as absent. Existing pushes keep a NULL token: they have no page.
Plain ADD/DROP COLUMN, no table rebuild, on both backends.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('pushes', sa.Column('token', sa.String(length=64), nullable=True))
    op.add_column('pushes', sa.Column('subject', sa.String(length=16), nullable=True))
    op.add_column('pushes', sa.Column('subject_id', sa.Integer(), nullable=True))
    op.create_index('ix_pushes_token', 'pushes', ['token'], unique=True)


def downgrade() -> None:
    op.drop_index('ix_pushes_token', table_name='pushes')
    op.drop_column('pushes', 'subject_id')
    op.drop_column('pushes', 'subject')
    op.drop_column('pushes', 'token')
