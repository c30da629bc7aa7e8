"""workers wake on LISTEN/NOTIFY; each official account's daily template quota

Revision ID: 0026
Revises: 0025
Create Date: 2026-11-30 21:00:00.000000

PostgreSQL only: a new delivery (an INSERT on `deliveries`, one NOTIFY per statement) or one set back
to pending (`houqin outbox retry`, a retry after an error, a template send WeChat reports failed) sends
NOTIFY on the channel `houqin_outbox` with the table's schema as payload, so an idle `houqin worker`
in LISTEN wakes at the commit instead of at its next poll. PostgreSQL delivers a NOTIFY only when its
transaction commits and folds repeats within one transaction into one. SQLite keeps polling.

`template_quota`: per official account (appid) and per day of the account (Beijing time), the template
messages sent or tried, the deliveries deferred to the next day, and when WeChat answered 45009.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None

NOTIFY_FUNCTION = """
CREATE OR REPLACE FUNCTION houqin_outbox_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('houqin_outbox', TG_TABLE_SCHEMA);
    RETURN NULL;
END
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.create_table(
        'template_quota',
        sa.Column('appid', sa.String(length=64), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('sent', sa.Integer(), nullable=False),
        sa.Column('deferred', sa.Integer(), nullable=False),
        sa.Column('exhausted_at', models.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('appid', 'day', name=op.f('pk_template_quota')),
    )
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(NOTIFY_FUNCTION)
        op.execute("CREATE TRIGGER deliveries_queued AFTER INSERT ON deliveries "
                   "FOR EACH STATEMENT EXECUTE FUNCTION houqin_outbox_notify()")
        op.execute("CREATE TRIGGER deliveries_requeued AFTER UPDATE OF status ON deliveries FOR EACH ROW "
                   "WHEN (NEW.status = 'pending' AND OLD.status IS DISTINCT FROM 'pending') "
                   "EXECUTE FUNCTION houqin_outbox_notify()")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS deliveries_requeued ON deliveries")
        op.execute("DROP TRIGGER IF EXISTS deliveries_queued ON deliveries")
        op.execute("DROP FUNCTION IF EXISTS houqin_outbox_notify()")
    op.drop_table('template_quota')
