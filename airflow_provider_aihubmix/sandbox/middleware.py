"""The outermost ASGI layer of both apps: request log, X-Request-Id, authentication, faults.

Pure ASGI (no ``BaseHTTPMiddleware``) because it runs on every benchmarked request, and
outermost so it holds uvicorn's own ``send``: that is how a fault can close the TCP
connection without an answer, which no response object can express.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from airflow_provider_aihubmix.sandbox.errors import ApiError, json_response, moderation_error
from airflow_provider_aihubmix.sandbox.faults import (
    AFTER_PROCESSING_KINDS,
    HEADER,
    FaultRule,
    parse_fault_header,
)
from airflow_provider_aihubmix.sandbox.gemini import check_key
from airflow_provider_aihubmix.sandbox.state import SandboxState

CONTROL_PREFIX = "/_sandbox"
PUBLIC_CATALOG_PATH = "/api/v1/models"
LOG_BODY_MAX = 1024 * 1024


def close_connection(send: Send) -> None:
    """Close the client's TCP connection now, whatever was (or was not) sent on it.

    uvicorn's ``send`` is a bound method of its request cycle, which owns the transport.
    Marking the cycle disconnected stops uvicorn from answering with its own 500.
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise ConnectionAbortedError("sandbox: this server cannot drop connections (not uvicorn)")
    transport.close()
    with contextlib.suppress(AttributeError):
        cycle.disconnected = True  # type: ignore[union-attr]


def _retry_after(value: float | str | None) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return {"Retry-After": str(value)}


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` giving the already-read body once, then the real one (disconnects)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class SandboxMiddleware:
    def __init__(self, app: ASGIApp, state: SandboxState, host: str) -> None:
        self.app = app
        self.state = state
        self.host = host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self.host == "api" and scope["path"].startswith(CONTROL_PREFIX)):
            # The control API: no key, no faults, not logged (tests count logged requests).
            await self.app(scope, receive, send)
            return
        state = self.state
        method, path = scope["method"], scope["path"]
        record, headers, body = await self._record(scope, receive)
        scope["sandbox.raw_send"] = send
        request_id: str = record["request_id"]
        tag = (b"x-request-id", request_id.encode())

        async def send_tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                record["status"] = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), tag]}
            await send(message)

        try:
            fault = parse_fault_header(headers[HEADER]) if HEADER in headers else None
        except ValueError as exc:
            error = ApiError(400, f"bad {HEADER} header: {exc}", code="bad_sandbox_fault")
            await error.response(request_id)(scope, receive, send_tagged)
            return
        if fault is None:
            fault = state.faults.match(self.host, method, path)
        scope["sandbox.fault"] = fault
        if fault is not None:
            record["fault"] = fault.kind
            if fault.kind == "drop":
                close_connection(send)
                return

        gate = self._gate(headers, path, scope["query_string"].decode("latin-1"), request_id)
        if gate is not None:
            await gate(scope, receive, send_tagged)
            return
        if fault is not None:
            early = self._early_answer(fault, request_id)
            if early is not None:
                await early(scope, receive, send_tagged)
                return

        replay = _replay(body, receive)
        if fault is None or fault.kind not in AFTER_PROCESSING_KINDS:
            await self.app(scope, replay, send_tagged)
        elif fault.kind == "slow":
            delay = fault.delay_s

            async def send_slow(message: Message) -> None:
                if message["type"] == "http.response.start":
                    await asyncio.sleep(delay)
                await send_tagged(message)

            await self.app(scope, replay, send_slow)
        else:
            await self._after_processing(fault, scope, replay, send, send_tagged, record)

    async def _record(self, scope: Scope, receive: Receive) -> tuple[dict[str, Any], dict[str, str], bytes]:
        """Log the request (headers joined, JSON body kept when small) and stash it in ``scope``."""
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        query = scope["query_string"].decode("latin-1")
        record = self.state.new_record(self.host, scope["method"], scope["path"], query, headers)
        body = await _read_body(receive)
        record["body_size"] = len(body)
        # Bodies over the cap (big data: URIs) are parsed by the handler but not kept in the log.
        if body and len(body) <= LOG_BODY_MAX and "json" in headers.get("content-type", ""):
            with contextlib.suppress(ValueError):
                record["json"] = json.loads(body)
        scope["sandbox.record"] = record
        scope["sandbox.body"] = body
        return record, headers, body

    def _gate(self, headers: dict[str, str], path: str, query: str, request_id: str) -> Response | None:
        """The storage host refuses any Authorization (like Baidu BCE); the API wants a key."""
        if self.host == "storage":
            if "authorization" in headers:
                return json_response(
                    {
                        "code": "InvalidHTTPAuthHeader",
                        "message": "Authorization header is not allowed with a pre-signed URL",
                        "requestId": request_id,
                    },
                    status=400,
                )
            return None
        if path.startswith("/gemini/"):
            # Google's native API reads x-goog-api-key (or ?key=), never Authorization.
            return check_key(headers, query, self.state.config.api_key)
        if path == PUBLIC_CATALOG_PATH:
            return None  # AIHubMix's machine-readable catalog is public (its clients call it keyless)
        key: str | None = None
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            key = token.strip()
        if key is None:
            return ApiError(401, "No API key provided; send 'Authorization: Bearer <key>'").response(
                request_id
            )
        expected = self.state.config.api_key
        if expected is not None and not hmac.compare_digest(key.encode(), expected.encode()):
            return ApiError(401, "Invalid token").response(request_id)
        return None

    def _early_answer(self, fault: FaultRule, request_id: str) -> Response | None:
        """Faults that answer before the request is processed (so nothing is billed)."""
        if fault.kind == "status":
            error = ApiError(
                fault.effective_status(),
                fault.message,
                code=fault.code,
                headers=_retry_after(fault.retry_after),
            )
            return error.response(request_id)
        if fault.kind == "error_200":
            error = ApiError(fault.effective_status(), fault.message, code=fault.code)
            return error.response(request_id, status=200)
        if fault.kind == "moderation" and self.host == "api":
            return moderation_error().response(request_id)
        return None

    async def _after_processing(
        self,
        fault: FaultRule,
        scope: Scope,
        receive: Receive,
        raw_send: Send,
        send_tagged: Send,
        record: dict[str, Any],
    ) -> None:
        """Process (and bill) the request for real, then lose or spoil the answer."""
        captured: list[Message] = []

        async def capture(message: Message) -> None:
            captured.append(message)

        await self.app(scope, receive, capture)
        for message in captured:
            if message["type"] == "http.response.start":
                record["status"] = message["status"]
        if fault.kind == "reset_after_send":
            close_connection(raw_send)
            return
        real = b"".join(m.get("body", b"") for m in captured if m["type"] == "http.response.body")
        if fault.kind == "malformed_json":
            payload = real[: len(real) // 2] if len(real) > 4 else b'{"output": ['
        else:  # unknown_shape: valid JSON that no documented shape describes
            payload = json.dumps(
                {"status": "ok", "artifacts": {"ref": record["request_id"], "kind": "sandbox-unknown-shape"}}
            ).encode()
        await Response(payload, 200, media_type="application/json")(scope, receive, send_tagged)
