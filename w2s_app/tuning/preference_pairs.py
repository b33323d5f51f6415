"""Preference pairs (prompt, chosen, rejected) from a JSONL file, the app's votes, or a reward."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..store.judgements import human_votes
from ..twins import normalize
from .sampling import Sample


@dataclass(frozen=True)
class Pair:
    """One preference: `chosen` is preferred over `rejected` as an answer to `prompt`."""

    prompt: str
    chosen: str
    rejected: str
    # False where the answer was cut at a token limit: training then scores no end-of-answer token.
    chosen_finished: bool = True
    rejected_finished: bool = True


def from_jsonl(path: Path) -> list[Pair]:
    """Pairs from a JSONL file with prompt, chosen, rejected."""
    pairs = []
    for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            pairs.append(Pair(str(row["prompt"]), str(row["chosen"]), str(row["rejected"]),
                              bool(row.get("chosen_finished", True)),
                              bool(row.get("rejected_finished", True))))  # fmt: skip
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}, line {i}: needs JSON with prompt, chosen, rejected ({exc})") from exc
    return pairs


def from_votes(votes: pd.DataFrame, generations: pd.DataFrame, comparisons: pd.DataFrame,
               preset: str | None = None) -> list[Pair]:  # fmt: skip
    """The chosen answer over each other finished answer of its comparison; ties and all_bad skipped.

    People's votes only: an automatic judge's picks (voter judge:<model>) are not training data here.
    """
    votes = human_votes(votes)
    votes = votes[(votes["choice"] == "generation") & votes["blind"].astype(bool)]
    comps = comparisons.set_index("id")
    if preset:
        votes = votes[votes["comparison_id"].map(comps["preset"]) == preset]
    done = generations[generations["status"] == "done"]
    by_comp = {cid: g for cid, g in done.groupby("comparison_id")}
    pairs = []
    for v in votes.itertuples():
        gens = by_comp.get(v.comparison_id)
        if gens is None:
            continue
        texts = dict(zip(gens["id"], gens["text"], strict=True))
        ended = dict(zip(gens["id"], gens["eos"].astype(bool), strict=True))
        if v.generation_id not in texts:
            continue
        prompt = str(comps.loc[v.comparison_id, "prompt"])
        won = v.generation_id
        for gid, text in texts.items():
            if gid != won and normalize(text) != normalize(texts[won]):  # a twin is not a rejected answer
                pairs.append(Pair(prompt, texts[won], text, bool(ended[won]), bool(ended[gid])))
    return pairs


def from_scored(samples: dict[str, list[Sample]], scores: dict[str, list[float]]) -> list[Pair]:
    """Per prompt, each sample of the better-scored half over each of the worse half, where it scores higher.

    More than one pair per prompt gives DPO several contrasts for the same opening, which
    generalises better than best-over-worst alone (that one pair is easy to memorise).
    """
    pairs = []
    for prompt, answers in samples.items():
        s = scores[prompt]
        order = sorted(range(len(answers)), key=lambda i: (-s[i], i))
        half = len(order) // 2
        for i in order[:half]:
            for j in order[len(order) - half :]:
                a, b = answers[i], answers[j]
                if s[i] > s[j] and a.text != b.text:
                    pairs.append(Pair(prompt, a.text, b.text, a.finished, b.finished))
    return pairs


def describe(pairs: list[Pair]) -> dict[str, Any]:
    """Counts for the summary."""
    return {"pairs": len(pairs), "prompts": len({p.prompt for p in pairs})}
