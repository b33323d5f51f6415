"""The Gradio page mounted next to the API (`serve --with-app`): one runner, one model queue for both."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from ..runner import RequestError
from .queue import ModelQueue, QueueFull
from .services import ApiServices


class QueuedRunner:
    """The runner as the page sees it: each comparison takes its turn in the service's model queue."""

    def __init__(self, runner: Any, queue: ModelQueue) -> None:
        self._runner = runner
        self._queue = queue

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runner, name)

    def compare(self, *args: Any, **kwargs: Any) -> Any:
        """Runner.compare once a place in the shared queue is free; a full queue is a user error."""
        try:
            ticket = self._queue.join()
        except QueueFull as exc:
            raise RequestError(str(exc)) from exc
        return self._queue.run(ticket, lambda: False, lambda: self._runner.compare(*args, **kwargs))


def mount_app(api: FastAPI, services: ApiServices) -> FastAPI:
    """Mount the Gradio page at / on the API's app, sharing its runner, store and model queue."""
    import gradio as gr

    from ..ui import Services, build_app
    from ..ui.layout import launch_kwargs

    runner = QueuedRunner(services.runner, services.queue)
    ui = Services.around(services.settings, services.runner.store, runner)
    demo = build_app(ui)
    demo.queue(max_size=services.settings.max_queue, default_concurrency_limit=1)
    return gr.mount_gradio_app(api, demo, path="/", show_error=False, **launch_kwargs())
