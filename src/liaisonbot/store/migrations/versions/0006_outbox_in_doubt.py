"""outbox entries say themselves whether an earlier attempt may have been posted

Before: each gateway committed a ``<platform>:try:<delivery id>`` state row right before it
sent (a transaction per post on top of the claim and the record of the outcome). After: an
entry is ``in_doubt`` when an attempt may have been posted (an unknown outcome, a lease never
settled), and handing it back unattempted or a clear refusal clears it
(``liaisonbot.store.uow.SqlOutbox.claim``). The markers of
pending entries become the column; all ``*:try:*`` rows are dropped.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('in_doubt', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    op.execute(
        "UPDATE outbox SET in_doubt = TRUE WHERE status = 'pending' AND EXISTS ("
        " SELECT 1 FROM kv_state s WHERE s.value = '1'"
        " AND s.key = outbox.platform || ':try:lb-' || CAST(outbox.id AS VARCHAR(20)))")
    op.execute("DELETE FROM kv_state WHERE key LIKE 'slack:try:%' OR key LIKE 'matrix:try:%'")


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('in_doubt')
