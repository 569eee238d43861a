"""Error mapping: a final API response becomes its JSON body or a typed, scrubbed error.

AIHubMix answers errors as an HTTP status with an OpenAI-style ``{"error": {...}}`` body, a bare
``{"error": "..."}``, a flat body, or (from some upstreams) an ``error`` inside an HTTP 200. Each
is mapped to one class of :mod:`airflow_provider_aihubmix.exceptions` by status, then by the
code/type/message markers below.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import httpx

from airflow_provider_aihubmix.exceptions import (
    AIHubMixAuthenticationError,
    AIHubMixBadRequestError,
    AIHubMixError,
    AIHubMixModerationError,
    AIHubMixQuotaError,
    AIHubMixRateLimitError,
    AIHubMixResponseError,
    AIHubMixUnreadableAnswerError,
    AIHubMixUpstreamError,
)
from airflow_provider_aihubmix.redaction import scrub_text


class Exchange(Protocol):
    """What error mapping reads of a call (a :class:`~.retries.RetryState` is one): its name, whether it
    is the billable POST, the secrets to scrub and how many attempts it made."""

    @property
    def label(self) -> str: ...

    @property
    def billable(self) -> bool: ...

    @property
    def secrets(self) -> tuple[str, ...]: ...

    @property
    def attempts(self) -> int: ...


# Statuses that mean "try again later": retried by the hook, and an HTTP 200 error body standing
# for one of them is retried too.
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})

_MODERATION_MARKERS = (
    "moderat",
    "content_policy",
    "content policy",
    "safety system",
    "safety_violation",
    "sensitive",
    "inappropriate",
    "content_filter",
    "policy_violation",
    "nsfw",
)
_AUTH_MARKERS = ("invalid_api_key", "invalid api key", "unauthorized", "authentication", "invalid token")
_QUOTA_MARKERS = ("quota", "insufficient", "balance", "not allowed", "permission", "forbidden")
_RATE_MARKERS = ("rate_limit", "rate limit", "too many requests", "too_many_requests")
_UPSTREAM_MARKERS = (
    "upstream",
    "server_error",
    "no available channel",
    "channel",
    "timeout",
    "overloaded",
    "bad_gateway",
    "service_unavailable",
)


def _error_fields(body: Any) -> tuple[str | None, str | None, str | None, str | None]:
    """(message, code, type, param) from ``{"error": {...}}``, ``{"error": "..."}`` or a flat body."""
    if not isinstance(body, Mapping):
        return None, None, None, None
    error = body.get("error", body)
    if isinstance(error, str):
        return error, None, None, None
    if not isinstance(error, Mapping):
        return None, None, None, None

    def text(key: str) -> str | None:
        value = error.get(key)
        return str(value) if value not in (None, "") else None

    message = text("message") or text("msg") or text("detail")
    return message, text("code"), text("type"), text("param")


def _has(markers: Iterable[str], *values: str | None) -> bool:
    haystack = " ".join(v.lower() for v in values if v)
    return any(marker in haystack for marker in markers)


def _status_for_error_body(code: str | None, type_: str | None, message: str | None) -> int:
    """An ``error`` inside an HTTP 200 carries no status: infer the one its code/type would have."""
    if code and code.isdigit() and 400 <= int(code) < 600:
        return int(code)
    if _has(_AUTH_MARKERS, code, type_, message):
        return 401
    if _has(_RATE_MARKERS, code, type_, message):
        return 429
    if _has(_QUOTA_MARKERS, code, type_):
        return 403
    if _has(_UPSTREAM_MARKERS, code, type_):
        return 502
    return 400


def error_for(
    status: int,
    body: Any,
    *,
    request_id: str | None,
    text: str,
    secrets: Iterable[str | None] = (),
    attempts: int = 1,
) -> AIHubMixError:
    """The typed exception for an API failure; message and excerpt scrubbed of secrets."""
    message, code, type_, param = _error_fields(body)
    secrets = tuple(secrets)
    detail = scrub_text(message, secrets) if message else None
    excerpt = scrub_text(text, secrets) if text else None
    kwargs: dict[str, Any] = {
        "status_code": status,
        "request_id": request_id,
        "code": scrub_text(code, secrets, limit=80) if code else None,
        "param": scrub_text(param, secrets, limit=80) if param else None,
        "body_excerpt": excerpt,
    }
    suffix = f": {detail}" if detail else ""
    retried = f" after {attempts} attempts" if attempts > 1 else ""
    if status in (400, 403, 422) and _has(_MODERATION_MARKERS, code, type_, message):
        return AIHubMixModerationError(
            f"AIHubMix refused the request on moderation grounds{suffix}", **kwargs
        )
    if status == 401:
        return AIHubMixAuthenticationError(f"AIHubMix rejected the API key{suffix}", **kwargs)
    if status in (402, 403):
        return AIHubMixQuotaError(
            f"AIHubMix refused the request: insufficient quota or the key may not use this model{suffix}",
            **kwargs,
        )
    if status == 429:
        return AIHubMixRateLimitError(f"AIHubMix rate limit hit{retried}{suffix}", **kwargs)
    if status >= 500:
        return AIHubMixUpstreamError(f"AIHubMix upstream failure{retried}{suffix}", **kwargs)
    if status == 404:
        return AIHubMixBadRequestError(
            f"AIHubMix has no such endpoint or model (check the model path and base URL){suffix}", **kwargs
        )
    return AIHubMixBadRequestError(f"AIHubMix rejected the request{suffix}", **kwargs)


NOT_JSON = object()


def decode_json(response: httpx.Response) -> Any:
    """The parsed JSON body, ``None`` for an empty body, :data:`NOT_JSON` for anything else."""
    try:
        return json.loads(response.content) if response.content else None
    except (ValueError, UnicodeDecodeError):
        return NOT_JSON


def json_or_raise(
    response: httpx.Response,
    call: Exchange,
    *,
    status_in_body_is_not_error: bool = False,
) -> Any:
    """Return the JSON body of a final API response or raise the mapped, scrubbed error.

    An ``error`` key in an HTTP 200 body is mapped like the status it stands for. For task
    status bodies (``status_in_body_is_not_error``) an ``error`` beside a ``status`` is the task's
    own failure detail, left to the task parser.
    """
    request_id = response.headers.get("X-Request-Id") or response.headers.get("x-request-id")
    body = decode_json(response)

    def text() -> str:
        # Only for errors: decoding a success body again would hold a second copy of a base64 image.
        return response.text if response.content else ""

    if response.status_code >= 400:
        raise error_for(
            response.status_code,
            body if body is not NOT_JSON else None,
            request_id=request_id,
            text=text(),
            secrets=call.secrets,
            attempts=call.attempts,
        )
    if body is NOT_JSON or body is None:
        not_json = f"AIHubMix {call.label} answered HTTP {response.status_code} with a body that is not JSON"
        excerpt = scrub_text(text(), call.secrets) if response.content else None
        if call.billable:
            # A paid request may stand behind it: the text goes with the error, to be kept.
            raise AIHubMixUnreadableAnswerError(
                not_json, request_id=request_id, body_excerpt=excerpt, text=text() or None
            )
        raise AIHubMixResponseError(not_json, request_id=request_id, body_excerpt=excerpt)
    task_failure = status_in_body_is_not_error and isinstance(body, Mapping) and "status" in body
    if isinstance(body, Mapping) and body.get("error") and not task_failure:
        message, code, type_, _ = _error_fields(body)
        status = _status_for_error_body(code, type_, message)
        raise error_for(
            status,
            body,
            request_id=request_id,
            text=text(),
            secrets=call.secrets,
            attempts=call.attempts,
        )
    return body


def retryable_error_body(body: Any) -> bool:
    """Whether an HTTP 200 ``error`` body stands for a retryable status (429 / 5xx)."""
    if not isinstance(body, Mapping) or not body.get("error"):
        return False
    message, code, type_, _ = _error_fields(body)
    return _status_for_error_body(code, type_, message) in RETRYABLE_STATUS


def models_from_body(body: Any) -> list[str]:
    """``GET /v1/models``: OpenAI-style ``{"data": [{"id"}]}``, a bare list, or ``{"models": [...]}``."""
    items: Any = body
    if isinstance(body, Mapping):
        items = body.get("data", body.get("models"))
    if not isinstance(items, list):
        raise AIHubMixResponseError(
            "GET /v1/models answered with no model list",
            body_excerpt=scrub_text(json.dumps(body, default=str)),
        )
    names: list[str] = []
    for item in items:
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, Mapping):
            name = item.get("id") or item.get("name") or item.get("model")
            if isinstance(name, str):
                names.append(name)
    return sorted(set(names))
