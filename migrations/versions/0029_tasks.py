"""the 行事历: recurring tasks, their occurrences T<n> and checklist answers (issue 17)

Revision ID: 0029
Revises: 0024
Create Date: 2026-11-30 21:00:00.000000

`tasks` holds one line of the calendar (title, rule as written, who, remind / escalate days, checklist;
`key` = fire_check marks the monthly fire self-check). `task_occurrences` is one due date of a task,
numbered T<n> through `counters`; `task_checks` one checklist item's answer (linked to the repair
ticket an 异常 opened); `task_photos` a checklist item's photo, downloaded by the media worker. New
tables only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = '0029'
down_revision = '0027'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'tasks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('title', sa.String(length=100), nullable=False),
        sa.Column('rule', sa.String(length=100), nullable=False),
        sa.Column('assignee', sa.String(length=100), nullable=False),
        sa.Column('remind_days', sa.Integer(), nullable=False),
        sa.Column('escalate_days', sa.Integer(), nullable=False),
        sa.Column('checklist', sa.Text(), nullable=False),
        sa.Column('key', sa.String(length=32), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_on', sa.Date(), nullable=False),
        sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_tasks')),
        sa.UniqueConstraint('title', name=op.f('uq_tasks_title')),
    )
    op.create_table(
        'task_occurrences',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('task_id', sa.Integer(), nullable=False),
        sa.Column('due', sa.Date(), nullable=False),
        sa.Column('period', sa.String(length=20), nullable=False),
        sa.Column('reminded_at', models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column('done_at', models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column('done_by_id', sa.Integer(), nullable=True),
        sa.Column('note', sa.Text(), nullable=False),
        sa.Column('escalated_at', models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_task_occurrences_task_id_tasks'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['done_by_id'], ['people.id'], name=op.f('fk_task_occurrences_done_by_id_people'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_task_occurrences')),
        sa.UniqueConstraint('number', name=op.f('uq_task_occurrences_number')),
        sa.UniqueConstraint('task_id', 'due', name=op.f('uq_task_occurrences_task_id')),
    )
    op.create_index(op.f('ix_task_occurrences_task_id'), 'task_occurrences', ['task_id'], unique=False)
    op.create_index(op.f('ix_task_occurrences_due'), 'task_occurrences', ['due'], unique=False)
    op.create_table(
        'task_checks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('occurrence_id', sa.Integer(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('item', sa.String(length=100), nullable=False),
        sa.Column('result', sa.String(length=8), nullable=False),
        sa.Column('detail', sa.Text(), nullable=False),
        sa.Column('ticket_id', sa.Integer(), nullable=True),
        sa.Column('person_id', sa.Integer(), nullable=True),
        sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['occurrence_id'], ['task_occurrences.id'],
                                name=op.f('fk_task_checks_occurrence_id_task_occurrences'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['ticket_id'], ['repair_tickets.id'],
                                name=op.f('fk_task_checks_ticket_id_repair_tickets'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_task_checks_person_id_people'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_task_checks')),
        sa.UniqueConstraint('occurrence_id', 'position', name=op.f('uq_task_checks_occurrence_id')),
    )
    op.create_index(op.f('ix_task_checks_occurrence_id'), 'task_checks', ['occurrence_id'], unique=False)
    op.create_table(
        'task_photos',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('check_id', sa.Integer(), nullable=False),
        sa.Column('occurrence_id', sa.Integer(), nullable=False),
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
        sa.ForeignKeyConstraint(['check_id'], ['task_checks.id'], name=op.f('fk_task_photos_check_id_task_checks'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['occurrence_id'], ['task_occurrences.id'],
                                name=op.f('fk_task_photos_occurrence_id_task_occurrences'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_task_photos')),
        sa.UniqueConstraint('check_id', name=op.f('uq_task_photos_check_id')),
    )
    op.create_index(op.f('ix_task_photos_occurrence_id'), 'task_photos', ['occurrence_id'], unique=False)
    op.create_index('ix_task_photos_due', 'task_photos', ['status', 'next_attempt_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_task_photos_due', table_name='task_photos')
    op.drop_index(op.f('ix_task_photos_occurrence_id'), table_name='task_photos')
    op.drop_table('task_photos')
    op.drop_index(op.f('ix_task_checks_occurrence_id'), table_name='task_checks')
    op.drop_table('task_checks')
    op.drop_index(op.f('ix_task_occurrences_due'), table_name='task_occurrences')
    op.drop_index(op.f('ix_task_occurrences_task_id'), table_name='task_occurrences')
    op.drop_table('task_occurrences')
    op.drop_table('tasks')
