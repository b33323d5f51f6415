"""What each action does, independent of layout: compare (streaming), vote, leaderboard, export.

The page and the named API endpoints call the same functions, so gradio_client can do everything
the page can. Errors a user can fix come back as UserError with a safe message; anything else is
logged and reported without a traceback.
"""

from __future__ import annotations

import logging
import queue
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..guard import RateLimited
from ..leaderboard import Leaderboard, compute_leaderboard
from ..runner import RequestError
from ..store import VoteError
from .rater import twin_letters, twin_note
from .render import LETTERS
from .services import Services

log = logging.getLogger(__name__)
CHOICES_SPECIAL = ("tie", "all_bad")


class UserError(ValueError):
    """A message safe to show on the page or in an API answer."""


def new_voter_id() -> str:
    """A random, stable-per-browser voter id."""
    return uuid.uuid4().hex


def check_voter(voter_id: Any) -> str:
    """A voter id must be a short printable token."""
    if not isinstance(voter_id, str) or not voter_id.strip():
        raise UserError("a voter id is required")
    voter_id = voter_id.strip()
    if len(voter_id) > 100 or not voter_id.isprintable():
        raise UserError("the voter id must be at most 100 printable characters")
    return voter_id


def voter_of(browser_id: str | None, profile: Any = None) -> str:
    """The voter: the Hugging Face user when logged in (Spaces OAuth), else the browser's stored id."""
    username = profile.get("preferred_username") if isinstance(profile, dict) else None
    if username:
        return f"hf:{username}"
    return browser_id or new_voter_id()


@dataclass
class Update:
    """One progress update of a running comparison: text per display position and a status line."""

    texts: list[str]
    fractions: list[float]
    status: str
    done: bool = False
    comparison: dict[str, Any] = field(default_factory=dict)


def compare_stream(
    services: Services,
    prompt: Any,
    preset: str | None,
    methods: list[str],
    settings: dict[str, Any],
    voter_id: str | None,
) -> Iterator[Update]:
    """Run a comparison in a worker thread and yield its progress, then the stored comparison."""
    services.limiter.check(voter_id, "comparison")
    count = len(methods)
    positions = services.runner.shuffled_positions(count)
    events: queue.Queue[tuple[int, str, float]] = queue.Queue()
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["comp"] = services.runner.compare(
                prompt,
                preset,
                methods,
                settings,
                on_progress=lambda i, text, frac: events.put((i, text, frac)),
                voter_id=voter_id,
                positions=positions,
            )
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    texts, fracs = [""] * count, [0.0] * count
    thread = threading.Thread(target=work, name="w2s-compare", daemon=True)
    started = time.perf_counter()
    thread.start()
    while thread.is_alive() or not events.empty():
        try:
            i, text, frac = events.get(timeout=0.25)
        except queue.Empty:
            if thread.is_alive():
                waiting = time.perf_counter() - started
                note = (
                    "loading models (the first run converts them: up to a minute)"
                    if not any(fracs)
                    else "generating"
                )
                yield Update(list(texts), list(fracs), f"{note}… {waiting:.0f} s")
            continue
        texts[positions[i]], fracs[positions[i]] = text, frac
        yield Update(list(texts), list(fracs), f"generating… {time.perf_counter() - started:.0f} s")
    thread.join()
    if "error" in outcome:
        exc = outcome["error"]
        if isinstance(exc, RequestError | RateLimited):
            raise UserError(str(exc)) from exc
        log.exception("comparison failed", exc_info=exc)
        raise UserError("the comparison failed on the server; please try again") from exc
    comp = outcome["comp"]
    stored = services.store.get_comparison(comp.id)
    for g in stored["generations"]:
        texts[g["position"]] = g["text"] if g["status"] == "done" else f"[this method failed: {g['error']}]"
    seconds = time.perf_counter() - started
    said = f"all answers done in {seconds:.1f} s — vote below"
    if note := twin_note(stored):  # before the vote: identical answers are not a choice
        said += f". **{note}**"
    yield Update(texts, [1.0] * count, said, True, stored)


def public_answers(stored: dict[str, Any]) -> list[dict[str, Any]]:
    """The anonymous view of a comparison's answers (no method names before the vote)."""
    return [
        {
            "answer": LETTERS[g["position"]],
            "generation_id": g["id"],
            "text": g["text"],
            "status": g["status"],
            "error": g["error"],
        }
        for g in stored["generations"]
    ]


def resolve_choice(stored: dict[str, Any], choice: Any) -> int | str:
    """A choice as the store takes it: 'A'.. by position, a generation id, 'tie' or 'all_bad'."""
    if isinstance(choice, str):
        key = choice.strip()
        if key.lower() in CHOICES_SPECIAL:
            return key.lower()
        by_letter = {LETTERS[g["position"]]: g["id"] for g in stored["generations"]}
        if key.upper() in by_letter:
            return by_letter[key.upper()]
        if key.isdigit():
            return int(key)
        raise UserError(f"unknown choice {choice!r}: an answer letter, 'tie' or 'all_bad'")
    if isinstance(choice, int) and not isinstance(choice, bool):
        return choice
    raise UserError(f"unknown choice {choice!r}")


def vote(
    services: Services, comparison_id: Any, choice: Any, voter_id: Any, seconds: float | None = None
) -> dict[str, Any]:
    """Record a blind vote and return the reveal (methods, scores, timings, traces)."""
    voter = check_voter(voter_id)
    try:
        cid = int(comparison_id)
    except (TypeError, ValueError) as exc:
        raise UserError(f"unknown comparison {comparison_id!r}") from exc
    try:
        services.limiter.check(voter, "vote")
        stored = services.store.get_comparison(cid)
    except RateLimited as exc:
        raise UserError(str(exc)) from exc
    except KeyError as exc:
        raise UserError(f"comparison {cid} does not exist") from exc
    try:
        services.store.record_vote(
            cid,
            voter,
            resolve_choice(stored, choice),
            seconds_to_vote=seconds,
            min_seconds=services.settings.min_vote_seconds,
        )
    except VoteError as exc:
        raise UserError(str(exc)) from exc
    return {"comparison_id": cid, "recorded": True, "reveal": reveal(stored)}


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


def leaderboard(services: Services, preset: str | None) -> Leaderboard:
    """The leaderboard for one preset (or all)."""
    return compute_leaderboard(services.store, preset or None, n_boot=200)


def export(services: Services, what: str, fmt: str) -> Path:
    """Write an export into a fresh temp folder and return the file (voter ids hashed)."""
    if what not in ("comparisons", "generations", "votes"):
        raise UserError("export what: comparisons, generations or votes")
    if fmt not in ("csv", "jsonl", "parquet"):
        raise UserError("export format: csv, jsonl or parquet")
    folder = Path(tempfile.mkdtemp(prefix="w2s-export-"))
    return services.store.export(what, fmt, folder / f"w2s-{what}.{fmt}")


def history(services: Services, page: Any, preset: str | None, page_size: int = 20) -> Any:
    """One page of past comparisons, newest first."""
    try:
        page = max(1, int(page))
    except (TypeError, ValueError):
        page = 1
    return services.store.list_comparisons(page_size, (page - 1) * page_size, preset or None)
