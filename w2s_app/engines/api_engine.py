"""An engine whose strong model is remote (an OpenAI-compatible API).

Sampling goes through the API client; scoring runs the injected scorer (the local guide pair's
cached scorer, or a remote guide pair). Requests from different methods run concurrently: each sample
request is sent from its own thread, and `answer_ready` answers whichever requests are done, so a
method waiting on a slow whole-answer sample does not hold back the short chunks of a search.

API streams carry text only (no token ids: the strong tokenizer is unknown). A chunk's prompt is
the strong template applied to the user prompt plus the partial answer; `finish_reason == "stop"`
ends the answer as EOS, `length` means go on. Stop strings are sent to the server and also cut
locally, because a server sees only the new chunk and OpenAI takes at most four of them.
"""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import replace
from typing import Any

from ..backends.api_http import ApiError, ChatOnlyError, Usage
from ..backends.openai_api import Choice
from ..backends.roles import ApiRole, Models
from ..contracts import (
    Answer,
    Asked,
    Counts,
    EftRequest,
    EngineAbilities,
    Hooks,
    SampleRequest,
    SamplingParams,
    Scorer,
    ScoreRequest,
    SearchError,
    Stream,
)
from ..contracts.seeds import noise_seed
from ..contracts.stops import blank_stop, find_stop, retry_blank, retry_slot

NEEDS_COMPLETIONS = (
    "w2s continues partial answers chunk by chunk, which needs a completions endpoint; "
    "{model} is used through the chat endpoint only. baseline and bon work through chat; "
    "for w2s use a completions model (e.g. gpt-3.5-turbo-instruct, davinci-002, or a vLLM / "
    "llama.cpp server)."
)


# A chunk that starts a blank answer asks the server not to end it before this many tokens (where
# the server takes `min_tokens`): the local samplers' rule that a blank answer may not end.
BLANK_MIN_TOKENS = 4


def api_seed(seed: int, slot: int, position: int) -> int:
    """A 31-bit request seed from (comparison seed, slot, position): servers accept small seeds."""
    return noise_seed(seed, slot, position) % (2**31)


class ApiEngine:
    """Answers sample requests through the API client and score requests with the scorer."""

    abilities = EngineAbilities(joinable=False)

    def __init__(self, models: Models, scorer: Scorer) -> None:
        if not isinstance(models.strong, ApiRole):
            raise TypeError("ApiEngine needs an API strong model (ApiRole)")
        self.models = models
        self.hooks = Hooks()
        self.strong: ApiRole = models.strong
        self.scorer = scorer
        self._running: dict[int, tuple[Any, Future[Answer]]] = {}  # id(request) -> (request, future)
        self._lock = threading.Lock()

    @property
    def stops(self) -> tuple[str, ...]:
        """The strong model's stop strings."""
        return tuple(self.strong.spec.stop)

    def answer_ready(self, asked: list[Asked]) -> list[Answer | None]:
        """Start the remote samples, score locally, then answer what is done (at least one request)."""
        for a in asked:
            if self._threaded(a.request):
                self._start(a.prompt, a.sp, a.request)
        out: list[Answer | None] = []
        for a in asked:
            out.append(None if self._threaded(a.request) else self._local(a.prompt, a.request))
        if all(a is None for a in out):
            wait([self._running[id(a.request)][1] for a in asked], return_when=FIRST_COMPLETED)
        for i, a in enumerate(asked):
            if self._threaded(a.request) and self._running[id(a.request)][1].done():
                out[i] = self._running.pop(id(a.request))[1].result()
        return out

    def _threaded(self, req: Any) -> bool:
        """Requests answered from their own thread: samples, and scores when the scorer is remote."""
        # A scorer that waits on the network runs from threads, as samples do; a local one runs in
        # the caller's thread (its caches are not shared between threads).
        return isinstance(req, SampleRequest) or (
            self.scorer.abilities.remote and isinstance(req, ScoreRequest)
        )

    def _local(self, prompt: str, req: Any) -> Answer:
        """Score requests with the guides (as the reference engine does); EFT cannot run remotely."""
        try:
            if isinstance(req, ScoreRequest):
                return self.score(prompt, req)
            if isinstance(req, EftRequest):
                # eft_sampling.py imports torch; a server-backed engine needs only its refusal message.
                from .eft_sampling import check_eft

                check_eft(self.models)
            raise TypeError(f"unknown request {type(req).__name__}")
        except Exception as exc:
            return Answer(error=exc)

    def score(self, prompt: str, req: ScoreRequest) -> Answer:
        """log G+(y) - log G-(y) per stream from the scorer (a failed remote call keeps its cost)."""
        (answer,) = self.scorer.score_many([(prompt, req)])
        return answer

    def _start(self, prompt: str, sp: SamplingParams, req: Any) -> None:
        """Send a sample (or remote score) request from its own thread, once (the driver asks again until answered)."""
        with self._lock:
            if id(req) in self._running:
                return
            if isinstance(req, SampleRequest):
                # The parents are being extended: the scorer may forget their unkept siblings.
                self.scorer.sampling({p.id for p in req.parents})
            fut: Future[Answer] = Future()
            # Keep the request itself, so its id cannot be reused while it runs.
            self._running[id(req)] = (req, fut)

        def work() -> None:
            try:
                if isinstance(req, ScoreRequest):
                    fut.set_result(self.score(prompt, req))
                else:
                    fut.set_result(self.sample(prompt, sp, req))
            except BaseException as exc:  # the driver throws it into the method that asked
                fut.set_result(Answer(error=exc))

        threading.Thread(target=work, name="w2s-api-request", daemon=True).start()

    def sample(self, prompt: str, sp: SamplingParams, req: SampleRequest) -> Answer:
        """One chunk per (parent, slot) through the completions endpoint, or whole answers via chat."""
        counts = Counts()
        whole = all(p.n_tokens == 0 and not p.text for p in req.parents) and req.max_new >= sp.max_new_tokens
        streams: list[Stream | None] = [None] * len(req.parents)
        stops = tuple(self.strong.spec.stop)
        todo = list(range(len(req.parents)))  # the streams still to answer

        def attempt(n: int) -> list[int]:
            """Ask for the streams in `todo` with attempt n's noise; those that came out blank."""
            nonlocal todo
            sub = replace(
                req,
                parents=tuple(req.parents[i] for i in todo),
                slots=tuple(retry_slot(req.slots[i], n) for i in todo),
            )
            choices, usage = self._remote(prompt, sp, sub, whole)
            _add_usage(counts, usage)
            again = []
            for i, choice in zip(todo, choices):
                parent = req.parents[i]
                stream = self.extend(parent, choice, sp.max_new_tokens)
                counts.strong_tokens += stream.n_tokens - parent.n_tokens
                streams[i] = stream
                stopped_blank = not parent.text.strip() and blank_stop(parent.text + choice.text, stops)
                if (stream.done and not stream.text.strip()) or stopped_blank:
                    again.append(i)
            todo = again
            return again

        # An answer that ends blank, or meets a stop string before any text, is not an answer: ask
        # again with fresh noise (another slot key), as the local samplers do.
        try:
            retry_blank(attempt, bool)
        except (ApiError, SearchError) as exc:
            _add_usage(counts, getattr(exc, "usage", None) or Usage())
            return Answer(error=exc, counts=counts)
        # Still empty after every retry: such a stream is `empty`, and the method leaves it out (a
        # best-of-N sample drops out of the N; a baseline says the server wrote nothing).
        return Answer(streams, counts=counts)

    def _remote(
        self, prompt: str, sp: SamplingParams, req: SampleRequest, whole: bool
    ) -> tuple[list[Choice], Usage]:
        strong = self.strong
        # A stop string ends an answer only after some text (contracts.stops): while an answer is
        # still blank the server gets none (it would cut "\n\n\n" at the start to an empty answer);
        # they are cut locally once the answer has text.
        blank = any(not p.text.strip() for p in req.parents)
        args = (req.max_new, sp.temperature, sp.top_p, () if blank else strong.spec.stop)
        min_tokens = BLANK_MIN_TOKENS if blank else 0
        seed = sp.seed if req.seed is None else req.seed
        seeds = [api_seed(seed, slot, p.n_tokens) for p, slot in zip(req.parents, req.slots)]
        if not strong.chat:
            base = strong.prompt_text(prompt)
            try:
                return strong.client.complete([base + p.text for p in req.parents], seeds, *args, min_tokens)
            except ChatOnlyError as exc:
                # Learned just now: the model answers through chat only; whole answers still can.
                if not whole:
                    err = SearchError(NEEDS_COMPLETIONS.format(model=strong.describe()))
                    err.usage = exc.usage  # type: ignore[attr-defined]  # the refused call still counts
                    raise err from exc
                usage = exc.usage
        else:
            usage = Usage()
            if not whole:
                raise SearchError(NEEDS_COMPLETIONS.format(model=strong.describe()))
        choices, more = strong.client.chat(strong.messages(prompt), seeds, *args, min_tokens)
        usage.add(more)
        return choices, usage

    def extend(self, parent: Stream, choice: Choice, budget: int) -> Stream:
        """The child stream for a chunk: stop strings cut locally, EOS from finish_reason."""
        stops = self.strong.spec.stop
        text = parent.text + choice.text
        eos = choice.finish_reason == "stop"
        if stops:
            at = find_stop(text, stops, len(parent.text) - max(map(len, stops)))
            if at is not None:
                text, eos = text[:at], True
        stream = parent.extend(text, (), choice.tokens, eos, budget)
        if choice.finish_reason not in ("stop", "length") and not stream.done:
            # e.g. content_filter: the server will not go on, so neither does the search.
            stream = replace(stream, done=True)
        return stream


def _add_usage(counts: Counts, usage: Usage) -> None:
    counts.api_calls += usage.calls
    counts.prompt_tokens += usage.prompt_tokens
    counts.completion_tokens += usage.completion_tokens
