"""Errors in the OpenAI shape: {"error": {"message", "type", "param", "code"}} with an HTTP status."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class OpenAIError(Exception):
    """An error to answer with `status` and the OpenAI error body."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body OpenAI clients parse."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def bad_request(message: str, param: str | None = None, code: str | None = None) -> OpenAIError:
    """A 400 for a parameter the client got wrong."""
    return OpenAIError(400, message, param=param, code=code)


async def api_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """Answer an OpenAIError."""
    assert isinstance(exc, OpenAIError)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


def _field(loc: tuple[Any, ...]) -> str:
    """'body.messages.0.content' -> 'messages.0.content'."""
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or "body"


async def validation_handler(_request: Request, exc: Exception) -> JSONResponse:
    """Pydantic's validation errors as one OpenAI 400, naming the first bad field."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    param = _field(tuple(first.get("loc", ())))
    if first.get("type") == "extra_forbidden":
        message = f"unsupported field {param!r}"
    else:
        message = f"{param}: {first.get('msg', 'invalid value')}"
    return JSONResponse(bad_request(message, param=param).body(), status_code=400)


async def http_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own errors (404 route, 405 method) in the OpenAI shape too."""
    assert isinstance(exc, StarletteHTTPException)
    kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
    err = OpenAIError(exc.status_code, str(exc.detail), type_=kind)
    return JSONResponse(err.body(), status_code=exc.status_code, headers=getattr(exc, "headers", None))


async def server_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """Anything unexpected: logged here, a 500 in the OpenAI shape there (no traceback to the client)."""
    log.error("request failed", exc_info=exc)
    err = OpenAIError(500, f"the server failed: {type(exc).__name__}: {exc}", type_="server_error")
    return JSONResponse(err.body(), status_code=500)
