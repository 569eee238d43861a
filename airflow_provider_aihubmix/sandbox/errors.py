"""Error answers in the gateway's shape: ``{"error": {"message", "type", "param", "code"}}``."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

# Default code and type per status, following the reference's error table.
_DEFAULTS: dict[int, tuple[str, str, str]] = {
    400: ("invalid_request", "invalid_request_error", "Bad request"),
    401: ("invalid_api_key", "authentication_error", "Invalid token"),
    403: ("insufficient_user_quota", "aihubmix_api_error", "Insufficient balance for this request"),
    404: ("not_found", "invalid_request_error", "Not found"),
    405: ("method_not_allowed", "invalid_request_error", "Method not allowed"),
    408: ("request_timeout", "aihubmix_api_error", "Request timed out"),
    409: ("conflict", "aihubmix_api_error", "Conflict"),
    429: ("rate_limit_exceeded", "rate_limit_error", "Rate limit reached for requests"),
    500: ("upstream_error", "aihubmix_api_error", "Upstream model failed"),
    502: ("bad_gateway", "aihubmix_api_error", "Bad gateway: upstream returned an invalid response"),
    503: ("no_available_channel", "aihubmix_api_error", "No available channel for this model"),
    504: ("gateway_timeout", "aihubmix_api_error", "Upstream timed out"),
}


class ApiError(Exception):
    """Raised by handlers; turned into the error body by the app's exception handler."""

    def __init__(
        self,
        status: int,
        message: str | None = None,
        *,
        code: str | None = None,
        type_: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        default_code, default_type, default_message = _DEFAULTS.get(
            status, ("error", "aihubmix_api_error", "Error")
        )
        self.status = status
        self.message = message or default_message
        self.code = code or default_code
        self.type = type_ or default_type
        self.param = param
        self.headers = headers or {}
        super().__init__(self.message)

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        # The gateway appends the request id to its messages; keep that habit.
        message = f"{self.message} (request id: {request_id})" if request_id else self.message
        return {"error": {"message": message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self, request_id: str | None = None, *, status: int | None = None) -> Response:
        return json_response(
            self.body(request_id), status=self.status if status is None else status, headers=self.headers
        )


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response without FastAPI's encoder (cheap: the sandbox is benchmarked)."""
    return Response(
        json.dumps(payload, separators=(",", ":")).encode(),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def moderation_error(param: str = "prompt") -> ApiError:
    return ApiError(
        400,
        "Your request was rejected by the safety system (upstream moderation)",
        code="moderation_blocked",
        param=param,
    )
