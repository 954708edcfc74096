"""calls.node: the SIP node that holds a call, to close its calls after a crash

At start-up a SIP node closes the calls it left `in-progress` when its process
died (kill -9, power loss) as `interrupted`, and only its own: other nodes'
calls on the same database are alive.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("node", sa.String(length=128), nullable=True))
        batch_op.create_index("ix_calls_node_status", ["node", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index("ix_calls_node_status")
        batch_op.drop_column("node")
