"""tickets.address_key: repeat calls about the same place, indexed with created_at

A draft is linked to an earlier ticket of the same caller or of the same place;
the place is the normalized city + street key of the parsed address.

Revision ID: 0005_duplicate_address_key
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_duplicate_address_key"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("address_key", sa.String(length=96), nullable=True))
        batch_op.create_index(
            "ix_tickets_address_key_created", ["address_key", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_address_key_created")
        batch_op.drop_column("address_key")
