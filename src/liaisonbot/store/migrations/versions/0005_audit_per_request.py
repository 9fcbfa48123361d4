"""the audit chain per request (no global hot row) and the outbox claim's (room, id) index

Before: every history write locked the single ``audit_head`` row (``FOR UPDATE``), which
serialised all writers of all replicas on it. After: each new entry links to the previous
entry of its own request and the request row keeps its chain's last hash
(``request.audit_hash``, written with the request's own update under its version lock).
The entries written before this migration stay one global chain: ``audit_head`` records
where it ends (``legacy_upto``, ``legacy_hash``) and they verify as before. See
``liaisonbot.domain.audit``.

Also ``ix_outbox_room_pending`` (room, id) on pending rows: the outbox claim finds each
room's oldest pending entries by index instead of grouping every pending row.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

PENDING = "status = 'pending'"


def upgrade() -> None:
    with op.batch_alter_table('request', schema=None) as batch_op:
        batch_op.add_column(sa.Column('audit_hash', sqlmodel.sql.sqltypes.AutoString(length=64),
                                      nullable=True))
    with op.batch_alter_table('audit_head', schema=None) as batch_op:
        batch_op.add_column(sa.Column('legacy_upto', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('legacy_hash', sqlmodel.sql.sqltypes.AutoString(length=64),
                                      nullable=False, server_default='0' * 64))
    # The legacy chain ends where the head stood; each request's last entry is its tail.
    op.execute("UPDATE audit_head SET legacy_upto = last_id, legacy_hash = last_hash")
    op.execute("UPDATE request SET audit_hash = (SELECT h.hash FROM history h "
               "WHERE h.request_id = request.id ORDER BY h.id DESC LIMIT 1) "
               "WHERE EXISTS (SELECT 1 FROM history h WHERE h.request_id = request.id)")
    if op.get_bind().dialect.name == 'postgresql':
        # Ids were assigned by the application from the head; from now on the sequence does.
        op.execute("SELECT setval(pg_get_serial_sequence('history', 'id'), "
                   "GREATEST((SELECT max(id) FROM history), 1), "
                   "(SELECT max(id) IS NOT NULL FROM history))")
    op.create_index('ix_outbox_room_pending', 'outbox', ['room', 'id'], unique=False,
                    sqlite_where=sa.text(PENDING), postgresql_where=sa.text(PENDING))


def downgrade() -> None:
    op.drop_index('ix_outbox_room_pending', table_name='outbox')
    with op.batch_alter_table('audit_head', schema=None) as batch_op:
        batch_op.drop_column('legacy_hash')
        batch_op.drop_column('legacy_upto')
    with op.batch_alter_table('request', schema=None) as batch_op:
        batch_op.drop_column('audit_hash')
