"""What the admin key opens beyond the records: the per-voter table, the judge run from the page."""

from __future__ import annotations

from typing import Any

from ..wiring import Services
from .errors import ArenaError, database_errors


@database_errors
def voters(services: Services, admin_key: Any) -> Any:
    """The admin per-voter table: votes, agreement with the majority, position bias (ids hashed)."""
    from ..leaderboard.influence import cap_votes
    from ..leaderboard.quality import voter_table
    from ..store.database import hash_voter

    if not services.identity.is_admin(admin_key):
        raise ArenaError("the per-voter table needs the admin key (W2S_ADMIN_KEY)")
    votes, gens, comps = services.store.leaderboard_frames(None)
    salt = services.identity.export_salt()
    counted = cap_votes(votes, comps, services.settings.voter_cap)
    return voter_table(votes, gens, lambda v: hash_voter(v, salt), counted)


@database_errors
def judge(
    services: Services, preset: str, base_url: Any, model: Any, limit: Any, on_progress: Any = None
) -> str:
    """Run the automatic judge on a preset's new comparisons (the caller checked the admin key)."""
    from ..judge import judge_now

    if (
        not isinstance(base_url, str)
        or not base_url.strip()
        or not isinstance(model, str)
        or not model.strip()
    ):
        return "error: give the judge's server (…/v1) and its model name"
    said = judge_now(
        services.store,
        services.settings,
        preset,
        base_url.strip(),
        model.strip(),
        limit,
        on_progress=on_progress,
    )
    services.board.changed()
    return said
