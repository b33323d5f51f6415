"""Does a preset's guide pair rank the strong model's continuations the way its gold reward does?

Measured before any search (issue 32: a pair that does not rank the reward's way cannot steer). For
each held-out opening (`assets/prompts/reviews_eval.txt`, the file `evaluate` is run on; never the
training file or the preset's prompt pool), one best-of-N comparison (method `bon`, N = --candidates,
the preset's other defaults, the seed --seed) through the project's own runner and engines draws the
candidates from the strong model and scores each with the guide pair exactly as the search does; the
bon trace keeps every candidate's text and score. Each candidate then gets the preset's gold reward
(`reward = ...` in presets.toml, or --reward).

Figures (benchmarks/rank_stats.py): the Spearman rank correlation between the pair's score and the
reward within each opening, averaged over the openings whose rewards are not all equal, with a 95%
percentile bootstrap interval over openings (fixed seed); the pooled correlation over every
candidate; the share of openings where the pair's pick (bon's winner) has a reward above the
candidates' median. Printed as a markdown table row with the command and the CPU.

    python -m benchmarks.pair_reward_rank --preset sentiment-negative --openings 32 --candidates 8 --seed 0
    python -m benchmarks.pair_reward_rank --preset sentiment-positive --json pair_rank_positive.json

Nothing is stored (a runner without a store). W2S_ENGINE, W2S_THREADS and the other settings apply
as for `evaluate`.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the benchmark never downloads anything
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.rank_stats import summarise

REPO = Path(__file__).resolve().parents[1]
HELD_OUT = REPO / "assets" / "prompts" / "reviews_eval.txt"
TRAINING = REPO / "assets" / "prompts" / "reviews_train.txt"
HEADER = (
    "| preset | reward | openings (ranked) | candidates | within-opening Spearman (95% CI) | pooled Spearman "
    "| pick above median | wall s | command | CPU |\n|---|---|---|---|---|---|---|---|---|---|"
)


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo ('?' where there is none)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "?"
    return next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "?")


def held_out(path: Path, count: int, preset: Any) -> list[str]:
    """The first `count` openings of the held-out file; none may be a training or prompt-pool opening."""
    from w2s_app.prompt_pool import pool_for
    from w2s_app.tuning.command import read_prompts

    openings = read_prompts(path)
    if count > len(openings):
        raise SystemExit(f"--openings {count}: {path} has only {len(openings)}")
    chosen = openings[:count]
    seen = set(pool_for(preset)) | (set(read_prompts(TRAINING)) if TRAINING.is_file() else set())
    leaked = [p for p in chosen if p in seen]
    if leaked:
        raise SystemExit(
            f"{len(leaked)} openings of {path} are training or pool openings, e.g. {leaked[0]!r}"
        )
    return chosen


def candidates(runner: Any, preset: str, opening: str, n: int, seed: int) -> dict[str, Any]:
    """One bon comparison: every candidate's text, guide score and whether it ended, from the trace."""
    from w2s_app.runner import CompareRequest

    comp = runner.compare(CompareRequest(opening, preset, ["bon"], {"n": n, "seed": seed}))
    result = comp.results[0]
    if not result.ok:
        raise RuntimeError(f"bon failed on {opening!r}: {result.error}")
    (step,) = result.trace  # bon records one step: all N candidates, each from the prompt
    if len(step.chunks) != n:
        raise RuntimeError(f"{len(step.chunks)} of {n} candidates came back for {opening!r}")
    pick = step.kept[0]
    if result.score != step.scores[pick]:  # the trace must be what bon chose from, or nothing here holds
        raise RuntimeError(f"bon's score {result.score} is not its pick's {step.scores[pick]} in the trace")
    return {
        "opening": opening,
        "texts": list(step.chunks),
        "scores": [float(s) for s in step.scores],
        "finished": list(step.finished),
        "pick": pick,
        "seconds": round(comp.seconds, 3),
        "load_seconds": round(comp.load_seconds, 3),
        "models": comp.models,
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Draw, score and reward the candidates of every opening; the figures and the raw rows."""
    from w2s_app.config import Settings
    from w2s_app.tuning.rewards import load_reward
    from w2s_app.wiring import build_runner

    start = time.perf_counter()
    runner = build_runner(Settings.from_env())  # no store: nothing this measures is kept
    preset = runner.preset(args.preset)
    reward_name = args.reward or preset.reward
    if not reward_name:
        raise SystemExit(f"preset {preset.name!r} declares no reward; name one with --reward")
    reward = load_reward(reward_name)
    openings = held_out(args.prompts, args.openings, preset)
    rows = []
    for i, opening in enumerate(openings, 1):
        row = candidates(runner, preset.name, opening, args.candidates, args.seed)
        row["rewards"] = [float(reward(opening, t)) for t in row["texts"]]
        rows.append(row)
        print(f"[{i}/{len(openings)}] {row['seconds']:.1f} s  {opening[:50]!r}", file=sys.stderr)
    figures = summarise([(r["scores"], r["rewards"]) for r in rows], reps=args.reps, seed=args.boot_seed)
    return {
        "preset": preset.name,
        "reward": reward_name,
        **figures,
        "seed": args.seed,
        "prompts": str(args.prompts),
        "wall_seconds": round(time.perf_counter() - start, 1),
        "load_seconds": rows[0]["load_seconds"],
        "models": rows[0]["models"],
        "cpu": cpu_name(),
        "engine": os.environ.get("W2S_ENGINE", "auto"),
        "threads": os.environ.get("W2S_THREADS"),
        "command": args.command,
        "rows": rows,
    }


def fmt(x: float | None) -> str:
    """A figure to 3 decimals, a dash where undefined."""
    return "–" if x is None else f"{x:+.3f}"


def table_row(out: dict[str, Any]) -> str:
    """One markdown table row of the figures (columns as HEADER)."""
    ci = f"{fmt(out['spearman_mean'])} ({fmt(out['spearman_lo'])} – {fmt(out['spearman_hi'])})"
    cells = [
        out["preset"], out["reward"], f"{out['openings']} ({out['openings_ranked']})", out["candidates"], ci,
        fmt(out["spearman_pooled"]), f"{out['top_above_median']:.2f}", out["wall_seconds"],
        f"`{out['command']}`", out["cpu"],
    ]  # fmt: skip
    return "| " + " | ".join(str(c) for c in cells) + " |"


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", required=True, help="a preset with a guide pair and a gold reward")
    p.add_argument("--openings", type=int, default=32, help="the first N held-out openings")
    p.add_argument("--candidates", type=int, default=8, help="continuations per opening (bon's N)")
    p.add_argument("--seed", type=int, default=0, help="the comparisons' seed (noise keyed per opening)")
    p.add_argument("--reward", default=None, help="default: the preset's `reward`")
    p.add_argument("--prompts", type=Path, default=HELD_OUT, help="held-out openings, one a line")
    p.add_argument("--reps", type=int, default=2000, help="bootstrap resamples")
    p.add_argument("--boot-seed", type=int, default=0, help="the bootstrap's seed")
    p.add_argument("--json", type=Path, default=None, help="also write the figures and every candidate here")
    args = p.parse_args(argv)
    if args.openings < 1 or args.candidates < 2:
        p.error("--openings must be at least 1 and --candidates at least 2")
    given = sys.argv[1:] if argv is None else argv
    args.command = shlex.join(["python", "-m", "benchmarks.pair_reward_rank", *given])
    return args


def main(argv: list[str] | None = None) -> int:
    """Measure one preset's pair and print its table row (and write --json)."""
    args = parse(argv)
    out = measure(args)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, ensure_ascii=False))
    summary = {k: v for k, v in out.items() if k != "rows"}
    print(json.dumps(summary))
    print(HEADER)
    print(table_row(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
