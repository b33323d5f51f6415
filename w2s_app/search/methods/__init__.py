"""The decoding methods: each a generator with one signature, registered here with its settings.

A method yields requests (sample chunks, score streams, report progress) and receives the engine's
answers; it never touches a model. The same method code therefore runs on the plain reference
engine, the batched engines, an API backend or the fake engine, and several methods share one engine
loop. A new method is one file here plus one line in METHODS (and its settings in options.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ... import options
from ...contracts import SamplingParams
from ...options import Option, OptionError
from .baseline import baseline
from .bon import bon
from .eft import eft
from .output import MethodGen, MethodOutput
from .w2s import rank, w2s


@dataclass(frozen=True)
class MethodInfo:
    """A method: its generator, the settings it takes, and what it costs."""

    run: Callable[[dict[str, Any], SamplingParams], MethodGen]
    options: tuple[Option, ...]
    description: str
    # Streams the method decodes at once (rows of a shared batch), from its settings.
    streams: Callable[[dict[str, Any]], int]
    # Guide passes per strong token sampled: 0 baseline, 1 for a scored stream, 2 for EFT's two guides.
    guide_passes: int


METHODS: dict[str, MethodInfo] = {
    "baseline": MethodInfo(baseline, (), "plain sampling from the strong model", lambda p: 1, 0),
    "bon": MethodInfo(bon, (options.N,), "best of N samples by guide score", lambda p: p["n"], 1),
    "w2s": MethodInfo(
        w2s,
        (options.W, options.K, options.L),
        "weak-to-strong chunk-level beam search",
        lambda p: p["w"] * p["k"],
        1,
    ),
    "eft": MethodInfo(eft, (options.BETA,), "emulated fine-tuning (same vocabulary)", lambda p: 1, 2),
}


def method_params(name: str, values: dict[str, Any]) -> dict[str, Any]:
    """The settings a method (or an arm: 'bon N16') uses: the arm's own, then resolved values, then defaults."""
    if isinstance(name, str) and " " in name.strip():
        name, fixed = parse_arm(name)
        return {**method_params(name, values), **fixed}
    if name not in METHODS:
        raise OptionError("methods", f"unknown method {name!r}; choose from {', '.join(METHODS)}")
    return {o.name: values.get(o.name, o.default) for o in METHODS[name].options}


def parse_arm(text: str) -> tuple[str, dict[str, Any]]:
    """An arm as written by people and shown on the board: a method and the settings it fixes.

    The board's own label reads back ('bon N16', 'w2s W4 K4 L5'), as does 'name=value'
    ('w2s w=4 k=4 l=5'); settings not given come from the comparison's values. Each value is
    checked against its declaration (options.py), so a bad arm is refused with the setting named.
    """
    name, *parts = str(text).split()
    if name not in METHODS:
        raise OptionError(
            "methods", f"unknown method {name!r} in arm {text!r}; choose from {', '.join(METHODS)}"
        )
    fixed: dict[str, Any] = {}
    for part in parts:
        for option in METHODS[name].options:
            key, sep, value = part.partition("=")
            if sep and key.lower() == option.name:
                fixed[option.name] = option.check(value)
                break
            if not sep and part.upper().startswith(option.tag.upper()) and len(part) > len(option.tag):
                fixed[option.name] = option.check(part[len(option.tag) :])
                break
        else:
            raise OptionError("methods", f"arm {text!r}: {part!r} is not a setting of {name} "
                              f"({', '.join(o.tag + '<value>' for o in METHODS[name].options) or 'none'})")  # fmt: skip
    return name, fixed


def method_label(name: str, params: dict[str, Any]) -> str:
    """Stable display name of a method configuration (the leaderboard entity), e.g. 'w2s W2 K2 L30'."""
    return " ".join([name, *(o.tag_of(params[o.name]) for o in METHODS[name].options)])


def rows_needed(methods: list[tuple[str, dict[str, Any]]]) -> int:
    """Most streams a comparison decodes at once: 1 per baseline, N per best-of-N, W*K per search."""
    return sum(METHODS[name].streams(params) for name, params in methods)


def comparison_cost(methods: list[tuple[str, dict[str, Any]]], max_new_tokens: int) -> int:
    """Estimated token work of a comparison: strong tokens sampled plus guide tokens scored, at worst.

    Each stream runs to the budget T at worst; every scored strong token is read once more per guide
    pass: baseline T, best-of-N 2NT, w2s 2WKT, eft 3T.
    """
    return sum(
        max_new_tokens * METHODS[name].streams(params) * (1 + METHODS[name].guide_passes)
        for name, params in methods
    )


__all__ = [
    "METHODS",
    "MethodGen",
    "MethodInfo",
    "MethodOutput",
    "comparison_cost",
    "method_label",
    "method_params",
    "rank",
    "rows_needed",
]
