"""deadlines from events: a request's dated events, its extended deadlines, Annex B

* ``request.events``: the dated events its instrument's deadlines run from (JSON: event → UTC
  moment), ``request.extensions``: legal deadlines moved by ``extend`` (JSON: name → moment).
* ``request.ack_ref``, ``request.ack_contact``: the executing office's reference and contact
  (EIO Annex B); the date of receipt is the ``received`` event.
* ``request.asked_due``: the requesting office's own deadline (``due:``/``urgent``).

Existing rows get no events, no extensions, empty Annex B and no asked deadline (server
defaults), so an existing database upgrades in place; their sealed state is unchanged
(``domain.audit.state_hash`` leaves these fields out while they are empty).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import liaisonbot.store.types

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

_COLUMNS = ('events', 'extensions', 'ack_ref', 'ack_contact', 'asked_due')


def upgrade() -> None:
    # Plain ADD COLUMN (no batch copy: SQLite would lose the table's AUTOINCREMENT).
    for column in (
            sa.Column('events', liaisonbot.store.types.Moments(), nullable=False,
                      server_default='{}'),
            sa.Column('extensions', liaisonbot.store.types.Moments(), nullable=False,
                      server_default='{}'),
            sa.Column('ack_ref', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False,
                      server_default=''),
            sa.Column('ack_contact', sqlmodel.sql.sqltypes.AutoString(length=300),
                      nullable=False, server_default=''),
            sa.Column('asked_due', liaisonbot.store.types.UTCDateTime(), nullable=True)):
        op.add_column('request', column)


def downgrade() -> None:
    with op.batch_alter_table('request', schema=None) as batch_op:
        for column in reversed(_COLUMNS):
            batch_op.drop_column(column)
