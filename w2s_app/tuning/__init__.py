"""Tune a small guide pair offline: preference pairs from a reward, a file or the app's votes, then DPO."""
