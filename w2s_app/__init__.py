"""w2s-arena: compare baseline, best-of-N and weak-to-strong search side by side, and vote."""

__version__ = "0.1.0"
