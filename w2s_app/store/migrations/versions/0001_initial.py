"""Initial schema: comparison, generation, vote.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the three tables."""
    op.create_table(
        "comparison",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("preset", sa.String(200), nullable=False),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("models", sa.JSON, nullable=False),
        sa.Column("voter_id", sa.String(200), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("seconds", sa.Float, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_comparison_preset", "comparison", ["preset"])
    op.create_index("ix_comparison_created_at", "comparison", ["created_at"])
    op.create_table(
        "generation",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "comparison_id", sa.Integer, sa.ForeignKey("comparison.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("method", sa.String(50), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("models", sa.JSON, nullable=False),
        sa.Column("seed", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("score", sa.Float, nullable=True),
        sa.Column("eos", sa.Boolean, nullable=False),
        sa.Column("trace", sa.JSON, nullable=False),
        sa.Column("strong_tokens", sa.Integer, nullable=False),
        sa.Column("guide_tokens", sa.Integer, nullable=False),
        sa.Column("api_calls", sa.Integer, nullable=False),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("position", sa.Integer, nullable=False),
    )
    op.create_index("ix_generation_comparison_id", "generation", ["comparison_id"])
    op.create_index("ix_generation_label", "generation", ["label"])
    op.create_table(
        "vote",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "comparison_id", sa.Integer, sa.ForeignKey("comparison.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("voter_id", sa.String(200), nullable=False),
        sa.Column("choice", sa.String(20), nullable=False),
        sa.Column("generation_id", sa.Integer, sa.ForeignKey("generation.id"), nullable=True),
        sa.Column("blind", sa.Boolean, nullable=False),
        sa.Column("seconds_to_vote", sa.Float, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("comparison_id", "voter_id", name="uq_vote_comparison_voter"),
    )
    op.create_index("ix_vote_comparison_id", "vote", ["comparison_id"])


def downgrade() -> None:
    """Drop everything."""
    op.drop_table("vote")
    op.drop_table("generation")
    op.drop_table("comparison")
