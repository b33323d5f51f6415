"""The About tab: what the methods do, what the shipped presets can and cannot show, every preset's models."""

from __future__ import annotations

import gradio as gr

from .page import Page

ABOUT = """
## What you are comparing

One prompt goes to a large **strong** model through several decoding methods; you see the answers
side by side without knowing which method wrote which, and vote for the best.

- **baseline**: one plain sample from the strong model.
- **best-of-N (bon)**: N samples; a small *guide pair* (a small tuned model and a small untuned one:
  the tuned and the untuned guide) scores each, and the answer the tuned model likes most, relative to
  the untuned one, wins.
- **weak-to-strong search (w2s)**: the same score steers the strong model while it writes: it
  writes W×K pieces of L tokens, keeps the W best-scored, continues each K ways, until done.
- **eft** (optional): mixes the guides' logits into the strong model's token by token (needs one shared vocabulary).

The score of an answer *y* to prompt *x* is log G+(y|x) − log G−(y|x): how much more likely the
tuned guide finds it than the untuned one. Reference: Zhou et al., *Weak-to-Strong Search: Align
Large Language Models via Searching over Small Language Models*, NeurIPS 2024,
[arXiv:2405.19262](https://arxiv.org/abs/2405.19262).
"""

STEERING = """
## What the shipped presets can and cannot show

**Where steering works: the sentiment presets** (the app opens on `sentiment-positive`). The guide
pair is SmolLM2-135M with a LoRA adapter trained on the target sentiment, on and off. On 32
held-out review openings (2 seeds each, `evaluate`), weak-to-strong search moved the mean VADER
sentiment of Gemma-3-270M's continuations from 0.234 (baseline) to 0.415 toward positive, and from
-0.221 to -0.032 toward negative (paired differences +0.18 and +0.19, 95% intervals above zero);
best-of-4 gained about as much (0.426 and -0.051): on 64 answers the search beats the baseline,
not best-of-N. Try a review opening from the examples and see which column reads most positive.

**Where it is weak: instructions on a 270M base model** (`offline`). Gemma-3-270M base writes
weak answers to instructions, and this guide pair is one small chat model under two templates
(chat vs plain text), not a tuned/untuned pair: its score measures what the chat template expects
more than answer quality. With the paper's end-of-answer term it rewarded stopping (best-of-4
picked its shortest candidate in 19 of 32 comparisons on the shipped examples); without it
(`score_eos = false`, now the preset's setting) in 11 of 32. In a blind reading of 44
held-out instructions (answers shuffled, ranked by one language-model reader without method names,
then unblinded), the search's answer beat the baseline's in 27 of 38 decided comparisons (71%, 95%
interval 55-83%) and best-of-4's in 24 of 37 (65%, 49-78%) with the current settings; every
answer is weak, so that is "less bad" more often. Read `offline` as a
demonstration of the mechanics (the search, its trace, the vote) more than of better answers. Its
settings (W,K,L = 2,2,8) let the search take several steps, and with independent noise no method
writes another's answer (see docs/using.md, "What the offline default can and cannot show").
"""


def build_about(page: Page) -> None:
    """The tab's text and the presets' models."""
    with gr.Tab("About"):
        gr.Markdown(ABOUT)
        gr.Markdown(STEERING)
        lines = [f"- **{p.name}**: {p.description} ({p.models_summary()})" for p in page.presets.values()]
        gr.Markdown("## Presets\n" + "\n".join(lines))
