"""the school's voice: notices with confirmation (回执), the suggestion box (意见箱), the office survey

Revision ID: 0031
Revises: 0024
Create Date: 2026-11-30 20:52:15.600656

New tables only: `notices` and `notice_recipients` (N<n> and who confirmed), `suggestions` and
`suggestion_replies` (Y<n>; an anonymous one has no person and no time, only the day and a keyed
claim), `office_surveys`, `office_survey_tallies` (ratings as counters), `office_survey_comments`
(random keys, no person, no time) and `office_survey_takers` (who took part, not what they said).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = '0031'
down_revision = '0030'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('office_surveys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('period', sa.String(length=16), nullable=False),
    sa.Column('items', sa.String(length=500), nullable=False),
    sa.Column('parent_items', sa.String(length=500), nullable=False),
    sa.Column('opens_on', sa.Date(), nullable=False),
    sa.Column('closes_on', sa.Date(), nullable=False),
    sa.Column('started_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reminded_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_office_surveys')),
    sa.UniqueConstraint('period', name=op.f('uq_office_surveys_period'))
    )
    op.create_table('notices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=48), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('audience', sa.String(length=200), nullable=False),
    sa.Column('confirm', sa.Boolean(), nullable=False),
    sa.Column('sender_id', sa.Integer(), nullable=True),
    sa.Column('sender_name', sa.String(length=64), nullable=False),
    sa.Column('push_id', sa.Integer(), nullable=True),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reminded_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['push_id'], ['pushes.id'], name=op.f('fk_notices_push_id_pushes'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['sender_id'], ['people.id'], name=op.f('fk_notices_sender_id_people'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notices')),
    sa.UniqueConstraint('number', name=op.f('uq_notices_number'))
    )
    op.create_table('office_survey_comments',
    sa.Column('key', sa.String(length=32), nullable=False),
    sa.Column('survey_id', sa.Integer(), nullable=False),
    sa.Column('item', sa.String(length=32), nullable=False),
    sa.Column('group', sa.String(length=16), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['survey_id'], ['office_surveys.id'], name=op.f('fk_office_survey_comments_survey_id_office_surveys'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_office_survey_comments'))
    )
    with op.batch_alter_table('office_survey_comments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_office_survey_comments_survey_id'), ['survey_id'], unique=False)

    op.create_table('office_survey_takers',
    sa.Column('survey_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('answered', sa.Integer(), nullable=False),
    sa.Column('reminded', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_office_survey_takers_person_id_people'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['survey_id'], ['office_surveys.id'], name=op.f('fk_office_survey_takers_survey_id_office_surveys'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('survey_id', 'person_id', name=op.f('pk_office_survey_takers'))
    )
    op.create_table('office_survey_tallies',
    sa.Column('survey_id', sa.Integer(), nullable=False),
    sa.Column('item', sa.String(length=32), nullable=False),
    sa.Column('group', sa.String(length=16), nullable=False),
    sa.Column('level', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['survey_id'], ['office_surveys.id'], name=op.f('fk_office_survey_tallies_survey_id_office_surveys'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('survey_id', 'item', 'group', 'level', name=op.f('pk_office_survey_tallies'))
    )
    op.create_table('suggestions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('anonymous', sa.Boolean(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('claim', sa.String(length=64), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('topic', sa.String(length=32), nullable=False),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('filed_on', sa.Date(), nullable=False),
    sa.Column('filed_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('routed', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['assignee_id'], ['people.id'], name=op.f('fk_suggestions_assignee_id_people'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_suggestions_person_id_people'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_suggestions')),
    sa.UniqueConstraint('number', name=op.f('uq_suggestions_number'))
    )
    with op.batch_alter_table('suggestions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_suggestions_routed'), ['routed'], unique=False)
        batch_op.create_index(batch_op.f('ix_suggestions_claim'), ['claim'], unique=False)
        batch_op.create_index(batch_op.f('ix_suggestions_filed_on'), ['filed_on'], unique=False)

    op.create_table('notice_recipients',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('notice_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('detail', sa.String(length=200), nullable=False),
    sa.Column('reached', sa.Boolean(), nullable=False),
    sa.Column('confirmed_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('confirmed_via', sa.String(length=16), nullable=False),
    sa.Column('reminded_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['notice_id'], ['notices.id'], name=op.f('fk_notice_recipients_notice_id_notices'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_notice_recipients_person_id_people'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notice_recipients')),
    sa.UniqueConstraint('notice_id', 'person_id', name=op.f('uq_notice_recipients_notice_id'))
    )
    with op.batch_alter_table('notice_recipients', schema=None) as batch_op:
        batch_op.create_index('ix_notice_recipients_person_open', ['person_id', 'confirmed_at'], unique=False)

    op.create_table('suggestion_replies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('suggestion_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_suggestion_replies_person_id_people'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['suggestion_id'], ['suggestions.id'], name=op.f('fk_suggestion_replies_suggestion_id_suggestions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_suggestion_replies'))
    )


def downgrade() -> None:
    op.drop_table('suggestion_replies')
    with op.batch_alter_table('notice_recipients', schema=None) as batch_op:
        batch_op.drop_index('ix_notice_recipients_person_open')

    op.drop_table('notice_recipients')
    with op.batch_alter_table('suggestions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_suggestions_routed'))
        batch_op.drop_index(batch_op.f('ix_suggestions_filed_on'))
        batch_op.drop_index(batch_op.f('ix_suggestions_claim'))

    op.drop_table('suggestions')
    op.drop_table('office_survey_tallies')
    op.drop_table('office_survey_takers')
    with op.batch_alter_table('office_survey_comments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_office_survey_comments_survey_id'))

    op.drop_table('office_survey_comments')
    op.drop_table('notices')
    op.drop_table('office_surveys')
