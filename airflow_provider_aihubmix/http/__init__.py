"""HTTP rules shared by the sync and async hook: settings, retries, error mapping, SSRF guard.

Everything that decides something lives once in a small module of this package;
:mod:`airflow_provider_aihubmix.hooks.aihubmix` only runs the two thin loops (``time.sleep`` /
``asyncio.sleep``) around these decisions. Import from here: the modules' layout may change.
Imports run one way inside the package (``errors`` <- ``retries`` <- ``settings``; nothing here
imports the hook).

* ``http.settings`` — :class:`AIHubMixSettings` from a connection; base URLs, timeouts.
* ``http.retries`` — :class:`RetryPolicy` and :class:`RetryState`: what is retried and when
  a lost answer to a billable POST becomes :class:`AIHubMixPossiblyBilledError`.
* ``http.errors`` — a final response becomes its JSON body or a typed, scrubbed error.
* ``http.auth`` — the API key header, sent to the API origins only; client keyword arguments.
* ``http.clients`` — the pooled API, prediction and download clients (:func:`build_client`).
* ``http.ssrf`` — which URLs and addresses an image may be downloaded from.
* ``http.downloads`` — size caps and truncation of a streamed download; the open image
  responses the hook hands out.
* ``http.sends`` — the triggerer's send loop: a prediction's answer streamed to a spool.
"""

from __future__ import annotations

from airflow_provider_aihubmix.connection import DEFAULT_BASE_URL, DEFAULT_TASKS_BASE_URL
from airflow_provider_aihubmix.exceptions import DownloadTruncatedError
from airflow_provider_aihubmix.http.auth import (
    GEMINI_KEY_HEADER,
    GEMINI_PATH_MARKER,
    USER_AGENT,
    ApiKeyAuth,
    api_client_kwargs,
    download_client_kwargs,
)
from airflow_provider_aihubmix.http.downloads import ByteBudget, content_length_of, download_error_for_status
from airflow_provider_aihubmix.http.errors import (
    RETRYABLE_STATUS,
    error_for,
    json_or_raise,
    models_from_body,
    retryable_error_body,
)
from airflow_provider_aihubmix.http.retries import (
    DEFAULT_BACKOFF_BASE,
    DEFAULT_BACKOFF_CAP,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_AFTER,
    NEVER_RETRY_ERRORS,
    NOT_SENT_ERRORS,
    AsyncSleep,
    RetryPolicy,
    RetryState,
    Sleep,
    parse_retry_after,
)
from airflow_provider_aihubmix.http.settings import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_POOL_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_WRITE_TIMEOUT,
    AIHubMixSettings,
    default_tasks_base_url,
    normalise_base_url,
    origin,
    task_url,
)
from airflow_provider_aihubmix.http.ssrf import (
    Resolver,
    check_download_url,
    is_ip_literal,
    is_loopback_host,
    refused_address,
    system_resolver,
)
from airflow_provider_aihubmix.redaction import redact_url, scrub_text
from airflow_provider_aihubmix.schemas.wire import predictions_path

__all__ = [
    "DEFAULT_BACKOFF_BASE",
    "DEFAULT_BACKOFF_CAP",
    "DEFAULT_BASE_URL",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_MAX_RETRY_AFTER",
    "DEFAULT_POOL_TIMEOUT",
    "DEFAULT_READ_TIMEOUT",
    "DEFAULT_TASKS_BASE_URL",
    "DEFAULT_WRITE_TIMEOUT",
    "GEMINI_KEY_HEADER",
    "GEMINI_PATH_MARKER",
    "NEVER_RETRY_ERRORS",
    "NOT_SENT_ERRORS",
    "RETRYABLE_STATUS",
    "USER_AGENT",
    "AIHubMixSettings",
    "ApiKeyAuth",
    "AsyncSleep",
    "ByteBudget",
    "DownloadTruncatedError",
    "Resolver",
    "RetryPolicy",
    "RetryState",
    "Sleep",
    "api_client_kwargs",
    "check_download_url",
    "content_length_of",
    "default_tasks_base_url",
    "download_client_kwargs",
    "download_error_for_status",
    "error_for",
    "is_ip_literal",
    "is_loopback_host",
    "json_or_raise",
    "models_from_body",
    "normalise_base_url",
    "origin",
    "parse_retry_after",
    "predictions_path",
    "redact_url",
    "refused_address",
    "retryable_error_body",
    "scrub_text",
    "system_resolver",
    "task_url",
]
