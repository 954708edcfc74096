"""tickets.intake: what the intake model said about the draft

The model's probability for the drafted category and department, its three
likeliest departments, its version and the fields below intake.low_confidence
(JSON, NULL for tickets drafted before the model).

Revision ID: 0006
Revises: 0005_duplicate_address_key
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005_duplicate_address_key"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("intake", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_column("intake")
