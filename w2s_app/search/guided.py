"""The guided engine: a strong sampler guided by a scorer (the guide pair); any sampler works with any scorer.

Sample requests of every method (and, in a shared loop, of every comparison) join one running batch
of the sampler; score requests are answered at once, all in one `score_many` call, so a search can
send its next chunk while long samples (the baseline's, best-of-N's) keep decoding.
"""

from __future__ import annotations

from typing import Any

from ..contracts import (
    Answer,
    Asked,
    Cancelled,
    Counts,
    EftRequest,
    EngineAbilities,
    Hooks,
    Sampler,
    SampleRequest,
    SamplingParams,
    Scorer,
    ScoreRequest,
    SearchError,
)


class GuidedEngine:
    """A sampler (the strong model) guided by a scorer (the guide pair)."""

    abilities = EngineAbilities(joinable=True)

    def __init__(self, sampler: Sampler, scorer: Scorer) -> None:
        self.sampler = sampler
        self.scorer = scorer

    @property
    def hooks(self) -> Hooks:
        """The sampler's hooks (partial text, cancellation, interruption)."""
        return self.sampler.hooks

    @hooks.setter
    def hooks(self, value: Hooks) -> None:
        self.sampler.hooks = value

    @property
    def stops(self) -> tuple[str, ...]:
        """The strong model's stop strings."""
        return self.sampler.stops

    def answer_ready(self, asked: list[Asked]) -> list[Answer | None]:
        """Scores at once, then the samples that are done; None marks a sample still decoding."""
        answers: list[Answer | None] = [None] * len(asked)
        samples = [i for i, a in enumerate(asked) if isinstance(a.request, SampleRequest)]
        scores = [i for i, a in enumerate(asked) if isinstance(a.request, ScoreRequest)]
        if scores:
            try:
                got = self.scorer.score_many([(asked[i].prompt, asked[i].request) for i in scores])
                for i, ans in zip(scores, got):
                    answers[i] = ans
            except Exception as exc:
                for i in scores:
                    answers[i] = Answer(error=exc)
        for i, a in enumerate(asked):
            if answers[i] is None and i not in samples:
                answers[i] = self._other(a.prompt, a.sp, a.request)
        self.scorer.keep_prompts({a.prompt for a in asked})
        try:
            self.scorer.sampling({p.id for i in samples for p in asked[i].request.parents})
            self.sampler.join(asked)
            if all(a is None for a in answers) and samples:
                self.sampler.decode_until_done()
        except Cancelled:
            self.sampler.reset()
            raise
        except Exception as exc:
            self.sampler.reset()
            for i in samples:
                answers[i] = Answer(error=exc)
            return answers
        for i in samples:
            answers[i] = self.sampler.finished(asked[i].request)
        return answers

    def _other(self, prompt: str, sp: SamplingParams, req: Any) -> Answer:
        """EFT needs the strong model's and both guides' logits: only a sampler that has them runs it."""
        try:
            if isinstance(req, EftRequest):
                if not self.sampler.abilities.eft:
                    raise SearchError(
                        "eft needs the local logits of the strong model and both guides; "
                        "this sampler has none (use W2S_ENGINE=fast with local models)"
                    )
                stream = self.sampler.eft(prompt, sp, req)
                counts = Counts(strong_tokens=stream.n_tokens, guide_tokens=2 * stream.n_tokens)
                return Answer([stream], counts=counts)
            raise TypeError(f"unknown request {type(req).__name__}")
        except Exception as exc:
            return Answer(error=exc)


def answer_all(engine: Any, prompt: str, sp: SamplingParams, requests: list[Any]) -> list[Answer]:
    """Every request of one comparison answered (asking again until none is left waiting)."""
    answers: list[Answer | None] = [None] * len(requests)
    while True:
        todo = [i for i, a in enumerate(answers) if a is None]
        if not todo:
            return answers  # type: ignore[return-value]
        for i, ans in zip(todo, engine.answer_ready([Asked(prompt, sp, requests[i]) for i in todo])):
            answers[i] = ans
