"""The About tab's text: what the methods do, and what the shipped presets can and cannot show."""

ABOUT = """
## What you are comparing

One prompt goes to a large **strong** model through several decoding methods; you see the answers
side by side without knowing which method wrote which, and vote for the best.

- **baseline**: one plain sample from the strong model.
- **best-of-N (bon)**: N samples; a small *guide pair* (a tuned small model and its untuned twin)
  scores each, and the answer the tuned model likes most, relative to the untuned one, wins.
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

STEERING_PLACEHOLDER
"""
