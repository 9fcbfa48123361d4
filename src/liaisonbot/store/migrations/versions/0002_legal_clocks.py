"""legal clocks: instrument, particulars, completeness pause, promised-date reminder

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 16:00:00

Existing rows get empty particulars, no instrument, no pause and no reminder sent (server
defaults), so an existing database upgrades in place.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import liaisonbot.store.types

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

_INCOMPLETE = "status = 'incomplete'"


def upgrade() -> None:
    # Plain ALTER TABLE ADD COLUMN and CREATE INDEX, not a batch copy: on SQLite a batch
    # rebuild would drop the table's AUTOINCREMENT (request ids must never be reused).
    columns = [
        sa.Column('instrument', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column('person', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False,
                  server_default=''),
        sa.Column('measure', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False,
                  server_default=''),
        sa.Column('paused_at', liaisonbot.store.types.UTCDateTime(), nullable=True),
        sa.Column('paused_from', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column('missing', sa.Text(), nullable=True),
        sa.Column('incomplete_nudges_sent', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('eta_reminded', sa.Boolean(), nullable=False, server_default=sa.false()),
    ]
    for column in columns:
        op.add_column('request', column)
    for name, column in (('ix_request_requested_incomplete', 'requested'),
                         ('ix_request_requesting_incomplete', 'requesting')):
        op.create_index(name, 'request', [column], unique=False,
                        sqlite_where=sa.text(_INCOMPLETE), postgresql_where=sa.text(_INCOMPLETE))


def downgrade() -> None:
    with op.batch_alter_table('request', schema=None) as batch_op:
        batch_op.drop_index('ix_request_requesting_incomplete')
        batch_op.drop_index('ix_request_requested_incomplete')
        for column in ('eta_reminded', 'incomplete_nudges_sent', 'missing', 'paused_from',
                       'paused_at', 'measure', 'person', 'instrument'):
            batch_op.drop_column(column)
