"""Gradio's queue, awake while there is work and asleep when there is none (an idle app stays idle)."""

from __future__ import annotations

import time
from typing import Any

import gradio as gr
from gradio import queueing

IDLE_POLL_SECONDS = 0.5  # how often an idle Gradio queue looks for new work
BUSY_POLL_SECONDS = 0.001  # ... and a busy one (Gradio's own pace)
QUIET_SECONDS = 5.0  # no event for this long: idle


class _QuietQueue(queueing.Queue):
    """Gradio's queue, awake while there is work and asleep when there is none.

    Gradio looks for new events every 1 ms and for progress every 10 ms, traffic or not: 4% of a
    core with nobody there (measured). Here it keeps that pace while events come or run, and after
    QUIET_SECONDS without either looks every IDLE_POLL_SECONDS (the first event after a quiet spell
    waits that long at most, once).
    """

    _w2s_last = 0.0

    @property
    def sleep_when_free(self) -> float:
        """Gradio's wait between looks for new events."""
        return BUSY_POLL_SECONDS if self._busy() else IDLE_POLL_SECONDS

    @sleep_when_free.setter
    def sleep_when_free(self, _value: float) -> None:
        pass  # Gradio's own value is replaced by the property

    @property
    def progress_update_sleep_when_free(self) -> float:
        """Gradio's wait between looks for progress to send."""
        return 10 * BUSY_POLL_SECONDS if self._busy() else 2 * IDLE_POLL_SECONDS

    @progress_update_sleep_when_free.setter
    def progress_update_sleep_when_free(self, _value: float) -> None:
        pass

    def _busy(self) -> bool:
        """Events arrived lately, or some are waiting or running."""
        if time.monotonic() - self._w2s_last < QUIET_SECONDS:
            return True
        running = any(job is not None for job in getattr(self, "active_jobs", ()))
        if running or len(self):
            self._w2s_last = time.monotonic()
            return True
        return False

    async def push(self, *args: Any, **kwargs: Any) -> Any:
        """Gradio's push, noting that work came."""
        self._w2s_last = time.monotonic()
        return await super().push(*args, **kwargs)


def quiet_queue(demo: gr.Blocks) -> None:
    """Make the app's Gradio queue sleep while idle (_QuietQueue); a Gradio without one is left as is."""
    queue = getattr(demo, "_queue", None)
    if type(queue) is queueing.Queue:
        queue.__class__ = _QuietQueue
