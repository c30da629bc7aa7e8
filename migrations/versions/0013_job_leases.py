"""job leases: a claimed occurrence holds a lease, and a taken-over claim is a new attempt row

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 15:20:00.000000

A scheduler killed mid-job left its occurrence `running` for ever. Now a `running` row has a
`lease_until` the runner renews while the job runs; when it has expired, the next scheduler closes
that row (failed, with why) and claims the occurrence's next `attempt`, so the unique key becomes
(job_id, occurrence, attempt) and each attempt stays on record. Existing rows are attempt 1 and
have no lease (a `running` one among them counts as expired).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempt', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('lease_until', models.base.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.alter_column('attempt', server_default=None)
        batch_op.drop_constraint('uq_job_runs_job_id', type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_job_runs_job_id'), ['job_id', 'occurrence', 'attempt'])
        batch_op.create_index('ix_job_runs_status_lease', ['status', 'lease_until'], unique=False)


def downgrade() -> None:
    # the old (job_id, occurrence) key holds one row per occurrence: keep each one's last attempt
    op.execute("DELETE FROM job_runs WHERE EXISTS (SELECT 1 FROM job_runs later WHERE later.job_id = job_runs.job_id"
               " AND later.occurrence = job_runs.occurrence AND later.attempt > job_runs.attempt)")
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_job_runs_status_lease')
        batch_op.drop_constraint('uq_job_runs_job_id', type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_job_runs_job_id'), ['job_id', 'occurrence'])
        batch_op.drop_column('lease_until')
        batch_op.drop_column('attempt')
