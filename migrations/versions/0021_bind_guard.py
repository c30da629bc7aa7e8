"""bind guard: a global limit on wrong bind codes, reissued codes, and who a follower was

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-30 18:10:00.000000

`bind_windows` counts wrong bind codes from everyone per fixed window (one row per window, bumped
atomically); past the limit binds are refused until the window ends and the admins are told once.
`bind_codes.revoked_at` marks a code replaced by a reissued one (`houqin codes reissue`, 重发绑定码):
it then binds nothing and is answered like an unknown code. `bindings.previous_person_id` keeps whom
a follower was bound to before 解绑, so their child's parent code returns them to that person.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'bind_windows',
        sa.Column('started_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('started_at', name=op.f('pk_bind_windows')),
    )
    with op.batch_alter_table('bind_codes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('revoked_at', models.base.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('bindings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('previous_person_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_bindings_previous_person_id_people'), 'people',
                                    ['previous_person_id'], ['id'], ondelete='SET NULL')


def downgrade() -> None:
    with op.batch_alter_table('bindings', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_bindings_previous_person_id_people'), type_='foreignkey')
        batch_op.drop_column('previous_person_id')
    with op.batch_alter_table('bind_codes', schema=None) as batch_op:
        batch_op.drop_column('revoked_at')
    op.drop_table('bind_windows')
