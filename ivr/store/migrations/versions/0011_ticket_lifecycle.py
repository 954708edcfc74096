"""The loop after registration: extensions, returns, supervision, review, re-surveys,
the second survey question and manual callbacks

Tickets: survey_resolved, survey_round, rehandle_count, dispatched_at (backfilled with
the last change of tickets already past the draft), first_contact_at. Survey attempts:
round, resolved, manual, note, recorded_by; campaign_id may be NULL (a manual callback).
New tables ticket_extensions, ticket_returns, supervisions.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _pk_fk(table: str) -> list[sa.schema.SchemaItem]:
    return [
        sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=f"fk_{table}_ticket_id_tickets"
        ),
    ]


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("survey_resolved", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("survey_round", sa.Integer(), server_default="1", nullable=False)
        )
        batch_op.add_column(
            sa.Column("rehandle_count", sa.Integer(), server_default="0", nullable=False)
        )
        for column in ("dispatched_at", "first_contact_at"):
            batch_op.add_column(sa.Column(column, sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE tickets SET dispatched_at = updated_at WHERE status <> 'draft'")

    with op.batch_alter_table("survey_attempts", schema=None) as batch_op:
        batch_op.alter_column("campaign_id", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("round", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("resolved", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("manual", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("recorded_by", sa.String(length=128), nullable=True))

    op.create_table(
        "ticket_extensions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("department", sa.String(length=64), nullable=False),
        sa.Column("workdays", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("old_due", sa.Date(), nullable=False),
        sa.Column("new_due", sa.Date(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        *_pk_fk("ticket_extensions"),
    )
    op.create_index("ix_ticket_extensions_ticket_id", "ticket_extensions", ["ticket_id"])
    op.create_table(
        "ticket_returns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("department", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("onsite", sa.Boolean(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        *_pk_fk("ticket_returns"),
    )
    op.create_index("ix_ticket_returns_ticket_id", "ticket_returns", ["ticket_id"])
    op.create_index("ix_ticket_returns_department", "ticket_returns", ["department"])
    op.create_table(
        "supervisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        *_pk_fk("supervisions"),
    )
    op.create_index("ix_supervisions_ticket_id", "supervisions", ["ticket_id"])
    op.create_index("ix_supervisions_closed_at", "supervisions", ["closed_at"])


def downgrade() -> None:
    op.drop_table("supervisions")
    op.drop_table("ticket_returns")
    op.drop_table("ticket_extensions")
    op.execute("DELETE FROM survey_attempts WHERE campaign_id IS NULL")
    with op.batch_alter_table("survey_attempts", schema=None) as batch_op:
        for column in ("recorded_by", "note", "manual", "resolved", "round"):
            batch_op.drop_column(column)
        batch_op.alter_column("campaign_id", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        for column in (
            "first_contact_at",
            "dispatched_at",
            "rehandle_count",
            "survey_round",
            "survey_resolved",
        ):
            batch_op.drop_column(column)
