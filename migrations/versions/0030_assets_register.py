"""the register of things (issue 18): assets gain custodian, purchase, price, status, photo, quantity,
lending flags and kind (thing | key); their history, loans (keys included), stocktakes, supplies and
disposals

Revision ID: 0030
Revises: 0024
Create Date: 2026-11-30 21:00:00.000000

Existing assets become things in use (在用), one of each, not lendable. Plain ADD COLUMN and CREATE
TABLE on both backends.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = '0030'
down_revision = '0029'
branch_labels = None
depends_on = None

UTC = models.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table('assets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=8), nullable=False, server_default='thing'))
        batch_op.add_column(sa.Column('custodian_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('purchased_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('price', sa.Numeric(precision=12, scale=2), nullable=True))
        batch_op.add_column(sa.Column('status', sa.String(length=12), nullable=False, server_default='in_use'))
        batch_op.add_column(sa.Column('photo', sa.String(length=300), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('quantity', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('lendable', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('needs_approval', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('disposed_at', UTC, nullable=True))
        batch_op.create_index(batch_op.f('ix_assets_custodian_id'), ['custodian_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_assets_custodian_id_people'), 'people', ['custodian_id'], ['id'],
                                    ondelete='SET NULL')
    op.create_table(
        'asset_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('asset_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('at', UTC, nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=True),
        sa.Column('note', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], name=op.f('fk_asset_events_asset_id_assets'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_asset_events_person_id_people'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_asset_events')),
    )
    op.create_index(op.f('ix_asset_events_asset_id'), 'asset_events', ['asset_id'], unique=False)
    op.create_table(
        'asset_disposals',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('asset_id', sa.Integer(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('asked_by_id', sa.Integer(), nullable=True),
        sa.Column('asked_at', UTC, nullable=False),
        sa.Column('decided_by_id', sa.Integer(), nullable=True),
        sa.Column('decided_at', UTC, nullable=True),
        sa.ForeignKeyConstraint(['asked_by_id'], ['people.id'], name=op.f('fk_asset_disposals_asked_by_id_people'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], name=op.f('fk_asset_disposals_asset_id_assets'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['decided_by_id'], ['people.id'],
                                name=op.f('fk_asset_disposals_decided_by_id_people'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_asset_disposals')),
        sa.UniqueConstraint('number', name=op.f('uq_asset_disposals_number')),
    )
    op.create_index(op.f('ix_asset_disposals_asset_id'), 'asset_disposals', ['asset_id'], unique=False)
    op.create_table(
        'asset_loans',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('asset_id', sa.Integer(), nullable=False),
        sa.Column('borrower_id', sa.Integer(), nullable=False),
        sa.Column('quantity', sa.Integer(), nullable=False),
        sa.Column('copy_no', sa.Integer(), nullable=True),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('asked_at', UTC, nullable=False),
        sa.Column('lent_at', UTC, nullable=True),
        sa.Column('due_on', sa.Date(), nullable=True),
        sa.Column('returned_at', UTC, nullable=True),
        sa.Column('approver_id', sa.Integer(), nullable=True),
        sa.Column('reminded_on', sa.Date(), nullable=True),
        sa.Column('escalated_at', UTC, nullable=True),
        sa.ForeignKeyConstraint(['approver_id'], ['people.id'], name=op.f('fk_asset_loans_approver_id_people'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], name=op.f('fk_asset_loans_asset_id_assets'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['borrower_id'], ['people.id'], name=op.f('fk_asset_loans_borrower_id_people'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_asset_loans')),
        sa.UniqueConstraint('number', name=op.f('uq_asset_loans_number')),
    )
    op.create_index(op.f('ix_asset_loans_asset_id'), 'asset_loans', ['asset_id'], unique=False)
    op.create_index(op.f('ix_asset_loans_borrower_id'), 'asset_loans', ['borrower_id'], unique=False)
    op.create_index('ix_asset_loans_status_due', 'asset_loans', ['status', 'due_on'], unique=False)
    op.create_table(
        'stocktakes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('scope', sa.String(length=12), nullable=False),
        sa.Column('scope_name', sa.String(length=100), nullable=False),
        sa.Column('building', sa.String(length=64), nullable=False),
        sa.Column('room_id', sa.Integer(), nullable=True),
        sa.Column('started_by_id', sa.Integer(), nullable=True),
        sa.Column('started_at', UTC, nullable=False),
        sa.Column('ended_at', UTC, nullable=True),
        sa.ForeignKeyConstraint(['room_id'], ['rooms.id'], name=op.f('fk_stocktakes_room_id_rooms'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['started_by_id'], ['people.id'], name=op.f('fk_stocktakes_started_by_id_people'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_stocktakes')),
    )
    op.create_table(
        'stocktake_checks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('stocktake_id', sa.Integer(), nullable=False),
        sa.Column('asset_id', sa.Integer(), nullable=True),
        sa.Column('code', sa.String(length=100), nullable=False),
        sa.Column('room_id', sa.Integer(), nullable=True),
        sa.Column('person_id', sa.Integer(), nullable=True),
        sa.Column('at', UTC, nullable=False),
        sa.Column('photo_media_id', sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], name=op.f('fk_stocktake_checks_asset_id_assets'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_stocktake_checks_person_id_people'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['room_id'], ['rooms.id'], name=op.f('fk_stocktake_checks_room_id_rooms'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['stocktake_id'], ['stocktakes.id'],
                                name=op.f('fk_stocktake_checks_stocktake_id_stocktakes'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_stocktake_checks')),
    )
    op.create_index(op.f('ix_stocktake_checks_stocktake_id'), 'stocktake_checks', ['stocktake_id'], unique=False)
    op.create_table(
        'supplies',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('unit', sa.String(length=8), nullable=False),
        sa.Column('stock', sa.Integer(), nullable=False),
        sa.Column('reorder_level', sa.Integer(), nullable=False),
        sa.Column('needs_approval', sa.Boolean(), nullable=False),
        sa.Column('keeper_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['keeper_id'], ['people.id'], name=op.f('fk_supplies_keeper_id_people'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_supplies')),
        sa.UniqueConstraint('name', name=op.f('uq_supplies_name')),
    )
    op.create_table(
        'supply_moves',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('supply_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=4), nullable=False),
        sa.Column('quantity', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=True),
        sa.Column('department', sa.String(length=64), nullable=False),
        sa.Column('purpose', sa.Text(), nullable=False),
        sa.Column('at', UTC, nullable=False),
        sa.Column('stock_after', sa.Integer(), nullable=True),
        sa.Column('approver_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['approver_id'], ['people.id'], name=op.f('fk_supply_moves_approver_id_people'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_supply_moves_person_id_people'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['supply_id'], ['supplies.id'], name=op.f('fk_supply_moves_supply_id_supplies'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_supply_moves')),
        sa.UniqueConstraint('number', name=op.f('uq_supply_moves_number')),
    )
    op.create_index(op.f('ix_supply_moves_at'), 'supply_moves', ['at'], unique=False)
    op.create_index(op.f('ix_supply_moves_person_id'), 'supply_moves', ['person_id'], unique=False)
    op.create_index(op.f('ix_supply_moves_supply_id'), 'supply_moves', ['supply_id'], unique=False)

    op.create_table(
        'asset_photos',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('asset_id', sa.Integer(), nullable=False),
        sa.Column('media_id', sa.String(length=200), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('path', sa.String(length=300), nullable=False),
        sa.Column('content_type', sa.String(length=64), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', UTC, nullable=False),
        sa.Column('claim', sa.String(length=40), nullable=True),
        sa.Column('lease_until', UTC, nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('created_at', UTC, nullable=False),
        sa.Column('saved_at', UTC, nullable=True),
        sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], name=op.f('fk_asset_photos_asset_id_assets'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_asset_photos')),
    )
    op.create_index(op.f('ix_asset_photos_asset_id'), 'asset_photos', ['asset_id'], unique=False)
    op.create_index('ix_asset_photos_due', 'asset_photos', ['status', 'next_attempt_at'], unique=False)
    op.create_table(
        'stocktake_photos',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('check_id', sa.Integer(), nullable=False),
        sa.Column('media_id', sa.String(length=200), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('path', sa.String(length=300), nullable=False),
        sa.Column('content_type', sa.String(length=64), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', UTC, nullable=False),
        sa.Column('claim', sa.String(length=40), nullable=True),
        sa.Column('lease_until', UTC, nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('created_at', UTC, nullable=False),
        sa.Column('saved_at', UTC, nullable=True),
        sa.ForeignKeyConstraint(['check_id'], ['stocktake_checks.id'],
                                name=op.f('fk_stocktake_photos_check_id_stocktake_checks'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_stocktake_photos')),
    )
    op.create_index(op.f('ix_stocktake_photos_check_id'), 'stocktake_photos', ['check_id'], unique=False)
    op.create_index('ix_stocktake_photos_due', 'stocktake_photos', ['status', 'next_attempt_at'], unique=False)


def downgrade() -> None:
    for table in ('stocktake_photos', 'asset_photos', 'supply_moves', 'supplies', 'stocktake_checks', 'stocktakes', 'asset_loans', 'asset_disposals',
                  'asset_events'):
        op.drop_table(table)
    with op.batch_alter_table('assets', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_assets_custodian_id_people'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_assets_custodian_id'))
        for column in ('disposed_at', 'needs_approval', 'lendable', 'quantity', 'photo', 'status', 'price',
                       'purchased_on', 'custodian_id', 'kind'):
            batch_op.drop_column(column)
