"""The ``manifest.json`` of one task instance, and the only place a stored manifest changes state.

Each transition method sets what its state records, appends the attempt (checked against
:data:`airflow_provider_aihubmix.engine.manifest.TRANSITIONS`) and saves, in that order and in one call:
the "never pay twice" rule rests on which state is on disk when a worker dies, so no caller may
record without saving or save a half-made move.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_aihubmix import metrics
from airflow_provider_aihubmix.engine.manifest import (
    Interruption,
    Manifest,
    ManifestStatus,
    ReceivedImage,
    RemoteTask,
    SendMarker,
    utcnow,
)
from airflow_provider_aihubmix.storage import manifest_key

if TYPE_CHECKING:
    from airflow_provider_aihubmix.responses.shapes import TaskHandle
    from airflow_provider_aihubmix.storage import ObjectStore


class ManifestLedger:
    """Reads, saves and moves the manifest at ``<prefix>/manifest.json`` in ``store``.

    ``manifest`` is the one last saved, or adopted by a retry that reuses it: what lineage and
    the run summary report.
    """

    def __init__(self, store: ObjectStore, prefix: str) -> None:
        self.store = store
        self.key = manifest_key(prefix)
        self.manifest: Manifest | None = None
        self._sent_at: float | None = None  # monotonic time of this process's last ``submitting``
        # Thumbnails made in this process, by image index: every save records them in the manifest.
        self.thumbnails: dict[str, dict[str, Any]] = {}

    @property
    def uri(self) -> str:
        return self.store.uri_for(self.key)

    def load(self) -> Manifest | None:
        raw = self.store.read_json(self.key)
        return Manifest.model_validate(raw) if raw else None

    def save(self, manifest: Manifest) -> None:
        """Write ``manifest`` as it is (progress within a state, or a test's hand-made one)."""
        if self.thumbnails:
            manifest.thumbnails = {**manifest.thumbnails, **self.thumbnails}
        self.store.write_json(self.key, manifest.model_dump(mode="json"))
        self.manifest = manifest

    def adopt(self, manifest: Manifest, try_number: int) -> Manifest:
        """Take over a manifest an earlier try left, for this try; nothing is written yet."""
        manifest.try_number = try_number
        self.manifest = manifest
        return manifest

    def _move(
        self,
        manifest: Manifest,
        status: ManifestStatus,
        changes: dict[str, Any] | None = None,
        *,
        request_id: str | None = None,
        error: str | None = None,
        error_type: str | None = None,
    ) -> None:
        # Checked first, so a refused move leaves the manifest untouched in memory and on disk.
        if not manifest.can_move_to(status):
            manifest.record_attempt(status)  # raises ManifestTransitionError naming both states
        for name, value in (changes or {}).items():
            setattr(manifest, name, value)
        before = manifest.status
        manifest.record_attempt(status, request_id=request_id, error=error, error_type=error_type)
        self.save(manifest)
        self._emit(manifest, before, status, error_type)

    def _emit(
        self, manifest: Manifest, before: ManifestStatus, status: ManifestStatus, error_type: str | None
    ) -> None:
        """The metrics a recorded move means (``airflow_provider_aihubmix.metrics``): after the save,
        so a metric never counts what the manifest does not say."""
        base = {"model": manifest.model, "family": manifest.family, "dag_id": manifest.dag_id}
        if status is ManifestStatus.SUBMITTING:
            self._sent_at = time.monotonic()
            return
        if before is ManifestStatus.SUBMITTING:
            if status is ManifestStatus.AMBIGUOUS:
                outcome = "possibly_billed"
            elif status is ManifestStatus.FAILED:
                outcome = metrics.failure_outcome(error_type, may_be_billed=False)
            else:
                outcome = "success"
            metrics.incr(metrics.REQUESTS, 1, outcome=outcome, **base)
            if self._sent_at is not None:
                elapsed = (time.monotonic() - self._sent_at) * 1000.0
                metrics.timing(metrics.REQUEST_DURATION, elapsed, outcome=outcome, **base)
                self._sent_at = None
        elif before is ManifestStatus.SUBMITTED and manifest.remote_tasks:
            waited = _seconds_since(manifest.remote_tasks[-1].submitted_at)
            if waited is not None:
                metrics.timing(metrics.TASK_WAIT, waited * 1000.0, **base)
        if status is ManifestStatus.COMPLETE:
            metrics.purchase_completed(
                **base,
                records=manifest.records,
                estimated_usd=manifest.estimated_cost_usd,
                actual_usd=manifest.actual_cost_usd,
            )

    def interrupted(self, manifest: Manifest, interruption: Interruption) -> None:
        """Record that the triggerer holding the request in flight ended (no state move)."""
        manifest.interruptions = [*manifest.interruptions, interruption]
        self.save(manifest)

    # -- transitions ----------------------------------------------------------------------------

    def deferred(self, manifest: Manifest, *, request_key: str, requests_total: int) -> None:
        """The request is stored at ``request_key`` for the triggerer to send; nothing sent yet."""
        changes = {
            "request_key": request_key,
            "requests_total": requests_total,
            "in_flight": None,
            "timings": {**manifest.timings, "deferred_at": utcnow()},
        }
        self._move(manifest, ManifestStatus.DEFERRED, changes)

    def submitting(self, manifest: Manifest, marker: SendMarker | None = None) -> None:
        """Before the billable call: a worker (or triggerer) killed mid-call leaves this trace.

        ``marker``: the triggerer's send marker for request ``marker.request``; the time of a
        fan-out's first send stays its ``submitted_at``.
        """
        timings = dict(manifest.timings)
        changes: dict[str, Any] = {"timings": timings}
        if marker is None:
            timings["submitted_at"] = utcnow()
        else:
            timings.setdefault("submitted_at", marker.at)
            changes["in_flight"] = marker
        self._move(manifest, ManifestStatus.SUBMITTING, changes)

    def submitted(
        self,
        manifest: Manifest,
        task: TaskHandle,
        *,
        usage: dict[str, Any] | None,
        request_id: str | None,
        submitted_at: str | None = None,
    ) -> None:
        """An async task was accepted: its id is recorded, so a retry re-attaches to it.

        ``submitted_at``: when the answer naming it came, if not now (a saved answer read later).
        """
        remote = RemoteTask(
            task_id=task.task_id, polling_url=task.polling_url, submitted_at=submitted_at or utcnow()
        )
        changes = {"usage": usage, "remote_tasks": [*manifest.remote_tasks, remote]}
        self._move(manifest, ManifestStatus.SUBMITTED, changes, request_id=request_id)

    def received(
        self,
        manifest: Manifest,
        images: Sequence[ReceivedImage],
        *,
        usage: dict[str, Any] | None,
        request_id: str | None,
    ) -> None:
        """The API answered with ``images``: recorded before any is stored."""
        changes: dict[str, Any] = {"received": list(images), "records": []}
        if usage is not None:
            changes["usage"] = usage
        self._move(manifest, ManifestStatus.RECEIVED, changes, request_id=request_id)

    def answered(
        self,
        manifest: Manifest,
        request: int,
        *,
        received: list[ReceivedImage],
        records: list[dict[str, Any]],
        usage: dict[str, Any] | None,
        request_id: str | None,
    ) -> None:
        """The triggerer's request ``request`` answered and its images stored where they could be:
        ``received`` when it was the last request, else ``deferred`` for the next; marker cleared."""
        answered = request + 1
        status = ManifestStatus.RECEIVED if answered >= manifest.requests_total else ManifestStatus.DEFERRED
        changes = {
            "received": received,
            "records": records,
            "usage": usage,
            "requests_answered": answered,
            "in_flight": None,
        }
        self._move(manifest, status, changes, request_id=request_id)

    def complete(
        self,
        manifest: Manifest,
        records: list[dict[str, Any]],
        *,
        cost: dict[str, Any],
        request_id: str | None,
    ) -> None:
        """Every image stored and verified; signed vendor URLs are dropped, no longer needed.

        ``cost`` is ``cost.cost_record``'s shape: its ``estimated`` and ``actual`` are copied to the
        manifest's top-level ``estimated_cost_usd`` / ``actual_cost_usd``.
        """
        changes = {
            "timings": {**manifest.timings, "completed_at": utcnow()},
            "records": records,
            "received": [item.model_copy(update={"url": None}) for item in manifest.received],
            "estimated_cost_usd": cost.get("estimated"),
            "actual_cost_usd": cost.get("actual"),
            "cost": cost,
        }
        self._move(manifest, ManifestStatus.COMPLETE, changes, request_id=request_id)

    def failed(
        self,
        manifest: Manifest,
        *,
        error: str | None,
        request_id: str | None = None,
        error_type: str | None = None,
    ) -> None:
        """The API refused the request or the task failed: nothing was billed for images.

        ``error_type``: the typed error's class name, so a re-delivered failure raises the same type.
        """
        self._move(
            manifest,
            ManifestStatus.FAILED,
            {"in_flight": None},
            request_id=request_id,
            error=error,
            error_type=error_type,
        )

    def ambiguous(
        self,
        manifest: Manifest,
        *,
        error: str,
        request_id: str | None,
        error_type: str | None = None,
        saved_answer: str | None = None,
    ) -> None:
        """The request may have been billed but its answer was lost or unreadable.

        ``saved_answer``: the unreadable answer's file beside the manifest (a later run reads it).
        """
        changes: dict[str, Any] = {"in_flight": None}
        if saved_answer is not None:
            changes["saved_answer"] = saved_answer
        self._move(
            manifest,
            ManifestStatus.AMBIGUOUS,
            changes,
            request_id=request_id,
            error=error,
            error_type=error_type,
        )


def _seconds_since(stamp: str) -> float | None:
    try:
        then = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    if then.tzinfo is None:
        then = then.replace(tzinfo=timezone.utc)
    return max(0.0, (datetime.now(timezone.utc) - then).total_seconds())


__all__ = ["ManifestLedger"]
