"""the case board's indexes: each side of a request by office, case, status and due time

The board's cases page groups an office's requests by case with their open and overdue
counts; these covering indexes make that an index-only range scan per side instead of two
scans of the whole table (10 s → tens of ms over 1M requests; benchmarks/bench_board.py).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('request', schema=None) as batch_op:
        batch_op.create_index('ix_request_requesting_case',
                              ['requesting', 'case_ref', 'status', 'due_at'], unique=False)
        batch_op.create_index('ix_request_requested_case',
                              ['requested', 'case_ref', 'status', 'due_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('request', schema=None) as batch_op:
        batch_op.drop_index('ix_request_requested_case')
        batch_op.drop_index('ix_request_requesting_case')
