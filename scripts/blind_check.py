"""Blind reading of arena_check rows: shuffled answer triples, a key kept apart, then unblinding.

1. `make`: each row's baseline / bon / w2s answers become A / B / C in a random order; the items of
   every setting are shuffled together. Items (prompt and answers, no method or setting) go to one
   file, the key (item -> setting and letter -> method) to another, which the reader must not open.
2. The reader writes one ranking per item to a JSON file, best first: {"q001": "B>A=C", ...}
   (`=` for answers of equal quality; answers with the same text must be ranked equal).
3. `unblind`: applies the key; per setting, how often each method was ranked best (alone or tied)
   and, per method pair, wins and losses, with 95% Wilson intervals.

    python scripts/blind_check.py make --rows before=rows_before.jsonl --rows after=rows_after.jsonl \\
        --items items.json --key private/key.json   # and items.md, to read
    python scripts/blind_check.py unblind --key private/key.json --rankings rankings.json --items items.json
(several batches: `make --prefix` per batch, then `unblind` with each --key, --rankings, --items)
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from itertools import combinations
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from w2s_app.twins import normalize, twin_groups

METHODS = ("baseline", "bon", "w2s")
LETTERS = "ABC"


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (0, 1 when n is 0)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def parse_ranking(text: str) -> list[set[str]]:
    """'B>A=C' -> [{'B'}, {'A', 'C'}]: groups of letters, best first; every letter exactly once."""
    groups = [set(part.split("=")) for part in text.replace(" ", "").upper().split(">")]
    letters = [x for g in groups for x in g]
    if sorted(letters) != list(LETTERS):
        raise ValueError(f"ranking {text!r} must name A, B and C once each")
    return groups


def make(rows: list[tuple[str, Path]], items_path: Path, key_path: Path, seed: int, prefix: str = "q") -> int:
    """Write the shuffled items (JSON, and markdown beside it to read) and the key; returns the count."""
    rng = random.Random(seed)
    entries = []
    for setting, path in rows:
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                methods = list(METHODS)
                rng.shuffle(methods)
                answers = {x: row["texts"][m].strip() for x, m in zip(LETTERS, methods, strict=True)}
                entries.append(
                    (setting, row["prompt"], row["seed"], dict(zip(LETTERS, methods, strict=True)), answers)
                )
    rng.shuffle(entries)
    key, items, parts = {}, {}, []
    for i, (setting, prompt, seed, mapping, answers) in enumerate(entries, 1):
        item = f"{prefix}{i:03d}"
        key[item] = {"setting": setting, "prompt": prompt, "seed": seed, "map": mapping}
        items[item] = {"prompt": prompt, "answers": answers}
        parts.append(f"## {item}\n\n**Prompt:** {prompt}\n")
        for group in twin_groups(answers.items()):
            parts.append(f"*Same text: {' and '.join(group)}.*\n")
        for x in LETTERS:
            parts.append(f"### {x}\n\n{answers[x] or '(empty)'}\n")
    items_path.write_text(json.dumps(items, indent=1, ensure_ascii=False))
    items_path.with_suffix(".md").write_text("\n".join(parts))
    key_path.parent.mkdir(parents=True, exist_ok=True)
    key_path.write_text(json.dumps(key, indent=1))
    return len(entries)


def unblind(key: dict, rankings: dict[str, str], texts: dict[str, dict[str, str]] | None = None) -> dict:
    """Per setting: best counts and pairwise wins, each with a 95% Wilson interval."""
    missing = sorted(set(key) - set(rankings))
    if missing:
        raise ValueError(f"no ranking for {len(missing)} items, e.g. {missing[:3]}")
    out: dict[str, dict] = {}
    for item, entry in key.items():
        groups = parse_ranking(rankings[item])
        rank = {entry["map"][x]: r for r, g in enumerate(groups) for x in g}
        if texts is not None:
            for twins in twin_groups(texts[item].items()):
                if len({rank[entry["map"][x]] for x in twins}) > 1:
                    raise ValueError(f"{item}: answers {twins} have the same text but different ranks")
        s = out.setdefault(
            entry["setting"],
            {
                "n": 0,
                "best": dict.fromkeys(METHODS, 0),
                "sole_best": dict.fromkeys(METHODS, 0),
                "all_equal": 0,
            },
        )
        s["n"] += 1
        top = [m for m in METHODS if rank[m] == 0]
        s["all_equal"] += len(top) == 3
        for m in top:
            s["best"][m] += 1
        if len(top) == 1:
            s["sole_best"][top[0]] += 1
        for a, b in combinations(("w2s", "bon", "baseline"), 2):
            pair = s.setdefault(f"{a} vs {b}", {"wins": 0, "losses": 0, "ties": 0})
            pair["wins" if rank[a] < rank[b] else "losses" if rank[a] > rank[b] else "ties"] += 1
    for s in out.values():
        n = s["n"]
        s["best_interval"] = {m: [round(v, 3) for v in wilson(c, n)] for m, c in s["best"].items()}
        for name, pair in s.items():
            if " vs " in name:
                decided = pair["wins"] + pair["losses"]
                pair["win_rate_of_decided"] = round(pair["wins"] / decided, 3) if decided else None
                pair["interval"] = [round(v, 3) for v in wilson(pair["wins"], decided)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    mk = sub.add_parser("make", help="shuffled items and a separate key")
    mk.add_argument("--rows", action="append", required=True, help="SETTING=path of arena_check --rows")
    mk.add_argument("--items", type=Path, required=True)
    mk.add_argument("--key", type=Path, required=True)
    mk.add_argument("--seed", type=int, default=None, help="shuffle seed (default: fresh randomness)")
    mk.add_argument("--prefix", default="q", help="item ids start with this (one per batch)")
    un = sub.add_parser("unblind", help="apply the key to the rankings")
    un.add_argument("--key", type=Path, action="append", required=True, help="one per batch")
    un.add_argument("--rankings", type=Path, action="append", required=True, help="one per batch")
    un.add_argument(
        "--items", type=Path, action="append", help="the items JSON: check that same-text answers rank equal"
    )
    args = parser.parse_args()
    if args.command == "make":
        rows = []
        for spec in args.rows:
            setting, sep, path = spec.partition("=")
            if not sep:
                parser.error(f"--rows {spec!r}: expected SETTING=path")
            rows.append((setting, Path(path)))
        seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
        print(f"{make(rows, args.items, args.key, seed, args.prefix)} items written to {args.items}")
        return
    key = {k: v for path in args.key for k, v in json.loads(path.read_text()).items()}
    rankings = {k: v for path in args.rankings for k, v in json.loads(path.read_text()).items()}
    texts = None
    if args.items:
        items = {k: v for path in args.items for k, v in json.loads(path.read_text()).items()}
        texts = {item: {x: normalize(t) for x, t in v["answers"].items()} for item, v in items.items()}
    try:
        print(json.dumps(unblind(key, rankings, texts), indent=1))
    except ValueError as exc:
        parser.exit(2, f"error: {exc}\n")


if __name__ == "__main__":
    main()
