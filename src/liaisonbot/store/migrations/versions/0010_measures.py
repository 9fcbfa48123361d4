"""measures: a request's numbered measures and the conditions on use of its answer (issue 24)

* ``request.measures``: its numbered measures ``R-n/k`` (JSON: a list of
  ``domain.measures.Measure`` in canonical form, ``[]`` when none).
* ``request.conditions``: the conditions on the use of what the whole-request answer handed
  over (a measure's own conditions are in its JSON).
* The new status ``partly_answered`` is still owed an answer: the two partial indexes on
  pending requests (``ix_request_requested_due``, ``ix_request_requesting_due``) are made again
  with the new predicate (SQLite uses a partial index only when a query repeats it literally).

Existing rows get no measures and no conditions (server defaults), so an existing database
upgrades in place; their sealed state is unchanged (``domain.audit.state_hash`` leaves these
fields out while they are empty).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import liaisonbot.store.types

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

_OLD = "status IN ('open', 'acknowledged')"
_NEW = "status IN ('open', 'acknowledged', 'partly_answered')"
_INDEXES = (('ix_request_requested_due', ['requested', 'due_at']),
            ('ix_request_requesting_due', ['requesting', 'due_at']))


def _pending_indexes(predicate: str) -> None:
    for name, columns in _INDEXES:
        op.drop_index(name, table_name='request')
        op.create_index(name, 'request', columns, unique=False,
                        sqlite_where=sa.text(predicate), postgresql_where=sa.text(predicate))


def upgrade() -> None:
    # Plain ADD COLUMN (no batch copy: SQLite would lose the table's AUTOINCREMENT).
    op.add_column('request', sa.Column('measures', liaisonbot.store.types.MeasureList(),
                                       nullable=False, server_default='[]'))
    op.add_column('request', sa.Column('conditions', sa.Text(), nullable=False,
                                       server_default=''))
    _pending_indexes(_NEW)


def downgrade() -> None:
    _pending_indexes(_OLD)
    with op.batch_alter_table('request', schema=None) as batch_op:
        batch_op.drop_column('conditions')
        batch_op.drop_column('measures')
