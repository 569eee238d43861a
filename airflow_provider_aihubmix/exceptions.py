"""Typed errors. Every message is safe to log: no API key, no signed URL query string."""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_aihubmix.catalog import UnknownModelError


class AIHubMixError(Exception):
    """Base class for everything this provider raises about AIHubMix."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        request_id: str | None = None,
        code: str | None = None,
        param: str | None = None,
        body_excerpt: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.request_id = request_id
        self.code = code
        self.param = param
        self.body_excerpt = body_excerpt
        parts = [message]
        if status_code is not None:
            parts.append(f"HTTP {status_code}")
        if code:
            parts.append(f"code={code}")
        if param:
            parts.append(f"param={param}")
        if request_id:
            parts.append(f"X-Request-Id={request_id}")
        if body_excerpt:
            parts.append(f"body: {body_excerpt}")
        super().__init__(" | ".join(parts))
        self.message = message


class AIHubMixValidationError(AIHubMixError, ValueError):
    """Bad input found before any HTTP call; the message names the parameter and what is allowed."""


class AIHubMixAuthenticationError(AIHubMixError):
    """401: the API key is missing or invalid."""


class AIHubMixQuotaError(AIHubMixError):
    """403: balance exhausted or the key may not use this model."""


class AIHubMixBadRequestError(AIHubMixError):
    """400: the API rejected the input."""


class AIHubMixModerationError(AIHubMixBadRequestError):
    """The prompt or the image was refused by moderation."""


class AIHubMixRateLimitError(AIHubMixError):
    """429 after the retry budget was spent."""


class AIHubMixUpstreamError(AIHubMixError):
    """5xx or no channel for the model, after the retry budget was spent."""


class AIHubMixPossiblyBilledError(AIHubMixError):
    """A billable POST was sent but its response was lost; retrying blindly could pay twice."""


class AIHubMixResponseError(AIHubMixError):
    """Malformed JSON or a response shape nothing here recognises."""


class AIHubMixTaskFailedError(AIHubMixError):
    """An async task ended in Error, Failed, moderation or Task not found."""


# AirflowException's class-level HTTP ``status_code`` differs in type from ours; ours wins by MRO.
class AIHubMixTaskModeratedError(AIHubMixTaskFailedError, AirflowFailException):  # type: ignore[misc]
    """An async task ended Request/Content Moderated. Airflow does not retry it: the same input
    would be judged the same way, and every resubmission is a new billed task."""


class AIHubMixTaskTimeoutError(AIHubMixError):
    """An async task did not finish before its wall-clock deadline."""


class AIHubMixDownloadError(AIHubMixError):
    """An image URL could not be downloaded completely (expired, truncated, too large, refused).

    ``retryable`` is true where another download may succeed (a truncated body, a reset),
    false where it cannot (expired or missing URL, refused host, over the size cap).
    """

    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool = False, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retryable = retryable


__all__ = [
    "AIHubMixAuthenticationError",
    "AIHubMixBadRequestError",
    "AIHubMixDownloadError",
    "AIHubMixError",
    "AIHubMixModerationError",
    "AIHubMixPossiblyBilledError",
    "AIHubMixQuotaError",
    "AIHubMixRateLimitError",
    "AIHubMixResponseError",
    "AIHubMixTaskFailedError",
    "AIHubMixTaskModeratedError",
    "AIHubMixTaskTimeoutError",
    "AIHubMixUpstreamError",
    "AIHubMixValidationError",
    "UnknownModelError",
]
