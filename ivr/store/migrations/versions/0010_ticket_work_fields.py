"""tickets: caller name, call-back number, the original statement, the claim, queue index

caller_name and callback_number as the operator notes them; statement_original
keeps the drafted statement once an operator corrects it; claimed_by and
claimed_at hold the 认领 (one operator works a draft at a time); an index for the
work queue's order (status, urgent, due_date).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("caller_name", sa.String(64), nullable=True))
        batch_op.add_column(sa.Column("callback_number", sa.String(32), nullable=True))
        batch_op.add_column(sa.Column("statement_original", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("claimed_by", sa.String(64), nullable=True))
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_tickets_status_urgent_due", ["status", "urgent", "due_date"])


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_status_urgent_due")
        for name in ("claimed_at", "claimed_by", "statement_original", "callback_number"):
            batch_op.drop_column(name)
        batch_op.drop_column("caller_name")
