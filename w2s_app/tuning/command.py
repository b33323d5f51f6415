"""The `tune-guide` command: build preference pairs from one source, train a DPO LoRA adapter."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..backends.local import load_model, pick_device
from ..backends.precision import training_precision
from ..backends.roles import Role, RoleSpec
from .dpo import TuneConfig, train_dpo
from .preference_pairs import Pair, from_jsonl, from_scored, from_votes
from .rewards import load_reward
from .sampling import sample_answers


def read_prompts(path: Path) -> list[str]:
    """One prompt per line (blank lines skipped)."""
    if not Path(path).is_file():
        raise ValueError(f"prompts file {path} does not exist")
    prompts = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    if not prompts:
        raise ValueError(f"prompts file {path} has no prompts")
    return prompts


def build_pairs(args: Any, role: Role, store_factory: Any) -> tuple[list[Pair], dict[str, Any]]:
    """Pairs from exactly one source: --reward with --prompts, --preferences, or --from-votes."""
    chosen = [bool(args.reward), bool(args.preferences), bool(args.from_votes)]
    if sum(chosen) != 1:
        raise ValueError(
            "give exactly one data source: --reward (with --prompts), --preferences or --from-votes"
        )
    if args.preferences:
        return from_jsonl(args.preferences), {"source": "preferences", "file": str(args.preferences)}
    if args.from_votes:
        store = store_factory()
        frames = store.frame("votes"), store.frame("generations"), store.frame("comparisons")
        return from_votes(*frames, preset=args.preset), {"source": "votes", "preset": args.preset}
    if not args.prompts:
        raise ValueError("--reward needs --prompts FILE")
    reward = load_reward(args.reward)
    prompts = read_prompts(args.prompts)
    sampler = role
    if args.sample_from and args.sample_from != args.base:
        sampler = Role(
            RoleSpec(args.sample_from, args.template), load_model(args.sample_from, device=args.device)
        )
    start = time.perf_counter()
    samples = sample_answers(sampler, prompts, args.samples, args.max_tokens, args.seed, tuple(args.stop))
    scores = {p: [float(reward(p, a.text)) for a in answers] for p, answers in samples.items()}
    meta = {
        "source": "reward",
        "reward": args.reward,
        "prompts_file": str(args.prompts),
        "samples": args.samples,
        "sampled_from": args.sample_from or args.base,
        "stop": list(args.stop),
        "sampling_seconds": round(time.perf_counter() - start, 2),
    }
    return from_scored(samples, scores), meta


def tune_guide(args: Any, store_factory: Any) -> dict[str, Any]:
    """Load the base, build pairs, train, save; returns the summary."""
    device = pick_device(args.device)
    loaded = load_model(args.base, device=device, dtype=training_precision(device))
    role = Role(RoleSpec(args.base, args.template, eos=args.eos), loaded)
    pairs, meta = build_pairs(args, role, store_factory)
    cfg = TuneConfig(beta=args.beta, lr=args.lr, epochs=args.epochs, batch_size=args.batch_size,
                     max_tokens=args.max_tokens, seed=args.seed, rank=args.rank, alpha=2 * args.rank,
                     layers=args.lora_layers)  # fmt: skip
    meta = {**meta, "base": args.base, "template": args.template}
    return train_dpo(role, pairs, cfg, Path(args.out), meta)
