"""Vote on a comparison shown to you, and the reveal: which method wrote which letter."""

from __future__ import annotations

import re
from typing import Any

from ..errors import RateLimited
from ..store import Status, VoteError
from ..store.blindness import vote_is_blind
from ..wiring import Services
from .caller import Caller
from .checks import short
from .errors import ArenaError, database_errors
from .letters import LETTERS, twin_letters

CHOICES_SPECIAL = ("tie", "all_bad")
PUBLIC_ID = re.compile(r"[A-Za-z0-9_-]{16}")  # what Store.create_comparison hands out


def resolve_choice(stored: dict[str, Any], choice: Any) -> int | str:
    """A choice as the store takes it: an answer letter (A, B, ...) as its generation id, 'tie' or 'all_bad'."""
    key = choice.strip() if isinstance(choice, str) and len(choice) <= 20 else None
    if key is not None and key.lower() in CHOICES_SPECIAL:
        return key.lower()
    by_letter = {LETTERS[g["position"]]: g["id"] for g in stored["generations"]}
    if key is not None and key.upper() in by_letter:
        return by_letter[key.upper()]
    letters = ", ".join(sorted(by_letter))
    raise ArenaError(f"unknown choice {short(choice)}: an answer letter ({letters}), 'tie' or 'all_bad'")


def check_comparison_id(comparison_id: Any) -> str:
    """A comparison id as clients see it (a random 16-character text), else ArenaError."""
    if not isinstance(comparison_id, str) or not PUBLIC_ID.fullmatch(comparison_id.strip()):
        raise ArenaError(
            f"unknown comparison {short(comparison_id)}: use the comparison_id that /compare returned"
        )
    return comparison_id.strip()


@database_errors
def vote(
    services: Services, who: Caller, comparison_id: Any, choice: Any, seconds: float | None = None
) -> dict[str, Any]:
    """Record a blind vote by a verified voter on a comparison shown to them; return the reveal."""
    voter, address = who.voter, who.address
    if voter is None:
        raise ArenaError("a voter token is required: reload the page, or get one from /token")
    public_id = check_comparison_id(comparison_id)
    try:
        stored = services.store.comparison_by_public_id(public_id)
    except KeyError as exc:
        raise ArenaError(f"comparison {public_id} does not exist") from exc
    if stored["voter_id"] != voter.id:  # the same answer as for no comparison: ids are not an oracle
        raise ArenaError(f"comparison {public_id} does not exist")
    if stored["status"] == Status.FAILED:
        raise ArenaError(
            "this comparison failed (it was interrupted or its models did not load); nothing to vote on"
        )
    if stored["status"] != Status.DONE:
        raise ArenaError("this comparison has not finished; vote when every answer is done")
    kind = resolve_choice(stored, choice)
    blind = vote_is_blind(stored["settings"])  # a rater-chosen seed could rebuild every column
    try:
        services.limits.check_request("vote", voter.id, address)
    except RateLimited as exc:
        raise ArenaError(str(exc)) from exc
    try:
        services.store.record_vote(
            stored["id"],
            voter.id,
            kind,
            seconds_to_vote=seconds,
            min_seconds=services.settings.min_vote_seconds,
            token_id=voter.token_id,
            client_hash=address,
            blind=blind,
        )
    except VoteError as exc:
        raise ArenaError(str(exc)) from exc
    services.board.changed()
    return {"comparison_id": public_id, "recorded": True, "counted": blind, "reveal": reveal(stored)}


def reveal(stored: dict[str, Any]) -> list[dict[str, Any]]:
    """Each answer with its method and the letters of its twins (same text): shown only after the vote."""
    keys = ("id", "position", "method", "label", "params", "score", "strong_tokens", "guide_tokens",
            "api_calls", "seconds", "status", "error", "trace")  # fmt: skip
    twins = {a: group for group in twin_letters(stored) for a in group}
    out = []
    for g in stored["generations"]:
        item = {k: g[k] for k in keys}
        item["answer"] = LETTERS[g["position"]]
        item["twins"] = [a for a in twins.get(item["answer"], []) if a != item["answer"]]
        out.append(item)
    return out
