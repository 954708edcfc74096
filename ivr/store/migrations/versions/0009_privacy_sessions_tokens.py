"""Ticket change numbers, session versions, token expiry, counted sign-in failures

tickets.change_seq numbers every ticket write in commit order (change_counter holds
the last number): the live queue's cursor and the ticket's version (ETag).
users.session_version ends a user's console sessions when bumped.
api_tokens.expires_at: a token is refused after it (NULL: never).
login_failures: counted failed sign-ins, for the lockouts per address and per account.

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("change_seq", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.create_index("ix_tickets_change_seq", ["change_seq"], unique=False)
    counter = op.create_table(
        "change_counter",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_counter")),
    )
    # Existing tickets are numbered by id; the counter continues after them.
    op.execute("UPDATE tickets SET change_seq = id")
    last = op.get_bind().execute(sa.text("SELECT COALESCE(MAX(id), 0) FROM tickets")).scalar()
    op.bulk_insert(counter, [{"id": 1, "seq": int(last or 0)}])
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("session_version", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
    )
    op.create_index("ix_login_failures_at", "login_failures", ["at"], unique=False)
    op.create_index("ix_login_failures_username", "login_failures", ["username"], unique=False)
    op.create_index("ix_login_failures_address", "login_failures", ["address"], unique=False)


def downgrade() -> None:
    op.drop_table("login_failures")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("expires_at")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("session_version")
    op.drop_table("change_counter")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_change_seq")
        batch_op.drop_column("change_seq")
