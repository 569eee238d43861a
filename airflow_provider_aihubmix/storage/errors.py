"""Errors raised while storing or reading images, defined in :mod:`airflow_provider_aihubmix.exceptions`.

Re-exported here so ``from airflow_provider_aihubmix.storage.errors import ...`` keeps working.
"""

from __future__ import annotations

from airflow_provider_aihubmix.exceptions import (
    AIHubMixStorageError,
    ImageTooLargeError,
    IncompleteImageError,
    InvalidOutputURIError,
    NotAnImageError,
    StoredObjectMismatchError,
)

__all__ = [
    "AIHubMixStorageError",
    "ImageTooLargeError",
    "IncompleteImageError",
    "InvalidOutputURIError",
    "NotAnImageError",
    "StoredObjectMismatchError",
]
