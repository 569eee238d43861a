"""The one event each trigger yields, validated where operators and sensors read it.

:class:`TaskEvent` ends an async task's wait; :class:`PredictionEvent` ends a send from the triggerer.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from airflow_provider_aihubmix.exceptions import AIHubMixError
from airflow_provider_aihubmix.responses.shapes import TaskState


class EventStatus(str, Enum):
    """How the wait ended. Only ``FAILED`` says the remote task itself failed.

    ``ERROR`` (polling could not reach a verdict: network, auth, missing connection) and
    ``TIMEOUT`` leave the remote task recorded as submitted, so a retry re-attaches to it
    instead of buying it again.
    """

    SUCCESS = "success"
    FAILED = "failed"
    ERROR = "error"
    TIMEOUT = "timeout"

    @property
    def remote_task_may_run_on(self) -> bool:
        return self in (EventStatus.ERROR, EventStatus.TIMEOUT)


class TaskEvent(BaseModel):
    """What the triggerer hands back to the worker: enough to collect without any other state."""

    status: EventStatus
    remote_task_id: str
    task_status: str | None = None  # the raw API status, e.g. "Content Moderated"
    result_urls: list[str] = Field(default_factory=list)
    message: str | None = None
    model: str | None = None
    polls: int = 0

    @classmethod
    def from_state(cls, state: TaskState, *, model: str | None, polls: int) -> TaskEvent:
        if state.status.is_success:
            return cls(
                status=EventStatus.SUCCESS,
                remote_task_id=state.task_id,
                task_status=state.raw_status,
                result_urls=state.result_urls,
                model=model,
                polls=polls,
            )
        return cls(
            status=EventStatus.FAILED,
            remote_task_id=state.task_id,
            task_status=state.raw_status,
            message=state.message or f"AIHubMix task {state.task_id} ended with status {state.raw_status!r}",
            model=model,
            polls=polls,
        )


def validate_event(event: Any) -> TaskEvent:
    """Parse a trigger event; a malformed one is a bug or tampering, so fail loudly."""
    try:
        return TaskEvent.model_validate(event)
    except ValidationError as err:
        raise AIHubMixError(f"Malformed AIHubMix trigger event: {err.errors(include_url=False)}") from None


class PredictionEvent(BaseModel):
    """What an :class:`AIHubMixPredictionTrigger` hands back: how the send ended, never images.

    ``SUCCESS``: every answer's images are stored and recorded in the manifest. ``FAILED``:
    the API refused (nothing billed) or the send may have been billed without an answer
    (``error_type`` ``AIHubMixPossiblyBilledError``). ``TIMEOUT``: the deadline came before a
    request was sent (nothing billed for it). ``ERROR``: anything else (storage, connection).
    """

    kind: Literal["prediction"] = "prediction"
    status: EventStatus
    model: str
    images: int = 0
    sent: int = 0  # requests this trigger run sent
    message: str | None = None
    error_type: str | None = None
    status_code: int | None = None
    code: str | None = None
    request_id: str | None = None


def is_prediction_event(event: Any) -> bool:
    return isinstance(event, dict) and event.get("kind") == "prediction"


def validate_prediction_event(event: Any) -> PredictionEvent:
    try:
        return PredictionEvent.model_validate(event)
    except ValidationError as err:
        raise AIHubMixError(f"Malformed AIHubMix trigger event: {err.errors(include_url=False)}") from None
