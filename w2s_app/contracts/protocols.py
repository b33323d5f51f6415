"""The contracts between the search and what runs models: Engine, Sampler and Scorer, with their abilities.

An implementation declares what it can do in its `abilities`; nobody asks `hasattr`. The search
(methods, driver, shared loop) talks to an `Engine`; `search.guided.GuidedEngine` is the engine made of
any `Sampler` (the strong model) and any `Scorer` (the guide pair).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from .types import Answer, Asked, EftRequest, SampleRequest, SamplingParams, ScoreRequest, Stream


class SearchError(ValueError):
    """A method cannot run with this setup (e.g. EFT across vocabularies)."""


class Cancelled(RuntimeError):
    """The caller stopped the run (e.g. its client went away)."""


@dataclass
class Hooks:
    """Optional callbacks an engine calls while it works (set by the driver or shared loop for each run)."""

    # Called after each decoded token with a sample request and the current text of its rows.
    partial: Callable[[Any, list[str]], None] | None = None
    # Polled between decode steps: True stops the work (the engine raises Cancelled).
    cancelled: Callable[[], bool] | None = None
    # Polled between decode steps: True makes the engine return early with the unfinished sample
    # requests unanswered (None), so a shared loop can let a new comparison join the batch.
    interrupt: Callable[[], bool] | None = None

    def check_cancelled(self) -> None:
        """Raise Cancelled when the run's caller asked to stop."""
        if self.cancelled is not None and self.cancelled():
            raise Cancelled("the run was cancelled")


@dataclass(frozen=True)
class EngineAbilities:
    """What an engine can do beyond answering one comparison's requests."""

    # Answers the requests of several comparisons (prompts, settings) in one call, their streams in
    # one batch: the runner then runs concurrent comparisons through one shared loop.
    joinable: bool = False


@dataclass(frozen=True)
class SamplerAbilities:
    """What a sampler can do beyond sampling chunks."""

    eft: bool = False  # has the local logits of the strong model and both guides (emulated fine-tuning)


@dataclass(frozen=True)
class ScorerAbilities:
    """What a scorer is."""

    remote: bool = False  # waits on the network: an engine may score from a thread of its own


class Engine(Protocol):
    """Answers the requests methods yield, for one comparison or (when joinable) several at once."""

    abilities: ClassVar[EngineAbilities] | EngineAbilities
    hooks: Hooks
    stops: tuple[str, ...]  # the strong model's stop strings (partial text holds back their beginnings)

    def answer_ready(self, asked: list[Asked]) -> list[Answer | None]:
        """An answer per request, or None for one still in work (ask again); at least one answered."""
        ...


class Sampler(Protocol):
    """Samples chunks of the strong model for sample requests, many requests in one running batch.

    The requests may come from several comparisons (prompts, sampling settings) at once.
    """

    abilities: ClassVar[SamplerAbilities] | SamplerAbilities
    hooks: Hooks
    stops: tuple[str, ...]

    def join(self, asked: list[Asked]) -> None:
        """Add new sample requests to the running batch; forget requests nobody asks for any more.

        `asked` holds every request still waiting, of every kind: prompts named there stay cached.
        """
        ...

    def decode_until_done(self) -> None:
        """Decode until some request has all its chunks (or the interrupt hook says stop)."""
        ...

    def finished(self, req: SampleRequest) -> Answer | None:
        """The answer of a finished request (taken out of the batch), else None."""
        ...

    def reset(self) -> None:
        """Forget every request in flight."""
        ...

    def eft(self, prompt: str, sp: SamplingParams, req: EftRequest) -> Stream:
        """A whole EFT answer (only when `abilities.eft`; otherwise SearchError)."""
        ...


class Scorer(Protocol):
    """Scores streams with the guide pair: log G+(y) - log G-(y), EOS term for answers ended by EOS."""

    abilities: ClassVar[ScorerAbilities] | ScorerAbilities

    def score_many(self, items: list[tuple[str, ScoreRequest]]) -> list[Answer]:
        """One answer (scores, counts) per (prompt, request); requests of several prompts share passes."""
        ...

    def sampling(self, parents: set[int]) -> None:
        """Told which streams are being extended (a caching scorer may release their siblings)."""
        ...

    def keep_prompts(self, prompts: set[str]) -> None:
        """Only comparisons on these prompts still run: a caching scorer may forget the others."""
        ...
