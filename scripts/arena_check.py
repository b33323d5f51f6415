"""How much a preset's comparisons are worth a vote: distinct answers, a search that searches.

For each prompt x seed, runs baseline + bon + w2s as the app does and reports: answer length
(strong tokens), chunks per w2s answer (search steps), how often two methods wrote the same text
(whitespace-normalised, per method pair), whether bon's pick was its shortest candidate and the
within-prompt rank correlation of candidate length and score, and seconds per comparison.

    python scripts/arena_check.py --preset offline --seeds 4                   # the preset as shipped
    python scripts/arena_check.py --preset offline --seeds 4 --l 30 --noise shared --score-eos on  # the old defaults
    python scripts/arena_check.py --preset offline --seeds 1 --prompt-file my_prompts.txt --rows rows.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from itertools import combinations
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scipy import stats

from w2s_app.config import Settings
from w2s_app.prompt_pool import examples_for, load_pool
from w2s_app.runner import CompareRequest
from w2s_app.twins import normalize
from w2s_app.wiring import build_runner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="offline")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--first-seed", type=int, default=0, help="resume a run: start at this seed")
    parser.add_argument("--prompts", type=int, default=8, help="the preset's first N examples")
    parser.add_argument(
        "--prompt-file", type=Path, help="prompts from this file (one a line) instead of the examples"
    )
    parser.add_argument("--engine", default="fast")
    parser.add_argument("--l", type=int)
    parser.add_argument("--noise", choices=("independent", "shared"))
    parser.add_argument("--score-eos", choices=("on", "off"), help="override the guides' EOS term")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--rows", type=Path, help="also append each comparison as a JSON line here")
    parser.add_argument("--summarize", type=Path, help="only summarize the rows of an earlier --rows file")
    args = parser.parse_args()
    if args.summarize:
        rows = [json.loads(line) for line in args.summarize.read_text().splitlines() if line.strip()]
        print(json.dumps(summarize(rows, args.preset, {}), indent=1))
        return

    settings = replace(Settings.from_env(), engine=args.engine)
    runner = build_runner(settings)
    preset = runner.preset(args.preset)
    if args.score_eos:
        on = args.score_eos == "on"
        preset = replace(
            preset,
            tuned=replace(preset.tuned, score_eos=on),
            untuned=replace(preset.untuned, score_eos=on),
        )
        runner.preset = lambda name, p=preset: p  # type: ignore[method-assign]
    given = {"l": args.l, "noise": args.noise}
    rows = []
    prompts = load_pool(args.prompt_file) if args.prompt_file else examples_for(preset, args.prompts)
    # Seeds outermost: a run cut short still covers every prompt.
    for seed in range(args.first_seed, args.seeds):
        for prompt in prompts:
            start = time.perf_counter()
            request = CompareRequest(prompt, args.preset, ["baseline", "bon", "w2s"], {**given, "seed": seed})
            comp = runner.compare(request)
            seconds = time.perf_counter() - start
            by = {r.method: r for r in comp.results}
            bon = by["bon"].trace[0] if by["bon"].trace else None
            lengths = [len(c.split()) for c in bon.chunks] if bon else []
            rows.append(
                {
                    "prompt": prompt,
                    "seed": seed,
                    "seconds": seconds,
                    "tokens": {m: r.counts.strong_tokens for m, r in by.items()},
                    "chunks": len(by["w2s"].trace),
                    "texts": {m: r.text for m, r in by.items()},
                    "bon_picked_shortest": bool(bon) and lengths[bon.kept[0]] == min(lengths),
                    "length_score_rho": (
                        float(stats.spearmanr(lengths, bon.scores).statistic)
                        if bon and len(set(lengths)) > 1 and len(set(bon.scores)) > 1
                        else None
                    ),
                }
            )
            print(
                f"{prompt[:40]!r} seed {seed}: {seconds:.1f} s, chunks {rows[-1]['chunks']}", file=sys.stderr
            )
            if args.rows:
                with args.rows.open("a") as fh:
                    fh.write(json.dumps(rows[-1]) + "\n")
    settings = {k: v for k, v in {**given, "score_eos": args.score_eos}.items() if v is not None}
    summary = summarize(rows, args.preset, settings)
    print(json.dumps(summary if not args.json else {"summary": summary, "rows": rows}, indent=1))


def summarize(rows: list[dict], preset: str, settings: dict) -> dict:
    """The table's figures from per-comparison rows."""
    same = {
        f"{a}={b}": sum(normalize(r["texts"][a]) == normalize(r["texts"][b]) for r in rows) / len(rows)
        for a, b in combinations(["baseline", "bon", "w2s"], 2)
    }
    rhos = [r["length_score_rho"] for r in rows if r["length_score_rho"] is not None]
    return {
        "preset": preset,
        "settings": settings,
        "comparisons": len(rows),
        "median_tokens": {
            m: statistics.median(r["tokens"][m] for r in rows) for m in ("baseline", "bon", "w2s")
        },
        "median_chunks": statistics.median(r["chunks"] for r in rows),
        "identical_rate": same,
        "bon_picked_shortest": sum(r["bon_picked_shortest"] for r in rows) / len(rows),
        "mean_length_score_rho": round(statistics.mean(rhos), 2) if rhos else None,
        "median_seconds": round(statistics.median(r["seconds"] for r in rows), 1),
    }


if __name__ == "__main__":
    main()
