"""The guide pair on OpenAI-compatible servers as a scorer: each score from echoed prompt log-probabilities.

The guides themselves (request, echo parsing, boundary rule) are in backends/remote_guide.py.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ..backends.api_http import ApiError, Usage
from ..backends.remote_guide import RemoteGuide
from ..contracts import Answer, Counts, ScorerAbilities, ScoreRequest, Stream


class RemoteGuidePair:
    """Scores streams with a tuned and an untuned remote guide: log G+(y) - log G-(y), concurrently.

    A `Scorer`, so it guides any sampler: an API strong model or a local one.
    """

    abilities = ScorerAbilities(remote=True)  # waits on the network: an engine may score from threads

    def __init__(self, tuned: RemoteGuide, untuned: RemoteGuide, parallel: int | None = None) -> None:
        self.tuned = tuned
        self.untuned = untuned
        self.workers = parallel or max(tuned.client.config.parallel, untuned.client.config.parallel)
        self.requests = 0  # HTTP requests sent, retries included (for cost reports)
        self.seconds = 0.0  # wall time spent scoring
        self._stats = threading.Lock()

    def score_many(self, items: list[tuple[str, ScoreRequest]]) -> list[Answer]:
        """One answer per (prompt, request), all their streams scored together; a failed request fails
        only its own answer, with what its calls cost."""
        flat = [(prompt, s) for prompt, req in items for s in req.streams]
        results = self._logprobs(flat)
        answers, at = [], 0
        for _, req in items:
            mine = results[2 * at : 2 * (at + len(req.streams))]
            at += len(req.streams)
            answers.append(_answer(mine))
        return answers

    def sampling(self, parents: set[int]) -> None:
        """Nothing to release: each guide's cache is keyed by text and bounded."""

    def keep_prompts(self, prompts: set[str]) -> None:
        """Nothing to forget: each guide's cache is keyed by text and bounded."""

    def _logprobs(self, streams: list[tuple[str, Stream]]) -> list[tuple[float, int, Usage] | ApiError]:
        """(tuned, untuned) results per stream, in order: a value or the ApiError it ended with."""
        start = time.perf_counter()
        # A pool per call: engines are made per comparison and never closed, so nothing may linger.
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="w2s-guide") as pool:
            jobs = [
                pool.submit(guide.logprob, prompt, s.text, s.eos)
                for prompt, s in streams
                for guide in (self.tuned, self.untuned)
            ]
            results: list[tuple[float, int, Usage] | ApiError] = []
            for fut in jobs:
                try:
                    results.append(fut.result())
                except ApiError as exc:
                    results.append(exc)
        calls = sum(r.usage.calls if isinstance(r, ApiError) else r[2].calls for r in results)
        with self._stats:
            self.requests += calls
            self.seconds += time.perf_counter() - start
        return results


def _answer(results: list[tuple[float, int, Usage] | ApiError]) -> Answer:
    """Scores (tuned minus untuned, per stream) from paired results, or the first error with the
    cost of every call (all have finished, so the whole cost is known)."""
    counts = Counts()
    errors = [r for r in results if isinstance(r, ApiError)]
    for r in results:
        counts.api_calls += r.usage.calls if isinstance(r, ApiError) else r[2].calls
    if errors:
        err = type(errors[0])(str(errors[0]), Usage(calls=counts.api_calls))
        return Answer(error=err, counts=Counts(api_calls=counts.api_calls))
    counts.guide_tokens = sum(r[1] for r in results)
    values = [r[0] for r in results]
    return Answer([values[i] - values[i + 1] for i in range(0, len(values), 2)], counts=counts)
