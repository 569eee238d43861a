"""Every error this provider raises, in one module. Messages are safe to log: no API key, no
signed-URL query string, no base64 image (see :mod:`airflow_provider_aihubmix.redaction`).

The tree (``ValueError`` marks errors raised for bad input, before any billable call)::

    Exception
    ├── AIHubMixError                          status_code, request_id, code, param, body_excerpt
    │   ├── AIHubMixValidationError (ValueError)   bad input, found before any HTTP call
    │   │   └── AIHubMixBudgetExceededError (AirflowFailException)   a cost cap; never retried
    │   ├── AIHubMixAuthenticationError            401 / no API key
    │   ├── AIHubMixQuotaError                     402 / 403
    │   ├── AIHubMixBadRequestError                400 / 404 / 422
    │   │   └── AIHubMixModerationError (AirflowFailException)  refused on safety grounds
    │   │       └── AIHubMixRefusalError           Gemini blockReason / safety finishReason
    │   ├── AIHubMixRateLimitError                 429 after the retry budget
    │   ├── AIHubMixUpstreamError                  5xx / unreachable after the retry budget
    │   ├── AIHubMixPossiblyBilledError            billable POST sent, answer lost
    │   ├── AIHubMixResponseError                  a body nothing here recognises
    │   │   └── AIHubMixUnreadableAnswerError      a 2xx answer with nothing in it (saved)
    │   ├── AIHubMixTaskFailedError                an async task ended badly
    │   │   ├── AIHubMixTaskModeratedError (AirflowFailException)   never retried by Airflow
    │   │   └── AIHubMixTaskNotFoundError          unknown after the grace window
    │   ├── AIHubMixTaskTimeoutError               wall-clock deadline passed
    │   ├── AIHubMixTextOnlyError (AirflowFailException)   Gemini answered text, no image
    │   ├── AIHubMixDownloadError                  ``retryable`` says whether another try may work
    │   │   └── DownloadTruncatedError             body short of Content-Length (retryable)
    │   ├── AIHubMixStorageError                   write / verify / read of a stored object
    │   │   ├── InvalidOutputURIError (+ AIHubMixValidationError)
    │   │   ├── NotAnImageError (+ AIHubMixDownloadError)
    │   │   ├── IncompleteImageError (+ AIHubMixDownloadError)
    │   │   ├── ImageTooLargeError (+ AIHubMixDownloadError)
    │   │   ├── StoredObjectMismatchError          S3 reports another object than the one written
    │   │   ├── AtomicCreateUnsupportedError (AirflowFailException)   no create-if-absent: no DAG budget
    │   │   └── StoredImagesMissingError (AirflowFailException)   a complete run's images deleted
    │   ├── ImageNotServedError (LookupError)      the gallery serves only images a manifest records
    │   └── ManifestTransitionError                a move the manifest's state machine forbids (a bug)
    └── ValueError
        └── UnknownModelError                  defined in ``catalog`` (re-exported here): the
                                               sandbox reads the catalog without importing Airflow

Not here on purpose: the sandbox's own errors (it is a separate server that shares no client
code) and ``schemas._base.Reject``, a signal between a validator and its caller that is always
re-raised as :class:`AIHubMixValidationError`.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_aihubmix.catalog.models import UnknownModelError
from airflow_provider_aihubmix.version_compat import AirflowFailException


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


# AirflowException's class-level HTTP ``status_code`` differs in type from ours; ours wins by MRO.
class AIHubMixBudgetExceededError(AIHubMixValidationError, AirflowFailException):  # type: ignore[misc]
    """A cost cap (``max_cost_usd`` of the task, or the DAG run's budget) would be passed; nothing
    was submitted. Airflow does not retry it: the estimate and the spend so far only stay or grow."""


class AIHubMixAuthenticationError(AIHubMixError):
    """401: the API key is missing or invalid."""


class AIHubMixQuotaError(AIHubMixError):
    """403: balance exhausted or the key may not use this model."""


class AIHubMixBadRequestError(AIHubMixError):
    """400: the API rejected the input."""


# AirflowException's class-level HTTP ``status_code`` differs in type from ours; ours wins by MRO.
class AIHubMixModerationError(AIHubMixBadRequestError, AirflowFailException):  # type: ignore[misc]
    """The prompt or the image was refused by moderation: a 400 saying so, or a 200 answer whose
    only verdict is a safety refusal (Ideogram ``is_image_safe: false``, Imagen
    ``raiFilteredReason``, Gemini ``finishReason: SAFETY``...). The sync twin of
    :class:`AIHubMixTaskModeratedError`: Airflow does not retry it, the same input would be
    judged the same way."""


class AIHubMixRefusalError(AIHubMixModerationError):
    """The model refused in an HTTP 200 answer (Gemini ``promptFeedback.blockReason``, or a safety
    ``finishReason`` with no image). ``param`` holds the reason, ``code`` ``request_moderated`` or
    ``content_moderated``. Airflow does not retry it: the same input gets the same verdict."""


class AIHubMixTextOnlyError(AIHubMixError, AirflowFailException):  # type: ignore[misc]
    """The model answered with text and no image (its first line is quoted). Not retried by
    Airflow: the answer was billed, and the same prompt tends to get the same reply."""


class AIHubMixRateLimitError(AIHubMixError):
    """429 after the retry budget was spent."""


class AIHubMixUpstreamError(AIHubMixError):
    """5xx or no channel for the model, after the retry budget was spent."""


class AIHubMixPossiblyBilledError(AIHubMixError):
    """A billable POST was sent but its response was lost; retrying blindly could pay twice."""


class AIHubMixResponseError(AIHubMixError):
    """Malformed JSON or a response shape nothing here recognises."""


class AIHubMixUnreadableAnswerError(AIHubMixResponseError):
    """A 2xx answer, possibly paid for, in which nothing finds an image, a task id or a verdict.

    ``body`` is the decoded answer, or ``text`` the answer that is not JSON (an HTML page, a body cut
    short), kept out of the message (it may hold signed URLs) so the caller can save it beside the
    manifest; ``saved_uri`` names where it was saved, once it is.
    """

    def __init__(self, message: str, *, body: Any = None, text: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.body = body
        self.text = text
        self.saved_uri: str | None = None


class AIHubMixTaskFailedError(AIHubMixError):
    """An async task ended in Error, Failed, moderation or Task not found."""


# AirflowException's class-level HTTP ``status_code`` differs in type from ours; ours wins by MRO.
class AIHubMixTaskModeratedError(AIHubMixTaskFailedError, AirflowFailException):  # type: ignore[misc]
    """An async task ended Request/Content Moderated. Airflow does not retry it: the same input
    would be judged the same way, and every resubmission is a new billed task."""


class AIHubMixTaskNotFoundError(AIHubMixTaskFailedError):
    """The task store still did not know a submitted task id after the grace window. The task
    stays recorded in the manifest (an Airflow retry re-attaches, it never submits again)."""


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


class DownloadTruncatedError(AIHubMixDownloadError):
    """The body ended short of its Content-Length: a whole-download retry may succeed."""

    def __init__(self, message: str, *, retryable: bool = True, **kwargs: Any) -> None:
        # Retryable by default: the engine re-downloads only errors that say so.
        super().__init__(message, retryable=retryable, **kwargs)


class AIHubMixStorageError(AIHubMixError):
    """An image or manifest could not be written, verified or read (after the retry budget)."""


class InvalidOutputURIError(AIHubMixStorageError, AIHubMixValidationError):
    """``output_uri`` (or a key under it) is malformed or could escape its prefix."""


class NotAnImageError(AIHubMixStorageError, AIHubMixDownloadError):
    """The bytes carry no known image signature: nothing is stored under an image name."""


class IncompleteImageError(AIHubMixStorageError, AIHubMixDownloadError):
    """The stream ended before the announced size: a truncated image is never stored."""


class ImageTooLargeError(AIHubMixStorageError, AIHubMixDownloadError):
    """The stream or object is larger than the caller's limit."""


class StoredObjectMismatchError(AIHubMixStorageError):
    """The object S3 reports after a write is not the one written (retried as a transient failure)."""


# AirflowException's class-level HTTP ``status_code`` differs in type from ours; ours wins by MRO.
class AtomicCreateUnsupportedError(AIHubMixStorageError, AirflowFailException):  # type: ignore[misc]
    """The store cannot create an object only if it is absent (or answers as if it had while ignoring
    the condition), so the DAG budget's reservations cannot be ordered there; the message names the
    store. Nothing is sent. The per-task ``max_cost_usd`` still works on every store."""


# AirflowException's class-level HTTP ``status_code`` differs in type from ours; ours wins by MRO.
class StoredImagesMissingError(AIHubMixStorageError, AirflowFailException):  # type: ignore[misc]
    """A complete manifest's images are no longer in storage. Nothing is bought: a retry cannot bring
    them back (the signed URLs were dropped on completion); restore them or set ``regenerate=True``."""


class ImageNotServedError(AIHubMixError, LookupError):
    """The gallery was asked for an image its task instance's manifest does not record under its prefix."""


class ManifestTransitionError(AIHubMixError):
    """A manifest was asked to move between states its state machine does not allow.

    Always a bug in the engine, never bad input: the "never pay twice" rule depends on the order
    of manifest writes (see :data:`airflow_provider_aihubmix.engine.manifest.TRANSITIONS`).
    """


__all__ = [
    "AIHubMixAuthenticationError",
    "AIHubMixBadRequestError",
    "AIHubMixBudgetExceededError",
    "AIHubMixDownloadError",
    "AIHubMixError",
    "AIHubMixModerationError",
    "AIHubMixPossiblyBilledError",
    "AIHubMixQuotaError",
    "AIHubMixRateLimitError",
    "AIHubMixRefusalError",
    "AIHubMixResponseError",
    "AIHubMixStorageError",
    "AIHubMixTaskFailedError",
    "AIHubMixTaskModeratedError",
    "AIHubMixTaskNotFoundError",
    "AIHubMixTaskTimeoutError",
    "AIHubMixTextOnlyError",
    "AIHubMixUnreadableAnswerError",
    "AIHubMixUpstreamError",
    "AIHubMixValidationError",
    "AtomicCreateUnsupportedError",
    "DownloadTruncatedError",
    "ImageNotServedError",
    "ImageTooLargeError",
    "IncompleteImageError",
    "InvalidOutputURIError",
    "ManifestTransitionError",
    "NotAnImageError",
    "StoredImagesMissingError",
    "StoredObjectMismatchError",
    "UnknownModelError",
]
