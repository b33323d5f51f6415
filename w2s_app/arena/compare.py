"""Start a comparison and stream it blind: limits, a fresh sealed seed, one plan, a place in the
model queue, progress that tells no column apart, then the stored comparison."""

from __future__ import annotations

import logging
import queue
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import OperationalError

from ..errors import RateLimited, RequestError
from ..model_queue import QueueFull
from ..options import SEED_MAX
from ..runner import CompareRequest
from ..store.blindness import SEED_BY_CALLER, SEED_BY_SERVER
from ..store.recent import wait_estimate
from ..wiring import Services
from .caller import Caller
from .errors import DATABASE_DOWN, ArenaError
from .letters import LETTERS, twin_note

log = logging.getLogger(__name__)
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
        raise ArenaError(str(exc)) from exc
    except OperationalError as exc:
        raise ArenaError(DATABASE_DOWN) from exc
    seed_by = SEED_BY_CALLER
    if settings.get("seed") is None:
        settings, seed_by = {**settings, "seed": secrets.randbelow(SEED_MAX + 1)}, SEED_BY_SERVER
    request = CompareRequest(
        prompt, preset, list(methods), settings, who.voter_id, who.address,
        services.runner.shuffled_positions(len(methods)), services.request_limits, seed_by,
    )  # fmt: skip
    try:
        plan = services.runner.plan(request)  # a bad request is refused before it takes a place in line
        ticket = services.queue.join()
    except (RequestError, QueueFull) as exc:
        log.info("comparison refused: %s", exc)  # the client's mistake or a busy server: one line
        raise ArenaError(str(exc)) from exc
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
                    request, on_progress=lambda i, text, frac: events.put((i, text, frac)), plan=plan
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
            raise ArenaError(str(exc)) from exc
        if isinstance(exc, OperationalError):
            log.warning("comparison failed: the database is unavailable")
            raise ArenaError(DATABASE_DOWN) from exc
        log.error("comparison failed: %s: %s", type(exc).__name__, exc)
        raise ArenaError("the comparison failed on the server; please try again") from exc
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


def preset_wait(services: Services, preset: str) -> tuple[float, int] | None:
    """(median seconds, how many comparisons) of a preset's recent comparisons, or None before any."""
    return wait_estimate(services.store, preset)
