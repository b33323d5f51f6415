"""Rewards: callables (prompt, text) -> float. Built in: VADER sentiment; or any module:function."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import cache

Reward = Callable[[str, str], float]


@cache
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def vader_positive(prompt: str, text: str) -> float:
    """VADER compound sentiment of the text (-1 .. 1): higher is more positive."""
    return float(_vader().polarity_scores(text)["compound"])


def vader_negative(prompt: str, text: str) -> float:
    """Negated VADER compound sentiment: higher is more negative."""
    return -vader_positive(prompt, text)


BUILTIN: dict[str, Reward] = {
    "vader": vader_positive,
    "vader-positive": vader_positive,
    "vader-negative": vader_negative,
}


def load_reward(name: str) -> Reward:
    """A built-in reward by name, or `package.module:function`."""
    if name in BUILTIN:
        return BUILTIN[name]
    if ":" not in name:
        raise ValueError(f"unknown reward {name!r}; built in: {', '.join(BUILTIN)}; or module:function")
    module, func = name.split(":", 1)
    try:
        fn = getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot load reward {name!r}: {exc}") from exc
    if not callable(fn):
        raise ValueError(f"reward {name!r} is not callable")
    return fn
