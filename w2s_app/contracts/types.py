"""The contracts' data: what methods ask for (requests), what engines answer, streams, traces, results."""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from typing import Any

_ids = itertools.count(1)


@dataclass(frozen=True)
class SamplingParams:
    """Settings shared by every method of one comparison."""

    max_new_tokens: int = 128
    temperature: float = 0.7
    top_p: float = 1.0
    seed: int = 0
    # "independent": each method of a comparison draws its own noise (raters see independent
    # attempts); "shared": every method draws the same noise (common random numbers, for paired
    # evaluation and the oracles: W=K=1 equals the baseline, L>=T equals best-of-N).
    noise: str = "independent"

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> SamplingParams:
        """The sampling part of a comparison's resolved settings (see options.resolve)."""
        return cls(**{k: values[k] for k in ("max_new_tokens", "temperature", "top_p", "seed", "noise")})


@dataclass(frozen=True)
class Stream:
    """A (partial) response of the strong model: text plus, for local models, its token ids."""

    text: str = ""
    token_ids: tuple[int, ...] = ()
    n_tokens: int = 0
    eos: bool = False  # ended by EOS or a stop string
    done: bool = False  # ended by EOS, stop string or the token budget
    parent: int = 0  # id of the stream this one extends (0: the prompt)
    id: int = field(default_factory=lambda: next(_ids))

    @property
    def empty(self) -> bool:
        """Ended (by EOS or a stop) before any visible text: not an answer. Local samplers never end a
        blank answer; a server may, after every retry."""
        return self.eos and not self.text.strip()

    def extend(self, text: str, token_ids: tuple[int, ...], n_new: int, eos: bool, budget: int) -> Stream:
        """A child stream with a new chunk appended."""
        n = self.n_tokens + n_new
        return Stream(
            text=text,
            token_ids=token_ids,
            n_tokens=n,
            eos=eos,
            done=eos or n >= budget,
            parent=self.id,
        )


ROOT = Stream(id=0)


@dataclass(frozen=True)
class SampleRequest:
    """Sample one chunk of at most `max_new` tokens for each (parent, slot)."""

    parents: tuple[Stream, ...]
    slots: tuple[int, ...]
    max_new: int
    seed: int | None = None  # the method's noise seed; None: the comparison's (SamplingParams.seed)


@dataclass(frozen=True)
class ScoreRequest:
    """Score streams with the guide pair: log G+(y) - log G-(y), EOS term for streams ended by EOS."""

    streams: tuple[Stream, ...]


@dataclass(frozen=True)
class EftRequest:
    """Sample a whole response token by token from logits_S + beta * (logits_G+ - logits_G-)."""

    beta: float
    slot: int
    seed: int | None = None  # as in SampleRequest


@dataclass(frozen=True)
class Asked:
    """A request in the context of its comparison, so one engine call can serve several prompts."""

    prompt: str
    sp: SamplingParams
    request: Any


@dataclass(frozen=True)
class Progress:
    """The method's current best text, for live display; the engine answers with None."""

    text: str
    fraction: float
    settled: str = ""  # the part of the answer that can no longer change (every kept beam starts with it)


@dataclass
class Counts:
    """Work done for one method."""

    strong_tokens: int = 0
    guide_tokens: int = 0
    api_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class TraceStep:
    """One step of a search: every candidate, its score, and which were kept."""

    step: int
    parents: list[int]  # index of each candidate's parent among the previous step's kept beams (-1: prompt)
    chunks: list[str]  # text each candidate added
    scores: list[float]
    finished: list[bool]
    kept: list[int]  # candidate indices kept, best first
    carried: list[bool] = field(default_factory=list)  # finished beam carried over, not sampled

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return asdict(self)


@dataclass
class SearchResult:
    """What a method returns."""

    method: str
    params: dict[str, Any]
    text: str = ""
    score: float | None = None
    eos: bool = False
    trace: list[TraceStep] = field(default_factory=list)
    counts: Counts = field(default_factory=Counts)
    seconds: float = 0.0
    error: str | None = None
    label: str = ""  # the method configuration's stable name, e.g. 'w2s W2 K2 L30' (leaderboard entity)

    @property
    def ok(self) -> bool:
        """True when the method finished without error."""
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return {
            "method": self.method,
            "label": self.label,
            "params": self.params,
            "text": self.text,
            "score": self.score,
            "eos": self.eos,
            "counts": asdict(self.counts),
            "seconds": round(self.seconds, 4),
            "error": self.error,
            "trace": [s.to_dict() for s in self.trace],
        }


@dataclass
class Answer:
    """An engine's answer to one request: a value or an error, plus the work it cost."""

    value: Any = None
    error: BaseException | None = None
    counts: Counts = field(default_factory=Counts)
