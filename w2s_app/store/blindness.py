"""What a rater may see of their own comparison before voting on it, and which votes stay blind.

A comparison's noise seed, with the public CLI, rebuilds every column's text and so names every
column's method. It is therefore sealed in the rater's own exports until they vote (revealed with
the methods, so the comparison stays reproducible); the admin export keeps it. A rater who chose
the seed could rebuild the columns before voting, so their vote is kept but not counted as blind.
"""

from __future__ import annotations

from typing import Any

# Settings keys from which a column can be rebuilt: hidden from the rater until their vote.
SEALED_UNTIL_VOTE = ("seed",)
SEED_BY_CALLER = "caller"  # the rater gave the seed (comparison settings' "seed_by")
SEED_BY_SERVER = "server"  # drawn at random for this comparison and sealed until the vote


def seal(settings: Any) -> Any:
    """A comparison's settings as its rater may see them before voting (the seed removed)."""
    if not isinstance(settings, dict):
        return settings
    return {k: v for k, v in settings.items() if k not in SEALED_UNTIL_VOTE}


def vote_is_blind(settings: Any) -> bool:
    """Whether a vote on a comparison with these settings was cast blind (False: the rater chose the seed)."""
    return not (isinstance(settings, dict) and settings.get("seed_by") == SEED_BY_CALLER)
