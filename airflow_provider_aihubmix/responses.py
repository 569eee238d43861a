"""Every response shape AIHubMix returns, normalised to one list of images or a task handle.

Shapes differ by family and are partly undocumented, so the parsers here are tolerant:
they accept every shape in the API reference and raise :class:`AIHubMixResponseError`
(with an excerpt, never a secret) only when nothing recognisable is present.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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


class GeneratedImage(BaseModel):
    """One image from a response: inline bytes or a URL to download (never both required)."""

    model_config = ConfigDict(frozen=True)

    data: bytes | None = None
    url: str | None = None
    content_type: str | None = None  # the label the API gave; storage sniffs the bytes anyway
    seed: int | None = None
    revised_prompt: str | None = None


class TaskHandle(BaseModel):
    """What an async submit returns. ``polling_url`` points at the upstream vendor: record only."""

    model_config = ConfigDict(frozen=True)

    task_id: str
    polling_url: str | None = None


class PredictionResult(BaseModel):
    """A normalised prediction: images for sync models, a task handle for async ones."""

    images: list[GeneratedImage] = Field(default_factory=list)
    task: TaskHandle | None = None
    usage: dict[str, Any] | None = None
    request_id: str | None = None

    @property
    def is_async(self) -> bool:
        return self.task is not None


class TaskState(BaseModel):
    """A polled async task."""

    task_id: str
    status: TaskStatus
    raw_status: str
    result_urls: list[str] = Field(default_factory=list)
    progress: float | None = None
    message: str | None = None
