"""HTTP rules shared by the sync and async hook: settings, retries, error mapping, SSRF guard.

Everything that decides something lives here once; :mod:`airflow_provider_aihubmix.hooks.aihubmix`
only runs the two thin loops (``time.sleep`` / ``asyncio.sleep``) around these decisions.

Retry policy, and why:

* Retried on every method: HTTP 429, 500, 502, 503, 504 and connection failures that happen
  *before* the request was sent (``ConnectError``, ``ConnectTimeout``, ``PoolTimeout``), with
  exponential backoff and full jitter, capped, honouring ``Retry-After`` (seconds or HTTP date).
* A 5xx *response* to a billable POST is retried too: the gateway answered, so it did not accept
  the prediction (AIHubMix, like the one-api/new-api gateways it is built on, refunds its
  pre-charge when the upstream fails). A lost response is different:
* A billable POST whose failure happened *after* the request may have reached the gateway
  (``ReadTimeout``, ``ReadError``, ``RemoteProtocolError`` such as a reset with no response,
  ``WriteError`` / ``WriteTimeout`` because the last bytes may have arrived) is never retried:
  :class:`AIHubMixPossiblyBilledError` says it may have been billed. GETs are retried on those.
"""

from __future__ import annotations

import email.utils
import ipaddress
import json
import logging
import random
import socket
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import httpx

from airflow_provider_aihubmix.connection import DEFAULT_BASE_URL, DEFAULT_TASKS_BASE_URL
from airflow_provider_aihubmix.exceptions import (
    AIHubMixAuthenticationError,
    AIHubMixBadRequestError,
    AIHubMixDownloadError,
    AIHubMixError,
    AIHubMixModerationError,
    AIHubMixPossiblyBilledError,
    AIHubMixQuotaError,
    AIHubMixRateLimitError,
    AIHubMixResponseError,
    AIHubMixUpstreamError,
    AIHubMixValidationError,
)
from airflow_provider_aihubmix.responses import scrub_text

if TYPE_CHECKING:
    from airflow.sdk.definitions.connection import Connection

log = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT = 10.0
# gpt-image at high quality can take ~90 s and more; a shorter read timeout would turn a slow
# success into a PossiblyBilled error.
DEFAULT_READ_TIMEOUT = 300.0
DEFAULT_WRITE_TIMEOUT = 60.0
DEFAULT_POOL_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 4
DEFAULT_BACKOFF_BASE = 1.0
DEFAULT_BACKOFF_CAP = 30.0
# A Retry-After longer than this is not slept through in a worker slot: the error is raised so
# Airflow's own task retry (which frees the slot) takes over.
DEFAULT_MAX_RETRY_AFTER = 120.0

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
USER_AGENT = "airflow-provider-aihubmix"

# Failures raised before a single byte of the request left this machine: always safe to retry.
NOT_SENT_ERRORS: tuple[type[Exception], ...] = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Failures that are bugs or configuration, never transient.
NEVER_RETRY_ERRORS: tuple[type[Exception], ...] = (
    httpx.LocalProtocolError,
    httpx.UnsupportedProtocol,
    httpx.ProxyError,
    httpx.DecodingError,
    httpx.TooManyRedirects,
)

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

Sleep = Callable[[float], Any]


def _coerce_float(name: str, value: Any, default: float) -> float:
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise AIHubMixValidationError(
            f"Connection extra '{name}' must be a number of seconds, got {value!r}"
        ) from None
    if number <= 0:
        raise AIHubMixValidationError(f"Connection extra '{name}' must be > 0, got {value!r}")
    return number


def _coerce_int(name: str, value: Any, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise AIHubMixValidationError(
            f"Connection extra '{name}' must be an integer, got {value!r}"
        ) from None
    if number < 0:
        raise AIHubMixValidationError(f"Connection extra '{name}' must be >= 0, got {value!r}")
    return number


def _coerce_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on", "y")
    return bool(value)


def normalise_base_url(url: str) -> str:
    """``aihubmix.com/v1/`` -> ``https://aihubmix.com``: users paste OpenAI-style base URLs."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = f"https://{url}"
    if url.endswith("/v1"):
        url = url[: -len("/v1")]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AIHubMixValidationError(f"AIHubMix base URL must be an http(s) URL with a host, got {url!r}")
    return url


def default_tasks_base_url(base_url: str) -> str:
    """The doc polls tasks on ``api.aihubmix.com``; any other host (a sandbox, a proxy) serves both."""
    host = urlsplit(base_url).hostname or ""
    return DEFAULT_TASKS_BASE_URL if host in ("aihubmix.com", "www.aihubmix.com") else base_url


def origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").lower(), port


def redact_url(url: str | httpx.URL) -> str:
    """Scheme, host and path only: signed URLs carry their credential in the query string."""
    parts = urlsplit(str(url))
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


@dataclass(frozen=True)
class AIHubMixSettings:
    """Everything the hook needs, resolved once from a connection or given explicitly.

    ``api_key`` is excluded from ``repr`` so a settings object can be logged or shown in a
    traceback without leaking the key.
    """

    api_key: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    tasks_base_url: str | None = None
    output_uri: str | None = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    write_timeout: float = DEFAULT_WRITE_TIMEOUT
    pool_timeout: float = DEFAULT_POOL_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    backoff_base: float = DEFAULT_BACKOFF_BASE
    backoff_cap: float = DEFAULT_BACKOFF_CAP
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER
    allow_private_image_hosts: bool = False
    conn_id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.api_key, str) or not self.api_key.strip():
            where = f"Connection {self.conn_id!r}" if self.conn_id else "AIHubMix settings"
            raise AIHubMixAuthenticationError(f"{where} has no API key: put it in the connection's password")
        object.__setattr__(self, "api_key", self.api_key.strip())
        object.__setattr__(self, "base_url", normalise_base_url(self.base_url))
        tasks = self.tasks_base_url or default_tasks_base_url(self.base_url)
        object.__setattr__(self, "tasks_base_url", normalise_base_url(tasks))

    @property
    def tasks_url(self) -> str:
        return self.tasks_base_url or self.base_url

    @property
    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(
            connect=self.connect_timeout,
            read=self.read_timeout,
            write=self.write_timeout,
            pool=self.pool_timeout,
        )

    @property
    def api_origins(self) -> frozenset[tuple[str, str, int]]:
        """The only origins the API key is ever sent to."""
        return frozenset({origin(self.base_url), origin(self.tasks_url)})

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_retries=self.max_retries,
            backoff_base=self.backoff_base,
            backoff_cap=self.backoff_cap,
            max_retry_after=self.max_retry_after,
        )

    def fingerprint(self) -> tuple[Any, ...]:
        """Identity of a pooled client: a rotated key or edited timeout must not reuse an old one."""
        return (
            hash(self.api_key),
            self.base_url,
            self.tasks_url,
            self.connect_timeout,
            self.read_timeout,
            self.write_timeout,
            self.pool_timeout,
            self.allow_private_image_hosts,
        )

    def with_overrides(self, **overrides: Any) -> AIHubMixSettings:
        changes = {k: v for k, v in overrides.items() if v is not None}
        return replace(self, **changes) if changes else self

    @classmethod
    def from_connection(
        cls, conn: Connection, *, extra_dejson: Mapping[str, Any] | None = None, **overrides: Any
    ) -> AIHubMixSettings:
        """Read host (base URL), password (API key) and the extras of an ``aihubmix`` connection.

        Extras may arrive as strings (UI form) or with the legacy ``extra__aihubmix__`` prefix.
        ``extra_dejson``: extras already parsed (async callers use ``aextra_dejson``, because
        ``conn.extra_dejson`` masks them with a sync call that must not run on a triggerer's loop).
        """
        raw_extra = extra_dejson if extra_dejson is not None else (conn.extra_dejson if conn.extra else {})
        extra: dict[str, Any] = {}
        for key, value in (raw_extra or {}).items():
            extra[key.removeprefix("extra__aihubmix__")] = value
        host = (conn.host or "").strip()
        if not host:
            base_url = DEFAULT_BASE_URL
        else:
            if "://" not in host:
                host = f"{(conn.schema or 'https').strip()}://{host}"
            if conn.port and urlsplit(host).port is None:
                parts = urlsplit(host)
                host = f"{parts.scheme}://{parts.netloc}:{conn.port}{parts.path}"
            base_url = host
        values: dict[str, Any] = {
            "api_key": conn.password or "",
            "base_url": base_url,
            "tasks_base_url": extra.get("tasks_base_url") or None,
            "output_uri": extra.get("output_uri") or None,
            "connect_timeout": _coerce_float(
                "connect_timeout", extra.get("connect_timeout"), DEFAULT_CONNECT_TIMEOUT
            ),
            "read_timeout": _coerce_float("read_timeout", extra.get("read_timeout"), DEFAULT_READ_TIMEOUT),
            "write_timeout": _coerce_float(
                "write_timeout", extra.get("write_timeout"), DEFAULT_WRITE_TIMEOUT
            ),
            "pool_timeout": _coerce_float("pool_timeout", extra.get("pool_timeout"), DEFAULT_POOL_TIMEOUT),
            "max_retries": _coerce_int("max_retries", extra.get("max_retries"), DEFAULT_MAX_RETRIES),
            "allow_private_image_hosts": _coerce_bool(extra.get("allow_private_image_hosts", False)),
            "conn_id": conn.conn_id,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


# ---------------------------------------------------------------------------------------------
# Retry decisions
# ---------------------------------------------------------------------------------------------


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), or ``None``."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter; ``jitter`` returns a float in [0, 1) (injectable)."""

    max_retries: int = DEFAULT_MAX_RETRIES
    backoff_base: float = DEFAULT_BACKOFF_BASE
    backoff_cap: float = DEFAULT_BACKOFF_CAP
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER
    jitter: Callable[[], float] = field(default=random.random, compare=False)

    def backoff(self, attempt: int) -> float:
        return self.jitter() * min(self.backoff_cap, self.backoff_base * (2**attempt))

    def delay_for(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds to sleep before the next attempt, or ``None`` when no retry is left/allowed."""
        if attempt >= self.max_retries:
            return None
        if retry_after is not None:
            return retry_after if retry_after <= self.max_retry_after else None
        return self.backoff(attempt)


@dataclass
class Exchange:
    """One logical call (possibly several attempts): what it is and how its failures are named.

    ``billable`` marks the prediction POST whose lost response must not be retried. ``kind``
    is ``"api"`` or ``"download"`` and picks the exception family for a final failure.
    """

    method: str
    url: str
    policy: RetryPolicy
    billable: bool = False
    kind: str = "api"
    secrets: tuple[str, ...] = ()
    attempts: int = 0

    @property
    def label(self) -> str:
        return f"{self.method} {redact_url(self.url)}"

    def after_response(self, response: httpx.Response) -> float | None:
        """Return the delay before a retry, or ``None`` when ``response`` is the final answer."""
        self.attempts += 1
        if response.status_code not in RETRYABLE_STATUS and not self._retryable_error_body(response):
            return None
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        delay = self.policy.delay_for(self.attempts - 1, retry_after)
        if delay is not None:
            log.warning(
                "AIHubMix %s answered HTTP %s (X-Request-Id=%s); retry %d/%d in %.1f s%s",
                self.label,
                response.status_code,
                response.headers.get("X-Request-Id", "-"),
                self.attempts,
                self.policy.max_retries,
                delay,
                " (Retry-After)" if retry_after is not None else "",
            )
        return delay

    def _retryable_error_body(self, response: httpx.Response) -> bool:
        # Errors can come with HTTP 200; a rate-limit or upstream one there is as transient as a 429.
        if self.kind != "api" or response.status_code >= 300:
            return False
        try:
            body = _decode_json(response)
        except httpx.ResponseNotRead:
            return False
        return retryable_error_body(body)

    def after_exception(self, exc: httpx.TransportError) -> float:
        """Return the delay before a retry, or raise the final, typed error for ``exc``."""
        self.attempts += 1
        name = type(exc).__name__
        if isinstance(exc, NEVER_RETRY_ERRORS):
            raise self._unreachable(exc, f"{name}: {scrub_text(str(exc), self.secrets)}")
        not_sent = isinstance(exc, NOT_SENT_ERRORS)
        if self.billable and not not_sent:
            raise AIHubMixPossiblyBilledError(
                f"The AIHubMix request {self.label} was sent but its response was lost ({name}); it may "
                "have been billed, so it is not retried automatically. Check the AIHubMix usage log "
                "before running it again"
            ) from exc
        delay = self.policy.delay_for(self.attempts - 1, None)
        if delay is None:
            raise self._unreachable(exc, f"{name} after {self.attempts} attempt(s)")
        log.warning(
            "AIHubMix %s failed with %s; retry %d/%d in %.1f s",
            self.label,
            name,
            self.attempts,
            self.policy.max_retries,
            delay,
        )
        return delay

    def _unreachable(self, exc: Exception, detail: str) -> AIHubMixError:
        if self.kind == "download":
            error: AIHubMixError = AIHubMixDownloadError(f"Could not download {self.label}: {detail}")
        else:
            error = AIHubMixUpstreamError(f"Could not reach AIHubMix for {self.label}: {detail}")
        error.__cause__ = exc
        return error


# ---------------------------------------------------------------------------------------------
# Error mapping
# ---------------------------------------------------------------------------------------------


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


def _decode_json(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content) if response.content else None
    except (ValueError, UnicodeDecodeError):
        return _NOT_JSON


_NOT_JSON = object()


def json_or_raise(
    response: httpx.Response,
    exchange: Exchange,
    *,
    status_in_body_is_not_error: bool = False,
) -> Any:
    """Return the JSON body of a final API response or raise the mapped, scrubbed error.

    An ``error`` key in an HTTP 200 body is mapped like the status it stands for. For task
    status bodies (``status_in_body_is_not_error``) an ``error`` beside a ``status`` is the task's
    own failure detail, left to the task parser.
    """
    request_id = response.headers.get("X-Request-Id") or response.headers.get("x-request-id")
    body = _decode_json(response)

    def text() -> str:
        # Only for errors: decoding a success body again would hold a second copy of a base64 image.
        return response.text if response.content else ""

    if response.status_code >= 400:
        raise error_for(
            response.status_code,
            body if body is not _NOT_JSON else None,
            request_id=request_id,
            text=text(),
            secrets=exchange.secrets,
            attempts=exchange.attempts,
        )
    if body is _NOT_JSON or body is None:
        raise AIHubMixResponseError(
            f"AIHubMix {exchange.label} answered HTTP {response.status_code} with a body that is not JSON",
            request_id=request_id,
            body_excerpt=scrub_text(text(), exchange.secrets) if response.content else None,
        )
    task_failure = status_in_body_is_not_error and isinstance(body, Mapping) and "status" in body
    if isinstance(body, Mapping) and body.get("error") and not task_failure:
        message, code, type_, _ = _error_fields(body)
        status = _status_for_error_body(code, type_, message)
        raise error_for(
            status,
            body,
            request_id=request_id,
            text=text(),
            secrets=exchange.secrets,
            attempts=exchange.attempts,
        )
    return body


def retryable_error_body(body: Any) -> bool:
    """Whether an HTTP 200 ``error`` body stands for a retryable status (429 / 5xx)."""
    if not isinstance(body, Mapping) or not body.get("error"):
        return False
    message, code, type_, _ = _error_fields(body)
    return _status_for_error_body(code, type_, message) in RETRYABLE_STATUS


# ---------------------------------------------------------------------------------------------
# Authentication that cannot leak to a foreign host
# ---------------------------------------------------------------------------------------------


class ApiKeyAuth(httpx.Auth):
    """Adds ``Authorization: Bearer`` only for the configured API origins.

    The key must never reach the vendors' storage hosts (BCE answers 400 with it and, worse, it
    would leak), so the origin check sits at the last point before the wire, redirects included.
    """

    def __init__(self, api_key: str, origins: frozenset[tuple[str, str, int]]) -> None:
        self._header = f"Bearer {api_key}"
        self._origins = origins

    def __repr__(self) -> str:
        return f"ApiKeyAuth(origins={sorted(self._origins)!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if origin(str(request.url)) in self._origins:
            request.headers["Authorization"] = self._header
        else:
            request.headers.pop("Authorization", None)
        yield request


def api_client_kwargs(settings: AIHubMixSettings) -> dict[str, Any]:
    """Keyword arguments for the pooled API client, identical for ``Client`` and ``AsyncClient``."""
    return {
        "base_url": settings.base_url,
        "auth": ApiKeyAuth(settings.api_key, settings.api_origins),
        "timeout": settings.timeout,
        "headers": {"User-Agent": USER_AGENT, "Accept": "application/json"},
        "follow_redirects": False,
        "limits": httpx.Limits(max_connections=50, max_keepalive_connections=20),
    }


def download_client_kwargs(settings: AIHubMixSettings) -> dict[str, Any]:
    """A client with no credentials at all: image hosts are third parties."""
    return {
        "timeout": settings.timeout,
        "headers": {"User-Agent": USER_AGENT},
        "follow_redirects": True,
        "max_redirects": 5,
    }


def predictions_path(model_path: str) -> str:
    return f"/v1/models/{quote(model_path, safe='/:._-')}/predictions"


def task_url(settings: AIHubMixSettings, task_id: str) -> str:
    return f"{settings.tasks_url}/v1/tasks/{quote(task_id, safe='')}"


# ---------------------------------------------------------------------------------------------
# SSRF guard for image downloads
# ---------------------------------------------------------------------------------------------

_METADATA_HOSTS = frozenset(
    {
        "metadata.google.internal",
        "metadata.goog",
        "metadata",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.com",
        "metadata.tencentyun.com",
    }
)
_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "100.100.100.200", "fd00:ec2::254", "169.254.170.2")
)

Resolver = Callable[[str], list[str]]


def system_resolver(host: str) -> list[str]:
    """All addresses ``host`` resolves to; empty when it does not resolve (httpx will then fail)."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return [str(info[4][0]) for info in infos]


def refused_address(address: str) -> str | None:
    """Why ``address`` is not a place to fetch an image from, or ``None`` when it is.

    Loopback is allowed on purpose (the sandbox and local test servers live there); link-local
    (cloud metadata), private, shared (CGNAT, Alibaba's 100.100.100.200), multicast and reserved
    ranges are refused unless ``allow_private_image_hosts`` is set on the connection.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in _METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_loopback:
        return None
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        return "a non-routable address"
    if ip.is_private or (
        isinstance(ip, ipaddress.IPv4Address) and ip in ipaddress.ip_network("100.64.0.0/10")
    ):
        return "a private-network address"
    return None


def check_download_url(url: str, addresses: list[str] | None, *, allow_private: bool) -> None:
    """Raise :class:`AIHubMixDownloadError` when ``url`` may not be fetched (scheme, host, address).

    ``addresses`` are what the host resolved to (``None``: not resolved, e.g. a literal IP).
    """
    parts = urlsplit(url)
    shown = redact_url(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise AIHubMixDownloadError(f"Refusing to download {shown!r}: only http and https URLs are fetched")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise AIHubMixDownloadError(f"Refusing to download {shown!r}: the URL has no host")
    if allow_private:
        return
    if host in _METADATA_HOSTS:
        raise AIHubMixDownloadError(
            f"Refusing to download {shown!r}: {host} is a cloud metadata host (set the connection extra "
            "allow_private_image_hosts to opt out)"
        )
    for address in [host, *(addresses or [])]:
        reason = refused_address(address)
        if reason:
            what = f"{host} is" if address == host else f"{host} resolves to {address},"
            raise AIHubMixDownloadError(
                f"Refusing to download {shown!r}: {what} {reason} (set the connection extra "
                "allow_private_image_hosts to opt out)"
            )


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Download accounting
# ---------------------------------------------------------------------------------------------


def download_error_for_status(response: httpx.Response, url: str, attempts: int) -> AIHubMixDownloadError:
    shown = redact_url(url)
    status = response.status_code
    if status in (403, 404, 410):
        return AIHubMixDownloadError(
            f"Image URL {shown} is expired or missing (signed URLs expire: AIHubMix task results after "
            "~10 minutes, Seedream after 24 h)",
            status_code=status,
        )
    retried = f" after {attempts} attempts" if attempts > 1 else ""
    return AIHubMixDownloadError(f"Image download {shown} failed{retried}", status_code=status)


class DownloadTruncatedError(AIHubMixDownloadError):
    """The body ended short of its Content-Length: a whole-download retry may succeed."""

    def __init__(self, message: str, *, retryable: bool = True, **kwargs: Any) -> None:
        # Retryable by default: the engine re-downloads only errors that say so.
        super().__init__(message, retryable=retryable, **kwargs)


@dataclass
class ByteBudget:
    """Counts a download's bytes; refuses more than ``max_bytes`` and fewer than Content-Length."""

    url: str
    content_length: int | None
    max_bytes: int | None
    received: int = 0

    def __post_init__(self) -> None:
        if (
            self.max_bytes is not None
            and self.content_length is not None
            and self.content_length > self.max_bytes
        ):
            raise AIHubMixDownloadError(
                f"Image {redact_url(self.url)} is {self.content_length} bytes, over the limit of "
                f"{self.max_bytes} bytes"
            )

    def add(self, chunk: bytes) -> bytes:
        self.received += len(chunk)
        if self.max_bytes is not None and self.received > self.max_bytes:
            raise AIHubMixDownloadError(
                f"Image {redact_url(self.url)} exceeds the limit of {self.max_bytes} bytes"
            )
        return chunk

    def finish(self, raw_bytes: int) -> None:
        """``raw_bytes`` is what came over the wire (``Content-Length`` counts encoded bytes)."""
        if self.content_length is not None and raw_bytes != self.content_length:
            raise DownloadTruncatedError(
                f"Image {redact_url(self.url)} was truncated: received {raw_bytes} of "
                f"{self.content_length} bytes"
            )

    def truncated(self, exc: Exception) -> DownloadTruncatedError:
        expected = f" of {self.content_length}" if self.content_length is not None else ""
        error = DownloadTruncatedError(
            f"Image {redact_url(self.url)} was truncated: the connection ended after {self.received}"
            f"{expected} bytes ({type(exc).__name__})"
        )
        error.__cause__ = exc
        return error


def content_length_of(response: httpx.Response) -> int | None:
    value = response.headers.get("Content-Length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


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
