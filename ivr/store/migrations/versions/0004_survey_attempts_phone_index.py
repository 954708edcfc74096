"""survey attempts by phone and claim time, and due attempts in claim order

Every claim asks whether the number was already called that day, and picks the
next due attempts of its campaign; without these indexes both read every
attempt of the campaign, so claiming a campaign grew with the square of its size.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("survey_attempts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_survey_attempts_phone_claimed_at", ["phone", "claimed_at"], unique=False
        )
        batch_op.create_index(
            "ix_survey_attempts_due", ["campaign_id", "status", "not_before", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("survey_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_survey_attempts_due")
        batch_op.drop_index("ix_survey_attempts_phone_claimed_at")
