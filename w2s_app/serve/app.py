"""The FastAPI app: /v1/models, /v1/completions, /v1/chat/completions, /health."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import options
from ..arena.boards import BoardPayloads
from ..arena.caller import address_hash
from ..arena.json_route import add_json_routes
from ..config import ConfigError
from ..errors import RateLimited, RequestError
from ..model_queue import QueueFull
from ..runner import CompareRequest, clean_prompt
from ..search import METHODS
from ..search.methods import parse_arm
from ..wiring import Services
from .auth import check_key, voter_id
from .bodies import DONE, Chunks, chat_body, completion_body, sse
from .errors import (
    OpenAIError,
    api_error_handler,
    bad_request,
    http_error_handler,
    server_error_handler,
    validation_handler,
)
from .jobs import ChoiceAnswer, ChoicePlan, Event, Job, is_client_error
from .schemas import ChatRequest, CompletionRequest, OpenAIFields, split_model

POLL_SECONDS = 0.25  # how often a waiting request checks that its client is still there


def param_of(exc: RequestError) -> str | None:
    """The request field an error is about: a setting under its service name (max_tokens, n_best)."""
    field = getattr(exc, "field", None)
    if field in options.BY_NAME:
        return options.BY_NAME[field].surface_name("serve")
    return field


def build_api(services: Services, payloads: BoardPayloads) -> FastAPI:
    """The OpenAI-compatible app over one runner and one model queue."""
    api = FastAPI(title="w2s-arena OpenAI-compatible service", docs_url="/docs", redoc_url=None)
    api.add_exception_handler(OpenAIError, api_error_handler)
    api.add_exception_handler(RequestValidationError, validation_handler)
    api.add_exception_handler(StarletteHTTPException, http_error_handler)
    api.add_exception_handler(Exception, server_error_handler)

    def model_ids() -> list[str]:
        presets = services.settings.presets()  # every method, then the preset's declared arms
        return [f"{p}/{m}" for p in sorted(presets) for m in [*METHODS, *presets[p].arms]]

    @api.get("/health")
    def health() -> dict[str, Any]:
        """Liveness and the model queue's state."""
        return {"status": "ok", **services.queue.state()}

    @api.get("/v1/models")
    def list_models(request: Request) -> dict[str, Any]:
        """One model per preset x method."""
        check_key(services.settings.serve_key, request.headers.get("authorization"))
        created = int(time.time())
        data = [
            {"id": m, "object": "model", "created": created, "owned_by": "w2s-arena"} for m in model_ids()
        ]
        return {"object": "list", "data": data}

    @api.get("/v1/models/{model_id:path}")
    def get_model(model_id: str, request: Request) -> dict[str, Any]:
        """One model, or 404."""
        check_key(services.settings.serve_key, request.headers.get("authorization"))
        if model_id not in model_ids():
            raise _unknown_model(model_id)
        return {"id": model_id, "object": "model", "created": int(time.time()), "owned_by": "w2s-arena"}

    @api.post("/v1/completions", response_model=None)
    async def completions(body: CompletionRequest, request: Request) -> Any:
        """Text completion: the prompt goes through the strong role's template, as with `generate`."""
        return await _serve(services, request, body, body.prompts(), body.max_tokens, chat=False)

    @api.post("/v1/chat/completions", response_model=None)
    async def chat(body: ChatRequest, request: Request) -> Any:
        """Chat completion: the messages are folded into one user turn (docs/service.md: multi-turn)."""
        return await _serve(services, request, body, [body.prompt()], body.max_completion_tokens, chat=True)

    add_json_routes(api, services, payloads)  # GET /w2s/leaderboard.json, as the page's process serves it
    return api


def _unknown_model(model: str) -> OpenAIError:
    return OpenAIError(
        404,
        f"the model {model!r} does not exist; GET /v1/models lists '<preset>/<method>' names",
        param="model",
        code="model_not_found",
    )


def _plan(
    services: Services, body: OpenAIFields, prompts: list[str], max_tokens: Any
) -> tuple[str, str, dict[str, Any], list[ChoicePlan]]:
    """Check everything that can be checked before queueing: model, settings (every one, whichever
    method runs), prompts, the cost cap (each comparison through the runner's own check, then the
    whole request: every choice of every prompt)."""
    try:
        presets = services.settings.presets()
    except ConfigError as exc:  # a broken presets file is the server's fault, not the client's
        raise OpenAIError(500, str(exc), type_="server_error") from exc
    try:
        preset_name, method = split_model(body.model)
        presets[preset_name]
    except (ValueError, KeyError):
        raise _unknown_model(body.model) from None
    try:
        parse_arm(method)  # a method ('w2s') or an arm ('w2s W4 K4 L5')
    except RequestError:
        raise _unknown_model(body.model) from None
    body.unsupported()
    body.stops()  # checked before queueing: nothing may fail between enter() and the job's start
    settings = body.search_settings(max_tokens)
    try:
        cleaned = [clean_prompt(p) for p in prompts]
        plans = [
            services.runner.plan(
                CompareRequest(p, preset_name, [method], settings, limits=services.request_limits)
            )
            for p in cleaned
        ]
        _check_request_cost([plan.cost for plan in plans], body.n, services.request_limits.max_cost)
    except RequestError as exc:
        param = param_of(exc)
        code = "context_length_exceeded" if param == "prompt" and "limit" in str(exc) else None
        raise bad_request(str(exc), param=param, code=code) from exc
    seed = plans[0].sampling.seed
    if seed + body.n > 2**32:
        raise bad_request("seed + n must stay below 2**32", param="seed")
    # Choice j of each prompt uses seed + j: choice j equals `generate --seed <seed + j>`.
    choices = [
        ChoicePlan(i * body.n + j, prompt, seed + j, plans[i].with_seed(seed + j))
        for i, prompt in enumerate(cleaned)
        for j in range(body.n)
    ]
    return preset_name, method, settings, choices


def _check_request_cost(costs: list[int], n: int, max_cost: int) -> None:
    """The cost cap holds for the whole request: n choices of each prompt, together (0 = no cap)."""
    total = sum(costs) * n
    if max_cost and total > max_cost:
        choices = len(costs) * n
        raise options.OptionError(
            "max_cost",
            f"this request is too large ({total} tokens of work for its {choices} choices, the limit is "
            f"{max_cost} for a whole request): lower n, the number of prompts or max_tokens",
        )


async def _serve(
    services: Services,
    request: Request,
    body: OpenAIFields,
    prompts: list[str],
    max_tokens: Any,
    chat: bool,
) -> Any:
    """Validate, count the request against the limits, take a place in the queue (or 429), then answer."""
    auth = request.headers.get("authorization")
    check_key(services.settings.serve_key, auth)
    preset, method, settings, choices = _plan(services, body, prompts, max_tokens)
    voter = voter_id(services.settings.serve_key, auth, services.identity.keyed_hash)
    address = address_hash(services, request)
    try:
        # The page's limits: per key (per voter) and per client address, counting each choice (each is
        # a comparison, as one from the page), so n=8 is eight comparisons, not one.
        services.limits.check_request(
            "comparison", None if voter == "api:anonymous" else voter, address, count=len(choices)
        )
        ticket = services.queue.enter()
    except (RateLimited, QueueFull) as exc:
        raise OpenAIError(
            429,
            str(exc),
            type_="rate_limit_error",
            code="queue_full" if isinstance(exc, QueueFull) else "rate_limit_exceeded",
            headers={"Retry-After": str(int(exc.retry_after or 1))},
        ) from exc
    job = Job(
        services.runner,
        services.queue,
        ticket,
        preset,
        method,
        settings,
        choices,
        body.stops(),
        voter,
        address,
        services.request_limits,
        stream=body.stream,
    )
    job.start()
    rid = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        chunks = Chunks(rid, created, body.model, chat)
        return StreamingResponse(
            _stream(job, request, chunks, include_usage),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    answers = await _collect(job, request)
    make = chat_body if chat else completion_body
    return JSONResponse(make(rid, created, body.model, answers))


async def _events(job: Job, request: Request) -> AsyncIterator[Event]:
    """The job's events; they end early (and the job is cancelled) when the client has gone.

    The client is checked every POLL_SECONDS even while events keep coming (a busy stream must
    not hide a disconnect). The job's failure is raised after its last event.
    """
    checked_at = 0.0
    async for event in job.events(POLL_SECONDS):
        now = time.monotonic()
        if now - checked_at >= POLL_SECONDS:
            checked_at = now
            if await request.is_disconnected():
                job.cancel()
                return
        if event is not None:
            yield event


def _error(exc: BaseException) -> OpenAIError:
    if isinstance(exc, OpenAIError):
        return exc
    if is_client_error(exc):
        return bad_request(str(exc), param=param_of(exc))
    return OpenAIError(500, f"the search failed: {exc}", type_="server_error")


async def _collect(job: Job, request: Request) -> list[ChoiceAnswer]:
    """Wait for every answer of a non-streaming request."""
    answers: list[ChoiceAnswer] = []
    try:
        async for event in _events(job, request):
            if event.kind == "answer":
                answers.append(event.answer)
    except Exception as exc:  # the search failed: the worker's error, raised after its last event
        raise _error(exc) from None
    finally:
        if len(answers) < len(job.choices):
            job.cancel()
    return answers


async def _stream(job: Job, request: Request, chunks: Chunks, include_usage: bool) -> AsyncIterator[str]:
    """SSE: settled text deltas as they come, a finish chunk per choice, usage, then [DONE]."""
    answers: list[ChoiceAnswer] = []
    try:
        try:
            async for event in _events(job, request):
                if event.kind == "delta":
                    yield chunks.delta(event.index, event.text)
                elif event.kind == "answer":
                    answers.append(event.answer)
                    yield chunks.finish(event.answer)
        except Exception as exc:  # the search failed: the worker's error, raised after its last event
            yield sse(_error(exc).body())
            return
        if job.cancelled():  # the client left
            return
        if include_usage and answers:
            yield chunks.usage(answers)
        yield DONE
    finally:
        # A client that leaves mid-stream (the task is cancelled) stops the search and frees its place.
        if len(answers) < len(job.choices):
            job.cancel()
