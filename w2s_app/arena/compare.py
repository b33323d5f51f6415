"""Start a comparison and stream it blind: limits, a fresh sealed seed, one plan, a place in the
model queue, progress that tells no column apart, then the stored comparison."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterator
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
from ..worker_stream import WorkerStream
from .caller import Caller
from .errors import DATABASE_DOWN, ArenaError
from .letters import LETTERS, twin_note

log = logging.getLogger(__name__)
# An error often names its method ("eft needs one vocabulary"): the reason waits for the reveal.
FAILED_BEFORE_VOTE = "this answer failed; the reason is shown after your vote"
WRITING = "…"  # what a column shows while the answers are written
TICK_SECONDS = 0.25  # how long the page waits for progress before it shows the time waited again


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
        ticket = services.queue.enter()
    except (RequestError, QueueFull) as exc:
        log.info("comparison refused: %s", exc)  # the client's mistake or a busy server: one line
        raise ArenaError(str(exc)) from exc
    count = len(methods)
    positions = request.positions

    def work(emit: Callable[[tuple[int, str, float]], None]) -> Any:
        return services.queue.run(
            ticket,
            lambda: False,
            lambda: services.runner.compare(
                request, on_progress=lambda i, text, frac: emit((i, text, frac)), plan=plan
            ),
        )

    texts, fracs = [""] * count, [0.0] * count
    worker: WorkerStream[tuple[int, str, float]] = WorkerStream(work, "w2s-compare")
    started = time.perf_counter()
    worker.start()
    try:
        for event in worker.read(TICK_SECONDS):
            if event is None:  # nothing new: the status line still shows the time waited
                waiting = time.perf_counter() - started
                note = "waiting for the model, then loading it" if not any(fracs) else "generating"
                yield _blind_update(fracs, f"{note}… {waiting:.0f} s")
                continue
            i, text, frac = event
            texts[positions[i]], fracs[positions[i]] = text, frac
            yield _blind_update(fracs, f"generating… {time.perf_counter() - started:.0f} s")
    except Exception as exc:  # the worker's failure, raised by the reader after its last progress
        raise _failure(exc) from exc
    comp = worker.result
    stored = services.store.get_comparison(comp.id)
    for g in stored["generations"]:
        texts[g["position"]] = g["text"] if g["status"] == "done" else f"[{FAILED_BEFORE_VOTE}]"
    seconds = time.perf_counter() - started
    said = f"all answers done in {seconds:.1f} s — vote below"
    if note := twin_note(stored):  # before the vote: identical answers are not a choice
        said += f". **{note}**"
    yield Update(texts, [1.0] * count, said, True, stored)


def _failure(exc: Exception) -> ArenaError:
    """A failed comparison as the page and the API say it: the client's mistake, the database, or ours."""
    if isinstance(exc, RequestError | RateLimited):
        log.info("comparison refused: %s", exc)  # the client's mistake: one line, no traceback
        return ArenaError(str(exc))
    if isinstance(exc, OperationalError):
        log.warning("comparison failed: the database is unavailable")
        return ArenaError(DATABASE_DOWN)
    log.error("comparison failed: %s: %s", type(exc).__name__, exc)
    return ArenaError("the comparison failed on the server; please try again")


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
