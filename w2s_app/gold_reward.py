"""Gold rewards per answer, off the request path: after a comparison is stored, a background worker
scores its finished answers with the preset's reward and stores them (store/rewards.py).

The reveal never waits for it, and a reward that fails (an import error, an exception, a value that is
not a finite number) is logged in one line and leaves everything else as it was: the comparison, its
votes and the boards do not depend on rewards.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
from collections.abc import Callable
from typing import Any

from .tuning.rewards import load_reward

log = logging.getLogger(__name__)
MAX_WAITING = 1000  # comparisons queued for rewards; past it new ones are skipped (and logged)


class GoldRewards:
    """One worker thread that rewards stored comparisons in the order they were stored."""

    def __init__(self, store: Any, load: Callable[[str], Callable[[str, str], float]] = load_reward) -> None:
        self.store = store
        self._load = load
        self._loaded: dict[str, Callable[[str, str], float]] = {}
        self._queue: queue.Queue[tuple[int, str] | None] = queue.Queue(MAX_WAITING)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.done = 0  # comparisons rewarded (tests and the soak read it)
        self.failed = 0

    def __call__(self, comparison_id: int, preset: Any) -> None:
        """The runner's after-stored hook: queue the comparison for its preset's reward."""
        self.submit(comparison_id, getattr(preset, "reward", None))

    def submit(self, comparison_id: int, reward: str | None) -> None:
        """Queue a stored comparison for its preset's reward (None: the preset declares none)."""
        if not reward or comparison_id is None:
            return
        try:
            self._queue.put_nowait((comparison_id, reward))
        except queue.Full:
            log.warning("gold reward skipped for comparison %s: %d comparisons already wait", comparison_id,
                        MAX_WAITING)  # fmt: skip
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="w2s-gold-reward", daemon=True)
                self._thread.start()

    def wait(self, timeout: float = 30.0) -> bool:
        """Block until every queued comparison is rewarded (tests, the CLI before it exits)."""
        done = threading.Event()
        waiter = threading.Thread(target=lambda: (self._queue.join(), done.set()), daemon=True)
        waiter.start()
        return done.wait(timeout)

    def _work(self) -> None:
        while True:
            try:
                comparison_id, reward = self._queue.get(timeout=5.0)
            except queue.Empty:
                return  # idle: the next submit starts a new worker
            try:
                self._reward(comparison_id, reward)
                self.done += 1
            except Exception as exc:  # a reward must never break anything else
                self.failed += 1
                log.warning("gold reward %s failed on comparison %s: %s: %s", reward, comparison_id,
                            type(exc).__name__, exc)  # fmt: skip
            finally:
                self._queue.task_done()

    def _reward(self, comparison_id: int, reward: str) -> None:
        fn = self._loaded.get(reward)
        if fn is None:
            fn = self._loaded[reward] = self._load(reward)
        prompt, answers = self.store.answers_to_reward(comparison_id)
        values = {}
        for gid, text in answers:
            value = float(fn(prompt, text))
            if not math.isfinite(value):
                raise ValueError(f"the reward gave {value} for answer {gid}")
            values[gid] = value
        self.store.record_rewards(reward, values)
