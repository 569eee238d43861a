"""Retry decisions shared by the sync and async hook loops.

Retried on every method: HTTP 429, 500, 502, 503, 504 (or an HTTP 200 ``error`` body that
stands for one) and connection failures that happen *before* the request was sent
(``ConnectError``, ``ConnectTimeout``, ``PoolTimeout``), with exponential backoff and full
jitter, capped, honouring ``Retry-After`` (seconds or HTTP date).

A 5xx *response* to a billable POST is retried too: the gateway answered, so it did not accept
the prediction (AIHubMix, like the one-api/new-api gateways it is built on, refunds its
pre-charge when the upstream fails). A lost response is different: a billable POST whose failure
happened *after* the request may have reached the gateway (``ReadTimeout``, ``ReadError``,
``RemoteProtocolError`` such as a reset with no response, ``WriteError`` / ``WriteTimeout``
because the last bytes may have arrived) is never retried: :class:`AIHubMixPossiblyBilledError`
says it may have been billed. GETs are retried on those.
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from airflow_provider_aihubmix import metrics
from airflow_provider_aihubmix.exceptions import (
    AIHubMixDownloadError,
    AIHubMixError,
    AIHubMixPossiblyBilledError,
    AIHubMixUpstreamError,
)
from airflow_provider_aihubmix.http.errors import RETRYABLE_STATUS, decode_json, retryable_error_body
from airflow_provider_aihubmix.redaction import redact_url, scrub_text

log = logging.getLogger("airflow_provider_aihubmix.http")

DEFAULT_MAX_RETRIES = 4
DEFAULT_BACKOFF_BASE = 1.0
DEFAULT_BACKOFF_CAP = 30.0
# A Retry-After longer than this is not slept through in a worker slot: the error is raised so
# Airflow's own task retry (which frees the slot) takes over.
DEFAULT_MAX_RETRY_AFTER = 120.0

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

Sleep = Callable[[float], Any]
# The async twin: ``asyncio.sleep`` unless a test passes its own.
AsyncSleep = Callable[[float], Awaitable[Any]]


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), or ``None``."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        # ``nan`` / ``inf`` parse as floats but say nothing: treat them as absent (normal back-off).
        return max(0.0, seconds) if math.isfinite(seconds) else None
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
class RetryState:
    """The retry state of one logical call (possibly several attempts): what the call is, how
    many attempts it has made, and how its failures are named.

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
            metrics.incr(metrics.RETRIES, 1, kind=self.kind, reason=str(response.status_code))
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
            body = decode_json(response)
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
        metrics.incr(metrics.RETRIES, 1, kind=self.kind, reason=name)
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
