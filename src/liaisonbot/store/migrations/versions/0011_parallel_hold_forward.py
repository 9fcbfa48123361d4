"""several requested offices, postponement and consultation, forwarding (issue 24)

* ``request.parallel_of``: the first request's id on the other requests opened with it
  (``open … to:A,B``), indexed: the requesting office sees them together.
* ``request.hold_from``, ``hold_since``, ``hold_until``, ``hold_reason``: a request postponed
  (until a date) or consulting, and the status ``resume`` takes it back to.
* ``former_party``: offices a request was forwarded away from (EIO art. 7(6)), with the request
  as it stood then and how many history entries they may still read.

Existing rows get nulls (no parallel, not held), so an existing database upgrades in place and
their sealed state is unchanged (``domain.audit.state_hash`` leaves these fields out while
empty).

Revision ID: 0011
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import liaisonbot.store.types

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

_COLUMNS = ('parallel_of', 'hold_from', 'hold_since', 'hold_until', 'hold_reason')


def upgrade() -> None:
    # Plain ADD COLUMN (no batch copy: SQLite would lose the table's AUTOINCREMENT).
    for column in (
            sa.Column('parallel_of', sa.Integer(), nullable=True),
            sa.Column('hold_from', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
            sa.Column('hold_since', liaisonbot.store.types.UTCDateTime(), nullable=True),
            sa.Column('hold_until', liaisonbot.store.types.UTCDateTime(), nullable=True),
            sa.Column('hold_reason', sa.Text(), nullable=True)):
        op.add_column('request', column)
    op.create_index(op.f('ix_request_parallel_of'), 'request', ['parallel_of'], unique=False)
    op.create_table(
        'former_party',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('request_id', sa.Integer(), nullable=False),
        sa.Column('office', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('case_ref', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('at', liaisonbot.store.types.UTCDateTime(), nullable=False),
        sa.Column('to_office', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('upto', sa.Integer(), nullable=False),
        sa.Column('snapshot', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('request_id', 'office', 'upto', name='uq_former_party'))
    op.create_index('ix_former_party_office_case', 'former_party', ['office', 'case_ref'],
                    unique=False)
    op.create_index(op.f('ix_former_party_request_id'), 'former_party', ['request_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_former_party_request_id'), table_name='former_party')
    op.drop_index('ix_former_party_office_case', table_name='former_party')
    op.drop_table('former_party')
    op.drop_index(op.f('ix_request_parallel_of'), table_name='request')
    with op.batch_alter_table('request', schema=None) as batch_op:
        for column in reversed(_COLUMNS):
            batch_op.drop_column(column)
