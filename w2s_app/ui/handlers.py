"""What each action does, independent of layout: compare (streaming), vote, leaderboard, export.

The page and the named API endpoints call the same functions, so gradio_client can do everything
the page can. Errors a user can fix come back as UserError with a safe message; anything else is
logged and reported without a traceback.
"""

from __future__ import annotations

import logging
import math
import queue
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.exc import OperationalError

from ..errors import RateLimited, RequestError
from ..leaderboard.board import Leaderboard
from ..leaderboard.cache import BoardView
from ..leaderboard.views import ORDER, ViewError, parse_view
from ..model_queue import QueueFull
from ..options import SEED_MAX
from ..runner import CompareRequest
from ..store import VoteError
from ..store.blindness import SEED_BY_CALLER, SEED_BY_SERVER, vote_is_blind
from ..wiring import Services
from .caller import DATABASE_DOWN, Caller, UserError, database_errors
from .rater import twin_letters, twin_note
from .render import LETTERS

log = logging.getLogger(__name__)
CHOICES_SPECIAL = ("tie", "all_bad")
PUBLIC_ID = re.compile(r"[A-Za-z0-9_-]{16}")  # what Store.create_comparison hands out
MAX_PAGE = 100_000
EXPORT_PREFIX = "w2s-export-"
# An error often names its method ("eft needs one vocabulary"): the reason waits for the reveal.
FAILED_BEFORE_VOTE = "this answer failed; the reason is shown after your vote"
WRITING = "…"  # what a column shows while the answers are written


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
    who: Caller,
    prompt: Any,
    preset: str | None,
    methods: list[str],
    settings: dict[str, Any],
) -> Iterator[Update]:
    """Run a comparison in a worker thread and yield its progress, then the stored comparison.

    Without a seed, a fresh random one is drawn (and stored with the comparison, sealed from the
    rater until their vote): a replayed prompt must not replay a method's text, or a script could
    learn which column is which. A rater who gives the seed can rebuild the columns with the CLI,
    so their vote is kept but not counted as blind.
    """
    try:
        services.limits.check_request("comparison", who.voter_id, who.address)
    except RateLimited as exc:
        raise UserError(str(exc)) from exc
    except OperationalError as exc:
        raise UserError(DATABASE_DOWN) from exc
    seed_by = SEED_BY_CALLER
    if settings.get("seed") is None:
        settings, seed_by = {**settings, "seed": secrets.randbelow(SEED_MAX + 1)}, SEED_BY_SERVER
    request = CompareRequest(
        prompt, preset, list(methods), settings, who.voter_id, who.address,
        services.runner.shuffled_positions(len(methods)), services.request_limits, seed_by,
    )  # fmt: skip
    try:
        services.runner.plan(request)  # a bad request is refused before it takes a place in line
        ticket = services.queue.join()
    except (RequestError, QueueFull) as exc:
        log.info("comparison refused: %s", exc)  # the client's mistake or a busy server: one line
        raise UserError(str(exc)) from exc
    count = len(methods)
    positions = request.positions
    events: queue.Queue[tuple[int, str, float]] = queue.Queue()
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["comp"] = services.queue.run(
                ticket,
                lambda: False,
                lambda: services.runner.compare(
                    request, on_progress=lambda i, text, frac: events.put((i, text, frac))
                ),
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
                note = "waiting for the model, then loading it" if not any(fracs) else "generating"
                yield _blind_update(fracs, f"{note}… {waiting:.0f} s")
            continue
        texts[positions[i]], fracs[positions[i]] = text, frac
        yield _blind_update(fracs, f"generating… {time.perf_counter() - started:.0f} s")
    thread.join()
    if "error" in outcome:
        exc = outcome["error"]
        if isinstance(exc, RequestError | RateLimited):
            log.info("comparison refused: %s", exc)  # the client's mistake: one line, no traceback
            raise UserError(str(exc)) from exc
        if isinstance(exc, OperationalError):
            log.warning("comparison failed: the database is unavailable")
            raise UserError(DATABASE_DOWN) from exc
        log.error("comparison failed: %s: %s", type(exc).__name__, exc)
        raise UserError("the comparison failed on the server; please try again") from exc
    comp = outcome["comp"]
    stored = services.store.get_comparison(comp.id)
    for g in stored["generations"]:
        texts[g["position"]] = g["text"] if g["status"] == "done" else f"[{FAILED_BEFORE_VOTE}]"
    seconds = time.perf_counter() - started
    said = f"all answers done in {seconds:.1f} s — vote below"
    if note := twin_note(stored):  # before the vote: identical answers are not a choice
        said += f". **{note}**"
    yield Update(texts, [1.0] * count, said, True, stored)


def _blind_update(fracs: list[float], status: str) -> Update:
    """Progress that tells no column apart: no partial texts and one shared fraction.

    Each method writes at its own pace (baseline token by token, best-of-N all at once, w2s chunk
    by chunk), so partial answers or per-column progress would name the methods before the vote.
    """
    mean = sum(fracs) / max(len(fracs), 1)
    return Update(
        [WRITING] * len(fracs), [mean] * len(fracs), f"{status} · {mean:.0%} · answers appear together"
    )


def public_answers(stored: dict[str, Any]) -> list[dict[str, Any]]:
    """The anonymous view of a comparison's answers (no method names before the vote)."""
    # No generation ids: the page and the API vote by letter, and ids would only be a side channel.
    return [
        {
            "answer": LETTERS[g["position"]],
            "text": g["text"],
            "status": g["status"],
            "error": FAILED_BEFORE_VOTE if g["status"] != "done" else None,
        }
        for g in stored["generations"]
    ]


def _short(value: Any) -> str:
    """A value for an error message: its repr, cut to 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def resolve_choice(stored: dict[str, Any], choice: Any) -> int | str:
    """A choice as the store takes it: an answer letter (A, B, ...) as its generation id, 'tie' or 'all_bad'."""
    key = choice.strip() if isinstance(choice, str) and len(choice) <= 20 else None
    if key is not None and key.lower() in CHOICES_SPECIAL:
        return key.lower()
    by_letter = {LETTERS[g["position"]]: g["id"] for g in stored["generations"]}
    if key is not None and key.upper() in by_letter:
        return by_letter[key.upper()]
    letters = ", ".join(sorted(by_letter))
    raise UserError(f"unknown choice {_short(choice)}: an answer letter ({letters}), 'tie' or 'all_bad'")


def check_comparison_id(comparison_id: Any) -> str:
    """A comparison id as clients see it (a random 16-character text), else UserError."""
    if not isinstance(comparison_id, str) or not PUBLIC_ID.fullmatch(comparison_id.strip()):
        raise UserError(
            f"unknown comparison {_short(comparison_id)}: use the comparison_id that /compare returned"
        )
    return comparison_id.strip()


@database_errors
def vote(
    services: Services, who: Caller, comparison_id: Any, choice: Any, seconds: float | None = None
) -> dict[str, Any]:
    """Record a blind vote by a verified voter on a comparison shown to them; return the reveal."""
    voter, address = who.voter, who.address
    if voter is None:
        raise UserError("a voter token is required: reload the page, or get one from /token")
    public_id = check_comparison_id(comparison_id)
    try:
        stored = services.store.comparison_by_public_id(public_id)
    except KeyError as exc:
        raise UserError(f"comparison {public_id} does not exist") from exc
    if stored["voter_id"] != voter.id:  # the same answer as for no comparison: ids are not an oracle
        raise UserError(f"comparison {public_id} does not exist")
    if stored["status"] == "failed":
        raise UserError(
            "this comparison failed (it was interrupted or its models did not load); nothing to vote on"
        )
    if stored["status"] != "done":
        raise UserError("this comparison has not finished; vote when every answer is done")
    kind = resolve_choice(stored, choice)
    blind = vote_is_blind(stored["settings"])  # a rater-chosen seed could rebuild every column
    try:
        services.limits.check_request("vote", voter.id, address)
    except RateLimited as exc:
        raise UserError(str(exc)) from exc
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
        raise UserError(str(exc)) from exc
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


def check_preset(services: Services, preset: Any) -> str:
    """'' (all presets) or a known preset name, else UserError."""
    if preset is None or preset == "":
        return ""
    if not isinstance(preset, str) or preset not in services.settings.presets():
        known = ", ".join(sorted(services.settings.presets()))
        raise UserError(f"unknown preset {_short(preset)}; known presets: {known} (or '' for all)")
    return preset


def _number_arg(value: Any, name: str, lo: float, hi: float) -> float:
    """A finite number within bounds, else UserError."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise UserError(f"{name} must be a number from {lo:g} to {hi:g}, got {_short(value)}")
    try:
        number = float(value)
    except (ValueError, OverflowError) as exc:
        raise UserError(f"{name} must be a number from {lo:g} to {hi:g}, got {_short(value)}") from exc
    if not math.isfinite(number) or not lo <= number <= hi:
        raise UserError(f"{name} must be a number from {lo:g} to {hi:g}, got {_short(value)}")
    return number


def board_view(services: Services, *values: Any, **named: Any) -> BoardView:
    """The canonical view of a leaderboard request (positional values in views.ORDER), else UserError."""
    given = {**dict(zip(ORDER, values, strict=False)), **named}
    try:
        return parse_view(given, lambda preset: check_preset(services, preset))
    except ViewError as exc:
        raise UserError(str(exc)) from exc


@database_errors
def leaderboard(
    services: Services, *values: Any, view: BoardView | None = None, wait: float = 30.0, **named: Any
) -> Leaderboard:
    """The cached leaderboard of one view (views.FIELDS: preset, style_control, min_vote_seconds,
    drop_one_position, source, drop_followers, or a parsed `view`); a judge's board carries its
    agreement with people. A view not fitted yet waits up to `wait` s (cache.BoardPending)."""
    return services.board.get(view or board_view(services, *values, **named), wait)


def clean_exports(ttl_seconds: float, now: float | None = None) -> int:
    """Delete export folders older than ttl_seconds; returns how many went."""
    now = time.time() if now is None else now
    gone = 0
    for folder in Path(tempfile.gettempdir()).glob(f"{EXPORT_PREFIX}*"):
        try:
            if now - folder.stat().st_mtime > ttl_seconds:
                shutil.rmtree(folder, ignore_errors=True)
                gone += 1
        except OSError:
            continue
    return gone


@database_errors
def export(services: Services, what: Any, fmt: Any, voter_id: str | None) -> Path:
    """Write an export into a fresh temp folder and return the file (voter ids hashed with a secret salt).

    `voter_id` None is the admin's export (everything, judgements too); otherwise only that voter's
    part. Exported votes are people's (a judge's are in the admin's judgements export).
    """
    if what not in ("comparisons", "generations", "votes", "judgements"):
        raise UserError("export what: comparisons, generations, votes or judgements")
    if what == "judgements" and voter_id is not None:  # raw judge replies may quote anyone's prompt
        raise UserError("the judgements export needs the admin key")
    if fmt not in ("csv", "jsonl", "parquet"):
        raise UserError("export format: csv, jsonl or parquet")
    clean_exports(services.settings.export_ttl_seconds)
    folder = Path(tempfile.mkdtemp(prefix=EXPORT_PREFIX))
    salt = services.identity.export_salt()
    return services.store.export(what, fmt, folder / f"w2s-{what}.{fmt}", voter_id=voter_id, salt=salt)


def check_page(page: Any) -> int:
    """A history page number: a whole number from 1 to MAX_PAGE, else UserError."""
    if page is None or page == "":
        return 1
    number = _number_arg(page, "page", 1, MAX_PAGE)
    if number != int(number):
        raise UserError(f"page must be a whole number from 1 to {MAX_PAGE}, got {_short(page)}")
    return int(number)


@database_errors
def history(services: Services, page: Any, preset: Any, voter_id: str | None, page_size: int = 20) -> Any:
    """One page of past comparisons, newest first: the voter's own (voter_id None: everyone's, admin)."""
    number = check_page(page)
    preset = check_preset(services, preset)
    return services.store.list_comparisons(page_size, (number - 1) * page_size, preset or None, voter_id)


@database_errors
def voters(services: Services, admin_key: Any) -> Any:
    """The admin per-voter table: votes, agreement with the majority, position bias (ids hashed)."""
    from ..leaderboard.influence import cap_votes
    from ..leaderboard.quality import voter_table
    from ..store.database import hash_voter

    if not services.identity.is_admin(admin_key):
        raise UserError("the per-voter table needs the admin key (W2S_ADMIN_KEY)")
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
