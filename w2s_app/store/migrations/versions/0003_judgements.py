"""Automatic judges: one judgement row per pair of answers a judge compared (both orders, cost, raw replies).

The judge's verdict on a whole comparison is an ordinary vote of voter `judge:<model>`; this table
keeps what led to it.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the judgement table."""
    op.create_table(
        "judgement",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "comparison_id", sa.Integer, sa.ForeignKey("comparison.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("vote_id", sa.Integer, sa.ForeignKey("vote.id", ondelete="CASCADE"), nullable=True),
        sa.Column("judge", sa.String(200), nullable=False),
        sa.Column("prompt_version", sa.String(40), nullable=False),
        sa.Column("first_id", sa.Integer, sa.ForeignKey("generation.id", ondelete="CASCADE"), nullable=False),
        sa.Column(
            "second_id", sa.Integer, sa.ForeignKey("generation.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("verdict", sa.String(10), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("calls", sa.JSON, nullable=False),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_judgement_comparison_id", "judgement", ["comparison_id"])
    op.create_index("ix_judgement_judge_comparison", "judgement", ["judge", "comparison_id"])


def downgrade() -> None:
    """Drop the judgement table."""
    op.drop_table("judgement")
