"""Errors raised while storing or reading images; each one is also an ``AIHubMixError``."""

from __future__ import annotations

from airflow_provider_aihubmix.exceptions import (
    AIHubMixDownloadError,
    AIHubMixError,
    AIHubMixValidationError,
)


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


__all__ = [
    "AIHubMixStorageError",
    "ImageTooLargeError",
    "IncompleteImageError",
    "InvalidOutputURIError",
    "NotAnImageError",
]
