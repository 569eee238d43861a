"""The status of an async task, folded from the many spellings the API and its upstreams use."""

from __future__ import annotations

import re
from enum import Enum
from typing import Any

# BFL's task store may answer "Task not found" for an id its submit endpoint just returned. For
# this long (seconds) after the recorded submit time, not-found is read as "still pending".
DEFAULT_NOT_FOUND_GRACE = 60.0


class TaskStatus(str, Enum):
    """Status of an async task, folded from the many spellings the API uses."""

    PENDING = "pending"
    RUNNING = "running"
    READY = "ready"
    ERROR = "error"
    FAILED = "failed"
    REQUEST_MODERATED = "request_moderated"
    CONTENT_MODERATED = "content_moderated"
    NOT_FOUND = "not_found"

    @property
    def is_terminal(self) -> bool:
        return self not in (TaskStatus.PENDING, TaskStatus.RUNNING)

    @property
    def is_success(self) -> bool:
        return self is TaskStatus.READY

    @property
    def is_moderated(self) -> bool:
        return self in (TaskStatus.REQUEST_MODERATED, TaskStatus.CONTENT_MODERATED)


_STATUS_WORDS: dict[str, TaskStatus] = {
    "pending": TaskStatus.PENDING,
    "queued": TaskStatus.PENDING,
    "in queue": TaskStatus.PENDING,
    "waiting": TaskStatus.PENDING,
    "submitted": TaskStatus.PENDING,
    "created": TaskStatus.PENDING,
    "starting": TaskStatus.PENDING,
    "generating": TaskStatus.RUNNING,
    "running": TaskStatus.RUNNING,
    "processing": TaskStatus.RUNNING,
    "in progress": TaskStatus.RUNNING,
    "ready": TaskStatus.READY,
    "succeeded": TaskStatus.READY,
    "success": TaskStatus.READY,
    "successful": TaskStatus.READY,
    "completed": TaskStatus.READY,
    "complete": TaskStatus.READY,
    "done": TaskStatus.READY,
    "finished": TaskStatus.READY,
    "error": TaskStatus.ERROR,
    "failed": TaskStatus.FAILED,
    "failure": TaskStatus.FAILED,
    "fail": TaskStatus.FAILED,
    "cancelled": TaskStatus.FAILED,
    "canceled": TaskStatus.FAILED,
    "request moderated": TaskStatus.REQUEST_MODERATED,
    "content moderated": TaskStatus.CONTENT_MODERATED,
    "moderated": TaskStatus.CONTENT_MODERATED,
    "task not found": TaskStatus.NOT_FOUND,
    "not found": TaskStatus.NOT_FOUND,
}


def status_from_string(status: Any) -> TaskStatus:
    """Fold the API's status spellings (``Ready``, ``succeeded``, ``Content Moderated``...) to one enum.

    The reference says anything unrecognised means "still running", so an unknown word is RUNNING
    rather than an error: a new intermediate status upstream must not fail a healthy task.
    """
    if not isinstance(status, str):
        return TaskStatus.RUNNING
    key = re.sub(r"[\s_-]+", " ", status.strip().lower())
    found = _STATUS_WORDS.get(key)
    if found is not None:
        return found
    if "moderat" in key:
        return TaskStatus.REQUEST_MODERATED if "request" in key else TaskStatus.CONTENT_MODERATED
    if "not found" in key:
        return TaskStatus.NOT_FOUND
    return TaskStatus.RUNNING
