"""Functions with a signature made at run time, for Gradio: it reads parameter names and type hints to
name API arguments and to inject the request and the Hugging Face profile, so settings declared in
options.py become named parameters without being written out again."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any


def with_signature(
    fn: Callable[..., Any], params: list[inspect.Parameter], doc: str = ""
) -> Callable[..., Any]:
    """`fn` called positionally, presented to Gradio with the given parameters (a generator stays one)."""
    if inspect.isgeneratorfunction(fn):

        def call(*args: Any, **kwargs: Any) -> Any:
            yield from fn(*args, **kwargs)

    else:

        def call(*args: Any, **kwargs: Any) -> Any:
            return fn(*args, **kwargs)

    returns = inspect.signature(fn).return_annotation
    call.__signature__ = inspect.Signature(params, return_annotation=returns)  # type: ignore[attr-defined]
    call.__annotations__ = {
        p.name: p.annotation for p in params if p.annotation is not inspect.Parameter.empty
    }
    if returns is not inspect.Signature.empty:  # Gradio reads the outputs' type from it
        call.__annotations__["return"] = returns
    call.__name__ = getattr(fn, "__name__", "call")
    call.__doc__ = doc or fn.__doc__
    return call


def param(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
    """A positional-or-keyword parameter."""
    return inspect.Parameter(
        name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=annotation, default=default
    )
