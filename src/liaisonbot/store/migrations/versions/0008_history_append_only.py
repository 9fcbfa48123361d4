"""history is append-only for the application; each entry seals its request's state

* ``history.state_hash``: each new entry seals the request's stored state after its change
  (``liaisonbot.domain.audit.state_hash``), so a row changed without an entry is found by
  ``audit verify``. Entries written before keep no state (their seal does not include it).
* Triggers that refuse ``UPDATE`` and ``DELETE`` on ``history`` (PostgreSQL: a PL/pgSQL
  function; SQLite: ``RAISE(ABORT)`` triggers). They keep the application (and any role that
  is not a superuser or the table's owner) from rewriting history; a superuser can still
  disable them (``session_replication_role = replica``, ``ALTER TABLE … DISABLE TRIGGER``,
  or on SQLite ``DROP TRIGGER``): that is what the signed checkpoints held by partners are
  for.

It follows 0007 (the inbox).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION liaisonbot_history_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'history is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""
PG_TRIGGER = ("CREATE TRIGGER history_append_only BEFORE UPDATE OR DELETE ON history "
              "FOR EACH ROW EXECUTE FUNCTION liaisonbot_history_append_only()")
SQLITE_TRIGGERS = (
    "CREATE TRIGGER history_no_update BEFORE UPDATE ON history "
    "BEGIN SELECT RAISE(ABORT, 'history is append-only: UPDATE refused'); END",
    "CREATE TRIGGER history_no_delete BEFORE DELETE ON history "
    "BEGIN SELECT RAISE(ABORT, 'history is append-only: DELETE refused'); END",
)


def upgrade() -> None:
    with op.batch_alter_table('history', schema=None) as batch_op:
        batch_op.add_column(sa.Column('state_hash', sqlmodel.sql.sqltypes.AutoString(length=64),
                                      nullable=True))
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(PG_FUNCTION)
        op.execute(PG_TRIGGER)
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS history_append_only ON history")
        op.execute("DROP FUNCTION IF EXISTS liaisonbot_history_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS history_no_update")
        op.execute("DROP TRIGGER IF EXISTS history_no_delete")
    with op.batch_alter_table('history', schema=None) as batch_op:
        batch_op.drop_column('state_hash')
