"""Judge the stored comparisons a judge has not judged yet: concurrently, with progress, resumable.

Work is one comparison at a time per worker (its pairs in sequence); the database is written from
the calling thread as comparisons finish, each in one transaction (its pairs and its vote), so an
interrupted run loses at most the comparisons in flight and a rerun picks up the rest. A server
failure (after the client's retries) records nothing for that comparison: the next run tries it
again. After a few server failures with no success at all the run stops early.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..backends.api_http import ApiError
from ..store.judgements import judge_voter
from .prompt import Rubric, load_rubric
from .protocol import Judge, Outcome, judge_comparison

log = logging.getLogger(__name__)
GIVE_UP_AFTER = 3  # server failures with no comparison judged: stop instead of failing every one


@dataclass
class JudgeReport:
    """What one run did and cost."""

    judge: str
    prompt_version: str
    todo: int = 0
    judged: int = 0
    failed: int = 0  # unreadable replies after the retry: recorded, skipped by later runs
    errors: int = 0  # server failures: nothing recorded, tried again by the next run
    already: int = 0  # judged meanwhile by another run
    votes: Counter = field(default_factory=Counter)  # 'pick' or 'tie'
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    call_seconds: float = 0.0
    wall_seconds: float = 0.0
    stopped: str = ""
    error_messages: list[str] = field(default_factory=list)

    def per_comparison(self) -> dict[str, float]:
        """Mean cost of one judged or failed comparison: requests, tokens, seconds."""
        done = max(1, self.judged + self.failed)
        return {
            "calls": round(self.calls / done, 2),
            "prompt_tokens": round(self.prompt_tokens / done, 1),
            "completion_tokens": round(self.completion_tokens / done, 1),
            "seconds": round(self.call_seconds / done, 2),
        }

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values."""
        out = {k: v for k, v in self.__dict__.items() if k != "votes"}
        out["votes"] = dict(self.votes)
        out["per_comparison"] = self.per_comparison()
        return out

    def summary(self) -> str:
        """A few lines for the terminal and the History tab."""
        if not self.todo:
            return f"{self.judge}: nothing new to judge (prompt {self.prompt_version})."
        cost = self.per_comparison()
        lines = [
            f"{self.judge} (prompt {self.prompt_version}): judged {self.judged} of {self.todo} comparisons "
            f"({self.votes.get('pick', 0)} picks, {self.votes.get('tie', 0)} ties) in {self.wall_seconds:.0f} s",
            f"per comparison: {cost['calls']:g} requests, {cost['prompt_tokens']:g} prompt + "
            f"{cost['completion_tokens']:g} completion tokens, {cost['seconds']:g} s",
        ]
        if self.failed:
            lines.append(
                f"{self.failed} unreadable after a retry: recorded as failures (--retry-failed retries)"
            )
        if self.errors:
            lines.append(
                f"{self.errors} server failures, nothing recorded; rerun to retry: {self.error_messages[0]}"
            )
        if self.already:
            lines.append(f"{self.already} judged meanwhile by another run")
        if self.stopped:
            lines.append(self.stopped)
        return "\n".join(lines)


def run_judge(
    store: Any,
    judge: Judge,
    preset: str | None = None,
    purposes: dict[str, str] | None = None,
    limit: int | None = None,
    since: datetime | None = None,
    concurrency: int = 4,
    retry_failed: bool = False,
    progress: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
    rubric: Rubric | None = None,
) -> JudgeReport:
    """Judge what this judge has not judged yet (of one preset, since a time, at most `limit`)."""
    from tqdm import tqdm

    rubric = rubric or load_rubric()
    voter = judge_voter(judge.model)
    report = JudgeReport(voter, rubric.version)
    todo = store.judge_todo(voter, rubric.version, preset, since, limit, retry_failed)
    report.todo = len(todo)
    started = time.monotonic()
    if not todo:
        return report
    purposes = purposes or {}

    def work(cid: int) -> Outcome:
        item = store.judge_item(cid)
        return judge_comparison(judge, rubric, item, purposes.get(item.preset, ""), voter)

    done = 0
    with (
        ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="w2s-judge") as pool,
        tqdm(
            total=len(todo), desc=f"judging with {judge.model}", unit="comparison", disable=not progress
        ) as bar,
    ):
        futures: dict[Future, int] = {pool.submit(work, cid): cid for cid in todo}
        try:
            for fut in as_completed(futures):
                _settle(store, report, futures[fut], fut, voter, rubric.version)
                done += 1
                bar.update(1)
                if on_progress is not None:
                    on_progress(done, len(todo))
                if report.errors >= GIVE_UP_AFTER and not (report.judged or report.failed):
                    report.stopped = f"stopped after {report.errors} server failures and no verdict"
                    break
        finally:
            for fut in futures:
                fut.cancel()  # after a stop or an interrupt, nothing new starts
    report.wall_seconds = round(time.monotonic() - started, 2)
    return report


def _settle(store: Any, report: JudgeReport, cid: int, fut: Future, voter: str, version: str) -> None:
    """Write one finished comparison (or count its server failure) into the store and the report."""
    try:
        outcome: Outcome = fut.result()
    except ApiError as exc:
        report.errors += 1
        report.error_messages.append(f"comparison {cid}: {exc}")
        log.warning("judge: comparison %s: %s", cid, exc)
        return
    for pair in outcome.pairs:
        report.calls += sum(len(c["replies"]) for c in pair.calls)
        report.prompt_tokens += pair.prompt_tokens
        report.completion_tokens += pair.completion_tokens
        report.call_seconds += pair.seconds
    vote = store.record_judgement(cid, voter, version, outcome.pairs, outcome.choice)
    if outcome.choice is None:
        report.failed += 1
    elif vote is None:
        report.already += 1
    else:
        report.judged += 1
        report.votes["tie" if outcome.choice == "tie" else "pick"] += 1
