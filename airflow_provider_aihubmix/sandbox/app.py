"""The API app (``https://aihubmix.com`` and ``https://api.aihubmix.com`` in one).

Handlers take the raw ``Request`` and return ready ``Response`` objects: no pydantic
body models or FastAPI encoders on the hot path, because benchmarks hammer this app.
Authentication, faults and the request log happen in :mod:`.middleware`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp

from airflow_provider_aihubmix.catalog.models import UnknownModelError
from airflow_provider_aihubmix.sandbox.control import control_router
from airflow_provider_aihubmix.sandbox.errors import ApiError, json_response
from airflow_provider_aihubmix.sandbox.gemini import generate_content
from airflow_provider_aihubmix.sandbox.images import SizeError, image_seed, resolve_size
from airflow_provider_aihubmix.sandbox.middleware import SandboxMiddleware
from airflow_provider_aihubmix.sandbox.model_lists import models_body, public_models_body, served_spec
from airflow_provider_aihubmix.sandbox.predictions import (
    DEFAULT_PRICE_USD,
    Plan,
    openai_usage,
    predict,
    require_prompt,
)
from airflow_provider_aihubmix.sandbox.shapes import IMAGE_SHAPES, Answer, chosen_shape
from airflow_provider_aihubmix.sandbox.state import SandboxState
from airflow_provider_aihubmix.sandbox.tasks import Task, task_status


def request_id(request: Request) -> str | None:
    record = request.scope.get("sandbox.record")
    return record["request_id"] if record else None


def record_of(request: Request) -> dict[str, Any] | None:
    return request.scope.get("sandbox.record")


def json_body(request: Request) -> dict[str, Any]:
    record = record_of(request)
    payload = record["json"] if record else None
    if payload is None:
        raw = request.scope.get("sandbox.body", b"")
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            raise ApiError(400, "Request body is not valid JSON", code="invalid_json") from None
    if not isinstance(payload, dict):
        raise ApiError(400, "Request body must be a JSON object", code="invalid_request")
    return payload


def _int_field(value: Any, low: int, high: int, param: str, code: str) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApiError(400, f"{param} must be an integer between {low} and {high}", code=code, param=param)
    return value


Endpoint = Callable[[Request], Awaitable[Response]]


def route(app: FastAPI, path: str, method: str) -> Callable[[Endpoint], Endpoint]:
    """Register a plain Starlette route: FastAPI's parameter solving costs more than the handler."""

    def register(endpoint: Endpoint) -> Endpoint:
        app.add_route(path, endpoint, methods=[method])
        return endpoint

    return register


# Long because it is the route table: each nested function is one endpoint over ``state``.
def create_api_app(state: SandboxState) -> ASGIApp:
    app = FastAPI(title="AIHubMix sandbox", openapi_url=None, docs_url=None, redoc_url=None)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return exc.response(request_id(request))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return ApiError(exc.status_code, str(exc.detail)).response(request_id(request))

    @route(app, "/v1/models/{provider}/{model_id:path}/predictions", "POST")
    async def predictions(request: Request) -> Response:
        provider, model_id = request.path_params["provider"], request.path_params["model_id"]
        try:
            spec = served_spec(f"{provider}/{model_id}")
        except UnknownModelError:
            raise ApiError(503, f"No available channel for model {provider}/{model_id}") from None
        payload = json_body(request)
        inp = payload.get("input")
        if not isinstance(inp, dict):
            raise ApiError(400, "'input' must be an object", code="invalid_request", param="input")
        record = record_of(request) or {}
        return json_response(await predict(state, spec, inp, record))

    async def _images(plan: Plan, response_format: Any) -> list[dict[str, Any]]:
        if response_format == "url":
            return [
                {
                    "url": state.image_url(
                        plan.width, plan.height, plan.fmt, plan.image_seed, i, state.config.url_ttl_s
                    ),
                    "revised_prompt": plan.prompt,
                }
                for i in range(plan.count)
            ]
        if response_format not in (None, "b64_json"):
            raise ApiError(400, "response_format must be url or b64_json", param="response_format")
        out = []
        for i in range(plan.count):
            data = await state.image_bytes(plan.width, plan.height, plan.fmt, plan.image_seed, i)
            out.append({"b64_json": base64.b64encode(data).decode(), "revised_prompt": plan.prompt})
        return out

    def _plan(fields: dict[str, Any], extra_seed: bytes = b"", references: int = 0) -> Plan:
        cfg = state.config
        if not fields.get("model"):
            raise ApiError(400, "model is required", code="model_missing", param="model")
        prompt = require_prompt(fields.get("prompt"), cfg.max_prompt_chars)
        count = _int_field(fields.get("n", 1), 1, 10, "n", "n_not_within_range")
        try:
            width, height = resolve_size(
                fields.get("size"), fields.get("aspect_ratio"), max_side=cfg.max_side
            )
        except SizeError as exc:
            raise ApiError(400, str(exc), code="size_not_supported", param="size") from None
        fmt = str(fields.get("output_format") or "png").lower().replace("jpg", "jpeg")
        if fmt not in ("png", "jpeg", "webp"):
            raise ApiError(400, "output_format must be png, jpeg or webp", param="output_format")
        seed = fields.get("seed")
        return Plan(prompt, count, width, height, fmt, seed, image_seed(prompt, seed, extra_seed), references)

    async def _answer(request: Request, plan: Plan, response_format: Any) -> Response:
        if not state.check_quota():
            raise ApiError(403, "Insufficient balance: top up to continue", code="insufficient_user_quota")
        record = record_of(request) or {}
        model = str((record.get("json") or {}).get("model") or "")
        shape = chosen_shape(record.get("headers") or {}, plan.prompt, model, state.config.shapes)
        if shape is not None:
            # The odd answers on this endpoint too (see .shapes); images only, it has no tasks.
            if shape not in IMAGE_SHAPES:
                message = f"sandbox shape {shape!r} is not an image shape"
                raise ApiError(400, message, code="bad_sandbox_shape")
            urls = [url["url"] for url in await _images(plan, "url")]
            b64 = [item["b64_json"] for item in await _images(plan, None)]
            answer = Answer(urls=urls, b64=b64, fmt=plan.fmt, prompt=plan.prompt, seed=plan.seed)
            state.bill(record_of(request), DEFAULT_PRICE_USD * plan.count)
            return json_response(IMAGE_SHAPES[shape](answer))
        data = await _images(plan, response_format)
        state.bill(record_of(request), DEFAULT_PRICE_USD * plan.count)
        body = {
            "created": int(time.time()),
            "data": data,
            "usage": openai_usage(plan.prompt, plan, None, plan.references),
        }
        return json_response(body)

    @route(app, "/v1/images/generations", "POST")
    async def generations(request: Request) -> Response:
        payload = json_body(request)
        return await _answer(request, _plan(payload), payload.get("response_format"))

    @route(app, "/v1/images/edits", "POST")
    async def edits(request: Request) -> Response:
        try:
            form = await request.form()
        except Exception:
            raise ApiError(400, "expected a multipart/form-data body", code="invalid_request") from None
        fields: dict[str, Any] = {}
        logged: dict[str, Any] = {}
        digest = hashlib.blake2b(digest_size=16)
        images = 0
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                data = await value.read()
                digest.update(data)
                logged.setdefault(name, []).append(
                    {"filename": value.filename, "content_type": value.content_type, "bytes": len(data)}
                )
                if name.startswith("image") and data:
                    images += 1
            else:
                fields[name] = value
                logged[name] = value
        record = record_of(request)
        if record is not None:
            record["form"] = logged
        if images == 0:
            raise ApiError(400, "image is required", code="image_missing", param="image")
        plan = _plan(fields, digest.digest(), images)
        return await _answer(request, plan, fields.get("response_format"))

    def _sample_url(task: Task) -> str:
        return state.image_url(
            task.width, task.height, task.fmt, task.image_seed, 0, state.config.task_url_ttl_s
        )

    @route(app, "/v1/tasks/{task_id}", "GET")
    async def task(request: Request) -> Response:
        task_id = request.path_params["task_id"]
        cfg = state.config
        return json_response(
            task_status(
                state.tasks.get(task_id),
                task_id,
                style=cfg.status_style,
                generating_status=cfg.generating_status,
                sample_url=_sample_url,
            )
        )

    @route(app, "/v1/models", "GET")
    async def models(request: Request) -> Response:
        return json_response(models_body(state.config.extra_models))

    @route(app, "/api/v1/models", "GET")
    async def public_models(request: Request) -> Response:
        wanted = request.query_params.get("type") or request.query_params.get("types")
        return json_response(public_models_body(state.config.extra_models, wanted))

    @route(app, "/gemini/v1beta/models/{model}:generateContent", "POST")
    async def gemini(request: Request) -> Response:
        return await generate_content(state, request, json_body(request))

    @route(app, "/gemini/v1beta/models/{model}:streamGenerateContent", "POST")
    async def gemini_stream(request: Request) -> Response:
        return await generate_content(state, request, json_body(request), stream=True)

    async def subscription(request: Request) -> Response:
        balance = state.config.balance_usd
        return json_response(
            {
                "object": "billing_subscription",
                "has_payment_method": True,
                "soft_limit_usd": balance,
                "hard_limit_usd": balance,
                "system_hard_limit_usd": balance,
                "access_until": 0,
            }
        )

    async def usage(request: Request) -> Response:
        # OpenAI-compatible gateways report usage in cents.
        return json_response({"object": "list", "total_usage": round(state.usage_usd * 100, 4)})

    async def remain(request: Request) -> Response:
        balance = state.config.balance_usd
        remaining = round(max(0.0, balance - state.usage_usd), 6)
        return json_response(
            {
                "object": "billing_remain",
                # What public clients read: the remaining balance, USD as they label it.
                "total_usage": remaining,
                "total_usd": balance,
                "used_usd": round(state.usage_usd, 6),
                "remain_usd": round(max(0.0, balance - state.usage_usd), 6),
            }
        )

    for prefix in ("/v1", ""):  # the reference lists them with and without /v1
        app.add_route(f"{prefix}/dashboard/billing/subscription", subscription, methods=["GET"])
        app.add_route(f"{prefix}/dashboard/billing/usage", usage, methods=["GET"])
        app.add_route(f"{prefix}/dashboard/billing/remain", remain, methods=["GET"])
    # Last: the hot API routes are matched first.
    app.include_router(control_router(state))

    return SandboxMiddleware(app, state, "api")
