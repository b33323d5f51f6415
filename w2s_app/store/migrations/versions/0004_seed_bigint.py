"""A generation's seed is a 64-bit integer: seeds go up to 2**32 - 1, beyond PostgreSQL's INTEGER.

The page and /compare draw a fresh random seed for every comparison (a replayed prompt must not
replay a method's text), so seeds above 2**31 - 1 are common; SQLite never minded, PostgreSQL did.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """INTEGER -> BIGINT (SQLite rebuilds the table in batch mode)."""
    with op.batch_alter_table("generation") as batch:
        batch.alter_column("seed", type_=sa.BigInteger(), existing_type=sa.Integer(), existing_nullable=True)


def downgrade() -> None:
    """BIGINT -> INTEGER (seeds above 2**31 - 1 would not fit: refuse rather than truncate)."""
    bind = op.get_bind()
    too_big = bind.execute(sa.text("SELECT COUNT(*) FROM generation WHERE seed > 2147483647")).scalar()
    if too_big:
        raise RuntimeError(f"{too_big} generations have seeds above 2**31 - 1; INTEGER cannot hold them")
    with op.batch_alter_table("generation") as batch:
        batch.alter_column("seed", type_=sa.Integer(), existing_type=sa.BigInteger(), existing_nullable=True)
