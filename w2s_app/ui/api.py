"""Named JSON endpoints for gradio_client: /token, /compare, /vote, /leaderboard, /history, /voters.

(/export is the History tab's button.) Each takes the voter token from /token, so a script has the same
identity, limits and blindness as a browser. /compare takes every setting declared in options.py, by
the same names and bounds as the page, the command line and the service.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

import gradio as gr
from gradio.utils import get_function_params

from .. import options
from ..arena import ArenaError, admin, letters, records, votes
from ..arena import compare as comparing
from ..arena.caller import caller, issue_token, owner
from .page import Page
from .signature import param, with_signature

log = logging.getLogger(__name__)


def _api_error(exc: ArenaError) -> gr.Error:
    """The endpoint's error: the message only, no traceback in the log."""
    return gr.Error(str(exc), print_exception=False)


def value_names(block_fn: Any) -> list[str]:
    """The names of the values an endpoint takes, in order (its function's parameters, as Gradio reads them)."""
    names = [name for name, *_ in get_function_params(block_fn.fn)] if block_fn.fn else []
    if len(names) != len(block_fn.inputs):  # a function taking *args: name the values by position
        names = [f"value {i + 1}" for i in range(len(block_fn.inputs))]
    return names


def count_error(block_fn: Any, got: int) -> gr.Error | None:
    """The error for a call of a client-facing endpoint with too few or too many values (None: right count).

    Gradio itself refuses too few with a traceback and a blank error, and drops extra values silently."""
    wanted = len(block_fn.inputs)
    if got == wanted or block_fn.api_visibility == "private" or not block_fn.api_name:
        return None
    names = value_names(block_fn)
    takes = f"{wanted} value{'s' * (wanted != 1)}: {', '.join(names)}" if names else "no values"
    message = f"/{block_fn.api_name} takes {takes}; got {got}"
    log.warning("refused a call: %s", message)  # the caller's mistake: one line, no traceback
    return gr.Error(message, print_exception=False)


def compare_params() -> list[inspect.Parameter]:
    """/compare's parameters: prompt, token, preset, methods, then every declared setting (None: default)."""
    params = [param("prompt", str), param("token", str), param("preset", str, ""),
              param("methods", str, "baseline,bon,w2s")]  # fmt: skip
    for o in options.ALL:
        params.append(param(o.surface_name("compare"), o.kind | None, None))
    params.append(param("request", gr.Request, None))
    return params


def register_api(page: Page) -> None:
    """Register the named endpoints (inside the page's gr.Blocks)."""
    services = page.services

    def token(request: gr.Request) -> str:
        """A new voter token for this client; pass it to /compare, /vote, /history and /export."""
        try:
            return issue_token(services, request)
        except ArenaError as exc:
            raise _api_error(exc) from exc

    def compare(prompt: Any, token: Any, preset: Any, methods: Any, *rest: Any) -> dict:
        *values, request = rest
        settings = {o.name: v for o, v in zip(options.ALL, values, strict=True)}
        try:
            if not isinstance(methods, str):
                raise ArenaError("methods must be comma-separated text, e.g. 'baseline,bon,w2s'")
            names = [m.strip() for m in methods.split(",") if m.strip()]
            who = caller(services, token, request)
            *_, last = comparing.compare_stream(services, who, prompt, preset or None, names, settings)
        except ArenaError as exc:
            raise _api_error(exc) from exc
        return {
            "comparison_id": last.comparison["public_id"],
            "answers": comparing.public_answers(last.comparison),
            # e.g. [["B", "C"]]: the same text; a vote for one counts for both
            "twins": letters.twin_letters(last.comparison),
            "note": letters.twin_note(last.comparison),
        }

    def vote(comparison_id: str, choice: str, token: str, request: gr.Request = None) -> dict:
        """Vote on a comparison /compare showed this token: an answer letter, 'tie' or 'all_bad'; returns the reveal."""
        try:
            return votes.vote(services, caller(services, token, request), comparison_id, choice)
        except ArenaError as exc:
            raise _api_error(exc) from exc

    def leaderboard(
        preset: str = "",
        style_control: bool = False,
        min_vote_seconds: float = 0,
        drop_one_position: bool = False,
        source: str = "humans",
        drop_followers: bool = False,
        request: gr.Request = None,
    ) -> dict:
        """Bradley-Terry scores with 95% intervals, head-to-head records, win rates and counts (people's
        blind votes by default; source judge:<model> or humans+judge:<model>). Cached: poll freely."""
        try:
            payload, _ = page.payloads.get(
                request, preset, style_control, min_vote_seconds, drop_one_position, source, drop_followers
            )
        except ArenaError as exc:
            raise _api_error(exc) from exc
        return payload

    def history(page: int = 1, preset: str = "", token: str = "", admin_key: str = "") -> list[dict]:
        """Your past comparisons (everyone's with the admin key), newest first, 20 a page."""
        try:
            frame = records.history(services, page, preset, owner(services, token, admin_key))
        except ArenaError as exc:
            raise _api_error(exc) from exc
        return frame.astype({"created_at": str}).to_dict(orient="records")

    def voters(admin_key: str = "") -> list[dict]:
        """Admin only: per voter (hashed) votes, agreement with the majority, position bias."""
        try:
            frame = admin.voters(services, admin_key)
        except ArenaError as exc:
            raise _api_error(exc) from exc
        return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")

    doc = (
        "Answer a prompt with several methods; answers come back anonymous (A, B, C) with the id to vote on."
    )
    gr.api(token, api_name="token", concurrency_limit=None)
    gr.api(with_signature(compare, compare_params(), doc), api_name="compare",
           concurrency_limit=services.queue.max_running + services.queue.max_waiting)  # fmt: skip
    gr.api(vote, api_name="vote", concurrency_limit=None)
    gr.api(leaderboard, api_name="leaderboard", concurrency_limit=8)
    gr.api(history, api_name="history", concurrency_limit=4)
    gr.api(voters, api_name="voters", concurrency_limit=1)
