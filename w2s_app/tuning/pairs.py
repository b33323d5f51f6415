"""Preference pairs (prompt, chosen, rejected) from a JSONL file, the app's votes, or a reward."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class Pair:
    """One preference: `chosen` is preferred over `rejected` as an answer to `prompt`."""

    prompt: str
    chosen: str
    rejected: str


def from_jsonl(path: Path) -> list[Pair]:
    """Pairs from a JSONL file with prompt, chosen, rejected."""
    pairs = []
    for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            pairs.append(Pair(str(row["prompt"]), str(row["chosen"]), str(row["rejected"])))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}, line {i}: needs JSON with prompt, chosen, rejected ({exc})") from exc
    return pairs


def from_votes(votes: pd.DataFrame, generations: pd.DataFrame, comparisons: pd.DataFrame,
               preset: str | None = None) -> list[Pair]:  # fmt: skip
    """The chosen answer over each other finished answer of its comparison; ties and all_bad skipped."""
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
        if v.generation_id not in texts:
            continue
        prompt = str(comps.loc[v.comparison_id, "prompt"])
        for gid, text in texts.items():
            if gid != v.generation_id and text != texts[v.generation_id]:
                pairs.append(Pair(prompt, texts[v.generation_id], text))
    return pairs


def from_scored(samples: dict[str, list[str]], scores: dict[str, list[float]]) -> list[Pair]:
    """For each prompt, the best-scored sample over the worst (skipped when they tie)."""
    pairs = []
    for prompt, texts in samples.items():
        s = scores[prompt]
        best = max(range(len(texts)), key=lambda i: (s[i], -i))
        worst = min(range(len(texts)), key=lambda i: (s[i], i))
        if s[best] > s[worst] and texts[best] != texts[worst]:
            pairs.append(Pair(prompt, texts[best], texts[worst]))
    return pairs


def describe(pairs: list[Pair]) -> dict[str, Any]:
    """Counts for the summary."""
    return {"pairs": len(pairs), "prompts": len({p.prompt for p in pairs})}
