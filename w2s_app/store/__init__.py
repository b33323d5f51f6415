"""Storage: comparisons, generations and votes through SQLAlchemy; schema changes via Alembic."""

from __future__ import annotations

from .database import Store, VoteError, migrate
from .models import Status

__all__ = ["Status", "Store", "VoteError", "migrate"]
