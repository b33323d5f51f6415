"""Gold rewards per answer (answer_reward): a preset's reward function, scored off the request path.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """One row per answer and reward."""
    op.create_table(
        "answer_reward",
        sa.Column(
            "generation_id",
            sa.Integer(),
            sa.ForeignKey("generation.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("reward", sa.String(200), primary_key=True),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    """Drop the rewards (people's votes and the judge's verdicts are untouched)."""
    op.drop_table("answer_reward")
