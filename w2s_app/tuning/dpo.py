"""Direct preference optimisation of a LoRA adapter, written plainly for speed on a CPU.

Policy = base model + LoRA adapter (trained); reference = the same weights with the adapter
disabled, run without gradients. Loss per pair: -log sigmoid(beta * ((log pi(c) - log ref(c)) -
(log pi(r) - log ref(r)))), with log-probabilities summed over the answer's tokens, plus its EOS where the answer finished.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from ..backends.roles import Role
from .preference_pairs import Pair


@dataclass(frozen=True)
class TuneConfig:
    """Training settings."""

    beta: float = 0.1
    lr: float = 5e-4
    epochs: int = 1
    batch_size: int = 8
    max_tokens: int = 64
    rank: int = 8
    alpha: int = 16
    seed: int = 0
    layers: str = "attention"  # or "all-linear": the MLPs too


def _target_modules(model: Any, layers: str = "attention") -> list[str] | str:
    """Attention projections where the architecture names them so (or asked for all); else every linear layer."""
    if layers == "all-linear":
        return "all-linear"
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    wanted = [m for m in ("q_proj", "k_proj", "v_proj", "o_proj") if m in names]
    return wanted or "all-linear"


def _batch(role: Role, pairs: list[Pair], which: str, max_tokens: int) -> tuple[torch.Tensor, ...]:
    """Right-padded ids, attention mask and answer-token mask for the chosen or rejected side."""
    rows, spans = [], []
    for p in pairs:
        prompt = role.prompt_ids(p.prompt)
        ids = role.response_ids(getattr(p, which))
        # The end-of-answer token is scored only for an answer that really ended there, as in search.
        finished = getattr(p, f"{which}_finished") and len(ids) <= max_tokens
        answer = ids[:max_tokens] + ([role.eos_id] if finished else [])
        rows.append(prompt + answer)
        spans.append((len(prompt), len(prompt) + len(answer)))
    width = max(len(r) for r in rows)
    pad = role.tokenizer.pad_token_id if role.tokenizer.pad_token_id is not None else 0
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    attn = torch.zeros_like(ids)
    answer_mask = torch.zeros_like(ids, dtype=torch.float32)
    for i, (r, (a, b)) in enumerate(zip(rows, spans, strict=True)):
        ids[i, : len(r)] = torch.tensor(r)
        attn[i, : len(r)] = 1
        answer_mask[i, a:b] = 1.0
    return ids, attn, answer_mask


def _logprobs(model: Any, ids: torch.Tensor, attn: torch.Tensor, answer_mask: torch.Tensor) -> torch.Tensor:
    """Summed log-probability of each row's answer tokens."""
    logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1].float()
    logp = torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    return (logp * answer_mask[:, 1:]).sum(-1)


def train_dpo(
    role: Role, pairs: list[Pair], cfg: TuneConfig, out_dir: Path, meta: dict[str, Any]
) -> dict[str, Any]:
    """Train a LoRA adapter on the pairs and save it with a metadata.json; returns the summary."""
    from peft import LoraConfig, get_peft_model
    from tqdm import tqdm

    if not pairs:
        raise ValueError("no preference pairs to train on")
    torch.manual_seed(cfg.seed)
    base = role.model
    lora = LoraConfig(
        r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=0.0, target_modules=_target_modules(base, cfg.layers)
    )
    policy = get_peft_model(base, lora)
    policy.train()
    opt = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=cfg.lr)
    device = role.loaded.device
    steps = cfg.epochs * math.ceil(len(pairs) / cfg.batch_size)
    start = time.perf_counter()
    losses, margins, accuracy = [], [], []
    gen = torch.Generator().manual_seed(cfg.seed)
    with tqdm(total=steps, desc="DPO", unit="step") as bar:
        for _ in range(cfg.epochs):
            order = torch.randperm(len(pairs), generator=gen).tolist()
            for s in range(0, len(order), cfg.batch_size):
                batch = [pairs[i] for i in order[s : s + cfg.batch_size]]
                chosen = [t.to(device) for t in _batch(role, batch, "chosen", cfg.max_tokens)]
                rejected = [t.to(device) for t in _batch(role, batch, "rejected", cfg.max_tokens)]
                with torch.no_grad(), policy.disable_adapter():
                    ref_c, ref_r = _logprobs(policy, *chosen), _logprobs(policy, *rejected)
                pi_c, pi_r = _logprobs(policy, *chosen), _logprobs(policy, *rejected)
                margin = cfg.beta * ((pi_c - ref_c) - (pi_r - ref_r))
                loss = -torch.nn.functional.logsigmoid(margin).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(float(loss))
                margins.append(float(margin.mean()))
                accuracy.append(float((margin > 0).float().mean()))
                bar.set_postfix(loss=f"{losses[-1]:.3f}", margin=f"{margins[-1]:.3f}")
                bar.update(1)
    policy.eval()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    policy.save_pretrained(str(out_dir))
    summary = {
        "pairs": len(pairs),
        "steps": steps,
        "first_loss": losses[0],
        "final_loss": losses[-1],
        "final_reward_margin": margins[-1],
        "final_accuracy": accuracy[-1],
        "seconds": round(time.perf_counter() - start, 2),
    }
    metadata = {
        **meta,
        **summary,
        "config": asdict(cfg),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (out_dir / "metadata.json").write_text(json.dumps(metadata, indent=2))
    # The pairs themselves, so a run can be inspected or repeated with --preferences.
    with (out_dir / "pairs.jsonl").open("w", encoding="utf-8") as f:
        for p in pairs:
            f.write(json.dumps(asdict(p), ensure_ascii=False) + "\n")
    # Leave the base model as it was for any other user of the same object.
    policy.unload()
    return summary
