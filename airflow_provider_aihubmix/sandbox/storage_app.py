"""The storage app: third-party image hosting (Baidu BCE, Volcengine TOS, BFL delivery) on its own port.

Image URLs are pre-signed (``Expires`` + ``Signature``) and stateless: the path names
the size, format, seed and index, so any URL the API handed out can be re-rendered.
It also serves the upstream ``polling_url`` (``/v1/get_result``), which, like BFL,
is not the gateway and must never receive the AIHubMix key.
"""

from __future__ import annotations

import hmac
import re
import time

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response, StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from airflow_provider_aihubmix.sandbox.app import route
from airflow_provider_aihubmix.sandbox.errors import json_response
from airflow_provider_aihubmix.sandbox.faults import FaultRule
from airflow_provider_aihubmix.sandbox.images import (
    FORMAT_BY_EXTENSION,
    FORMATS,
    HONEST_LIMIT,
    huge_png_length,
    huge_png_stream,
)
from airflow_provider_aihubmix.sandbox.middleware import SandboxMiddleware, close_connection
from airflow_provider_aihubmix.sandbox.state import SandboxState
from airflow_provider_aihubmix.sandbox.tasks import Task, task_status

_NAME_RE = re.compile(r"^(\d{1,5})x(\d{1,5})-([0-9a-f]{1,16})-(\d{1,3})\.(png|jpg|jpeg|webp)$")
_HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>Access check</title></head>"
    b"<body><h1>Please verify you are a human</h1><p>sandbox wrong_content_type fault</p></body></html>"
)


def _storage_error(status: int, code: str, message: str, request_id: str | None) -> Response:
    # The storage vendors' own error shape, not the gateway's: clients must not assume one.
    return json_response({"code": code, "message": message, "requestId": request_id}, status=status)


class TruncatedResponse(Response):
    """Announces the full Content-Length, sends half the body, then closes the connection."""

    def __init__(self, content: bytes, media_type: str, raw_send: Send) -> None:
        super().__init__(content, media_type=media_type)
        self.raw_send = raw_send

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        half = bytes(self.body[: len(self.body) // 2])
        await send({"type": "http.response.body", "body": half, "more_body": True})
        close_connection(self.raw_send)


# Long because it is the route table: each nested function is one storage endpoint.
def create_storage_app(state: SandboxState) -> ASGIApp:
    app = FastAPI(title="AIHubMix sandbox storage", openapi_url=None, docs_url=None, redoc_url=None)

    def rid(request: Request) -> str | None:
        record = request.scope.get("sandbox.record")
        return record["request_id"] if record else None

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return _storage_error(exc.status_code, "NoSuchKey", str(exc.detail), rid(request))

    @route(app, "/images/{name}", "GET")
    async def image(request: Request) -> Response:
        name = request.path_params["name"]
        request_id = rid(request)
        match = _NAME_RE.match(name)
        if not match:
            return _storage_error(404, "NoSuchKey", "The specified key does not exist.", request_id)
        width, height = int(match.group(1)), int(match.group(2))
        seed, index, fmt = int(match.group(3), 16), int(match.group(4)), FORMAT_BY_EXTENSION[match.group(5)]
        if not (1 <= width <= HONEST_LIMIT and 1 <= height <= HONEST_LIMIT):
            return _storage_error(404, "NoSuchKey", "The specified key does not exist.", request_id)
        fault: FaultRule | None = request.scope.get("sandbox.fault")
        kind = fault.kind if fault else None
        expires_raw, signature = request.query_params.get("Expires"), request.query_params.get("Signature")
        if kind == "expired":
            assert fault is not None
            status = fault.status or 403
            code = "NoSuchKey" if status == 404 else "AccessDenied"
            return _storage_error(status, code, "Request has expired", request_id)
        if not expires_raw or not signature or not expires_raw.isdigit():
            return _storage_error(403, "AccessDenied", "Query-string authentication is required", request_id)
        expires = int(expires_raw)
        if not hmac.compare_digest(signature, state.sign(request.url.path, expires)):
            return _storage_error(
                403, "SignatureDoesNotMatch", "The request signature does not match", request_id
            )
        if time.time() > expires:
            return _storage_error(403, "AccessDenied", "Request has expired", request_id)

        if kind == "huge":
            assert fault is not None
            base = await state.image_bytes(width, height, "png", seed, index)
            total = fault.size_bytes if fault.size_bytes is not None else state.config.huge_bytes
            return StreamingResponse(
                huge_png_stream(base, total),
                media_type="image/png",
                headers={"Content-Length": str(huge_png_length(base, total))},
            )
        data = await state.image_bytes(width, height, fmt, seed, index)
        if kind == "truncated":
            return TruncatedResponse(data, FORMATS[fmt], request.scope["sandbox.raw_send"])
        if kind == "wrong_content_type":
            assert fault is not None
            if fault.content_type:  # the real bytes under a wrong label
                return Response(data, media_type=fault.content_type)
            return Response(_HTML_PAGE, media_type="text/html; charset=utf-8")
        return Response(data, media_type=FORMATS[fmt])

    def _sample_url(task: Task) -> str:
        return state.image_url(
            task.width, task.height, task.fmt, task.image_seed, 0, state.config.task_url_ttl_s
        )

    @route(app, "/v1/get_result", "GET")
    async def get_result(request: Request) -> Response:
        cfg = state.config
        task_id = request.query_params.get("id", "")
        return json_response(
            task_status(
                state.tasks.get(task_id),
                task_id,
                style=cfg.status_style,
                generating_status=cfg.generating_status,
                sample_url=_sample_url,
            )
        )

    return SandboxMiddleware(app, state, "storage")
