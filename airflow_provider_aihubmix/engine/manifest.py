"""The ``manifest.json`` written beside a task instance's images.

It is what makes retries safe: the request fingerprint says whether a stored result
answers the same request, the status says how far the last attempt got, and the
recorded remote task ids let a retry re-attach to work already paid for. Once the API
has answered, the images it promised are recorded (``received``) before any is stored, so
a retry finishes from the stored objects or downloads again instead of buying again.

The states and the moves between them (:data:`TRANSITIONS`; anything else raises
:class:`ManifestTransitionError`)::

    (new) ─> submitting ─┬─> submitted ─┬─> received ─> complete
                         │              └─> failed
                         ├─> received ─> complete
                         ├─> failed            (the API refused: nothing billed)
                         └─> ambiguous         (the answer was lost: maybe billed)
    ambiguous ─> received | submitted | failed (an unreadable answer, saved, read by a later run)
    (new) ─> submitted                         (the sensor collects a task submitted elsewhere)
    (new) ─> deferred ─> submitting ─> deferred (request k answered, more to send) ... ─> received
             deferred ─> deferred              (a fan-out deferred again where it stopped)
    failed ─> submitting | deferred            (a Gemini series resumed at its failed request)

Only :class:`airflow_provider_aihubmix.engine.ledger.ManifestLedger` moves a stored manifest: it records
the attempt and saves in one step.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from pydantic import BaseModel, Field

from airflow_provider_aihubmix.exceptions import ManifestTransitionError
from airflow_provider_aihubmix.redaction import redact_input


class ManifestStatus(str, Enum):
    SUBMITTING = "submitting"  # the billable call is about to go out or is in flight
    SUBMITTED = "submitted"  # an async task was accepted; its id is recorded
    RECEIVED = "received"  # the API answered with images; storing them (``received`` lists them)
    COMPLETE = "complete"  # every image stored and verified
    FAILED = "failed"  # the API refused the request: nothing was billed
    AMBIGUOUS = "ambiguous"  # the request may have been billed but its answer was lost
    # The request is stored beside the manifest for the triggerer to send (deferrable sync
    # models); nothing has been sent for the requests not yet answered.
    DEFERRED = "deferred"


# Where a new manifest may start: buying (operators) or collecting a task bought elsewhere (sensor).
# The money rule every reader shares: a manifest in one of these states stands for a request that
# may already be billed -- a retry never sends it again, and the DAG budget counts its estimate.
MAY_BE_BILLED = frozenset(
    {ManifestStatus.SUBMITTING, ManifestStatus.SUBMITTED, ManifestStatus.RECEIVED, ManifestStatus.AMBIGUOUS}
)

# Deferrable sync models start ``deferred``: the request is stored for the triggerer to send.
INITIAL_STATES = frozenset({ManifestStatus.SUBMITTING, ManifestStatus.SUBMITTED, ManifestStatus.DEFERRED})
TRANSITIONS: dict[ManifestStatus, frozenset[ManifestStatus]] = {
    ManifestStatus.DEFERRED: frozenset({ManifestStatus.DEFERRED, ManifestStatus.SUBMITTING}),
    ManifestStatus.SUBMITTING: frozenset(
        {
            ManifestStatus.SUBMITTED,
            ManifestStatus.RECEIVED,
            ManifestStatus.FAILED,
            ManifestStatus.AMBIGUOUS,
            ManifestStatus.DEFERRED,  # the triggerer's request k answered, more left to send
        }
    ),
    ManifestStatus.SUBMITTED: frozenset({ManifestStatus.RECEIVED, ManifestStatus.FAILED}),
    # received -> received: a finished task's results fetched and recorded again (a replayed event).
    ManifestStatus.RECEIVED: frozenset({ManifestStatus.RECEIVED, ManifestStatus.COMPLETE}),
    ManifestStatus.COMPLETE: frozenset(),
    # A one-image-per-request series (Gemini) that failed at request k keeps requests 0..k-1:
    # a retry sends request k again, from the worker (submitting) or the triggerer (deferred).
    ManifestStatus.FAILED: frozenset({ManifestStatus.SUBMITTING, ManifestStatus.DEFERRED}),
    # An unreadable answer saved beside the manifest, read later by a reader that understands it:
    # images (received), a task id (submitted) or a safety verdict (failed). Never submitting.
    ManifestStatus.AMBIGUOUS: frozenset(
        {ManifestStatus.RECEIVED, ManifestStatus.SUBMITTED, ManifestStatus.FAILED}
    ),
}


@dataclass(frozen=True)
class TaskIdentity:
    """Where in Airflow a purchase happens; it fixes the storage prefix and the manifest's owner."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> TaskIdentity:
        ti = context["ti"]
        map_index = getattr(ti, "map_index", -1)
        return cls(
            dag_id=ti.dag_id,
            run_id=context.get("run_id") or ti.run_id,
            task_id=ti.task_id,
            map_index=map_index if isinstance(map_index, int) else -1,
            try_number=int(getattr(ti, "try_number", 1) or 1),
        )


class RemoteTask(BaseModel):
    task_id: str
    polling_url: str | None = None
    submitted_at: str


class ReceivedImage(BaseModel):
    """One image the API answered with, recorded before storing so a retry can finish without buying.

    Inline (base64) images cannot be fetched again: their key and hash are recorded so a
    retry recognises the stored object. URL images can: the URL is kept until the task
    completes (it is a signed vendor URL, so it is dropped from the complete manifest).
    """

    index: int
    key: str | None = None
    sha256: str | None = None
    url: str | None = None
    seed: int | None = None
    revised_prompt: str | None = None
    # Models that make one image per request (Gemini): which of the n requests bought it.
    request_index: int | None = None
    commentary: str | None = None


class SendMarker(BaseModel):
    """Written by the triggerer *before* it sends request ``request``; cleared when its answer
    is recorded. A trigger that starts (again) and finds one never sends: the earlier run may
    have been billed."""

    request: int
    at: str
    trigger_run: str


class Interruption(BaseModel):
    """A triggerer that ended while request ``request`` was in flight (sent, answer not recorded).

    ``cause``: ``graceful stop`` (the triggerer was told to stop; it kept the request running and
    recorded this at the signal), ``crash`` (it ended without one -- SIGKILL, out of memory, a
    lost node -- found by the next trigger run), or ``user action`` (the task was cleared or
    marked while the request was out). ``at``: when it was seen; ``in_flight_s``: seconds the
    request had been out by then. ``hold_until``: a graceful stop's promise -- the stopping
    process records the answer until then, so the next trigger run waits for it instead of
    calling the request lost.
    """

    cause: str
    at: str
    request: int
    trigger_run: str
    sent_at: str
    in_flight_s: float
    hold_until: str | None = None


class Attempt(BaseModel):
    try_number: int
    at: str
    status: ManifestStatus
    request_id: str | None = None
    error: str | None = None
    # The typed error's class name (exceptions module), so a re-delivered failure raises the same type.
    error_type: str | None = None


class Manifest(BaseModel):
    version: int = 1
    status: ManifestStatus
    fingerprint: str
    model: str
    family: str
    input: dict[str, Any]
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int
    records: list[dict[str, Any]] = Field(default_factory=list)
    remote_tasks: list[RemoteTask] = Field(default_factory=list)
    received: list[ReceivedImage] = Field(default_factory=list)
    usage: dict[str, Any] | None = None
    # USD: the estimate recorded before the call, the actual once the images are stored.
    estimated_cost_usd: float | None = None
    actual_cost_usd: float | None = None
    # Estimate, actual, price row (source, date) and per-image figures: cost.cost_record's shape.
    # XCom records stay as DESIGN.md fixes them.
    cost: dict[str, Any] | None = None
    timings: dict[str, Any] = Field(default_factory=dict)
    attempts: list[Attempt] = Field(default_factory=list)
    # An unreadable 2xx answer saved beside the manifest (saved_answers.ANSWER_NAME): a later run
    # of the task reads it instead of buying again.
    saved_answer: str | None = None
    # How many images the request asked for (None: unknown, e.g. a sensor collecting a task); the
    # records say how many came back, so fewer or more than asked is visible in the manifest.
    images_asked: int | None = None
    # Earlier purchases of this task instance kept under earlier/ when it bought anew (a changed
    # request, regenerate=True): {manifest, fingerprint, images, estimated_cost_usd, actual_cost_usd}.
    earlier: list[dict[str, Any]] = Field(default_factory=list)
    # Thumbnails made when the images were stored (storage.thumbnails), by image index:
    # {"0": {uri, sha256, bytes, width, height}}; an image without one gets it on first view.
    thumbnails: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # Deferrable sync models: the stored request (key beside the manifest), how many HTTP
    # requests it holds (Gemini sends one per image), how many are answered and recorded,
    # and the triggerer's send marker for the one in flight.
    request_key: str | None = None
    requests_total: int = 0
    requests_answered: int = 0
    in_flight: SendMarker | None = None
    # Every triggerer that ended with a request of this task in flight, oldest first.
    interruptions: list[Interruption] = Field(default_factory=list)

    @classmethod
    def for_task(
        cls,
        identity: TaskIdentity,
        *,
        status: ManifestStatus,
        fingerprint: str,
        model: str,
        family: str,
        input: dict[str, Any],
        remote_tasks: list[RemoteTask] | None = None,
        cost: dict[str, Any] | None = None,
        earlier: list[dict[str, Any]] | None = None,
    ) -> Manifest:
        """A new manifest owned by ``identity``, in one of :data:`INITIAL_STATES` (nothing recorded yet)."""
        if status not in INITIAL_STATES:
            raise ManifestTransitionError(f"A new manifest cannot start {status.value}")
        return cls(
            status=status,
            fingerprint=fingerprint,
            model=model,
            family=family,
            input=input,
            dag_id=identity.dag_id,
            run_id=identity.run_id,
            task_id=identity.task_id,
            map_index=identity.map_index,
            try_number=identity.try_number,
            remote_tasks=remote_tasks or [],
            # The estimate is recorded before the call: the DAG budget counts money in flight.
            estimated_cost_usd=(cost or {}).get("estimated"),
            cost=cost,
            earlier=list(earlier or []),
        )

    def task_submitted_at(self, task_id: str) -> float | None:
        """When async task ``task_id`` was submitted (wall-clock epoch seconds); None if not recorded."""
        for task in reversed(self.remote_tasks):
            if task.task_id == task_id:
                try:
                    return datetime.fromisoformat(task.submitted_at).timestamp()
                except ValueError:
                    return None
        return None

    def can_move_to(self, status: ManifestStatus) -> bool:
        """Whether :data:`TRANSITIONS` allow ``status`` next; a manifest with no attempt yet may
        also record the state it was created in."""
        return status in TRANSITIONS[self.status] or (not self.attempts and status is self.status)

    def record_attempt(
        self,
        status: ManifestStatus,
        *,
        request_id: str | None = None,
        error: str | None = None,
        error_type: str | None = None,
    ) -> None:
        """Move to ``status`` and append the attempt; raises :class:`ManifestTransitionError` for a
        move :data:`TRANSITIONS` does not allow. Does not save (the ledger does)."""
        if not self.can_move_to(status):
            raise ManifestTransitionError(
                f"Manifest of {self.dag_id}.{self.task_id} (map_index {self.map_index}) cannot go from "
                f"{self.status.value} to {status.value}"
            )
        self.status = status
        self.attempts.append(
            Attempt(
                try_number=self.try_number,
                at=utcnow(),
                status=status,
                request_id=request_id,
                error=error,
                error_type=error_type,
            )
        )


def utcnow() -> str:
    return datetime.now(timezone.utc).isoformat()


def fingerprint(model_path: str, input_: dict[str, Any]) -> str:
    """A stable hash of what is being bought: the model and its input, with no secrets."""
    canonical = json.dumps(
        {"model": model_path, "input": redact_input(input_)},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()
