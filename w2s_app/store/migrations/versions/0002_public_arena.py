"""Public arena: unguessable comparison ids, who asked and which process runs it, vote quality, rate events.

Revision ID: 0002
Revises: 0001
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the new columns (existing comparisons get random public ids) and the rate_event table."""
    with op.batch_alter_table("comparison") as batch:
        batch.add_column(sa.Column("public_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("client_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("runner_id", sa.String(200), nullable=True))
    conn = op.get_bind()
    table = sa.table("comparison", sa.column("id", sa.Integer), sa.column("public_id", sa.String))
    for (cid,) in conn.execute(sa.select(table.c.id)).all():
        conn.execute(table.update().where(table.c.id == cid).values(public_id=secrets.token_urlsafe(12)))
    op.create_index("ix_comparison_public_id", "comparison", ["public_id"], unique=True)
    with op.batch_alter_table("vote") as batch:
        batch.add_column(sa.Column("seconds_shown", sa.Float, nullable=True))
        batch.add_column(sa.Column("token_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("client_hash", sa.String(64), nullable=True))
    op.create_table(
        "rate_event",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_index("ix_rate_event_key_kind_at", "rate_event", ["key", "kind", "at"])


def downgrade() -> None:
    """Drop what upgrade added."""
    op.drop_table("rate_event")
    with op.batch_alter_table("vote") as batch:
        batch.drop_column("client_hash")
        batch.drop_column("token_id")
        batch.drop_column("seconds_shown")
    op.drop_index("ix_comparison_public_id", "comparison")
    with op.batch_alter_table("comparison") as batch:
        batch.drop_column("runner_id")
        batch.drop_column("client_hash")
        batch.drop_column("public_id")
