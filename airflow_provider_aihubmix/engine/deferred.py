"""Synchronous models sent by the triggerer: the stored request and the manifest around the send.

The worker validates and resolves references, then writes the request bodies beside the
manifest (``request.json``) and records the manifest as ``deferred``
(:func:`defer_purchase`); the trigger row carries only where they are. In the triggerer,
:class:`PurchaseLedger` does every blocking step of the send (called through
``asyncio.to_thread``) and keeps the manifest such that a trigger restarted from the top
never pays twice:

* ``deferred`` with ``requests_answered = k``: requests ``0..k-1`` are answered and their
  images stored; request ``k`` was never sent;
* before sending request ``k`` the ledger writes the send marker (``in_flight``, status
  ``submitting``); a run that finds a marker does not send: the earlier run may have been
  billed (``ambiguous``, :class:`AIHubMixPossiblyBilledError`);
* an answer's images are stored first, then recorded (``received`` / ``records``) and the
  marker cleared in one manifest write, so a restart finishes from stored objects;
* a refusal (4xx, moderation) is recorded ``failed`` with its error type, so a re-delivered
  failure raises the same typed error.

Gemini sends one request per image: the ledger walks them in order, each recorded before
the next is sent.

A triggerer told to stop keeps its request running and records the interruption at once
(``interruptions``: ``graceful stop``, with the time until which it holds the request); the
next run waits until then for the recorded answer and finishes from it with no request. A
marker found without one is a ``crash``: recorded as such, and the task fails saying which
happened (:meth:`PurchaseLedger.resume`).
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from airflow_provider_aihubmix import exceptions
from airflow_provider_aihubmix.engine.collection import DEFAULT_MAX_IMAGE_BYTES, ImageCollector
from airflow_provider_aihubmix.engine.ledger import ManifestLedger
from airflow_provider_aihubmix.engine.manifest import (
    Interruption,
    Manifest,
    ManifestStatus,
    SendMarker,
    TaskIdentity,
    utcnow,
)
from airflow_provider_aihubmix.engine.outcomes import SaveAnswer, record_answer, record_failure
from airflow_provider_aihubmix.engine.saved_answers import write_answer
from airflow_provider_aihubmix.exceptions import (
    AIHubMixError,
    AIHubMixPossiblyBilledError,
    AIHubMixUnreadableAnswerError,
)
from airflow_provider_aihubmix.hooks.aihubmix import AIHubMixHook
from airflow_provider_aihubmix.storage import ObjectStore, join_key, open_store

if TYPE_CHECKING:
    from airflow_provider_aihubmix.http import AIHubMixSettings
    from airflow_provider_aihubmix.http.sends import PredictionAnswer

log = logging.getLogger(__name__)

REQUEST_NAME = "request.json"

#: Interruption causes (``Manifest.interruptions``).
GRACEFUL_STOP = "graceful stop"
CRASH = "crash"
USER_ACTION = "user action"
#: How long a triggerer that was told to stop is trusted to record the answer it holds: Airflow's
#: supervisor SIGKILLs its trigger runner 20 s after SIGINT; Kubernetes may end the pod sooner.
DEFAULT_SHUTDOWN_HOLD_S = 60.0


class PreparedRequest(BaseModel):
    """One HTTP request as the hook would send it: path relative to the base URL, JSON body."""

    path: str
    body: dict[str, Any]


class StoredRequest(BaseModel):
    """``request.json``: everything the triggerer sends for one task instance, in order."""

    version: int = 1
    model: str
    requests: list[PreparedRequest] = Field(min_length=1)


def request_key(prefix: str) -> str:
    return join_key(prefix, REQUEST_NAME)


@dataclass
class Resume:
    """Where a trigger run starts: the next request to send, or an ending already recorded."""

    next_request: int = 0
    total: int = 0
    done: bool = False
    error: AIHubMixError | None = None
    images: int = 0
    #: A stopping triggerer still holds the request in flight: read the manifest again until then.
    wait_until: datetime | None = None
    waiting_for: Interruption | None = None


class PurchaseLedger:
    """The manifest and storage side of a trigger's send. Every method blocks: run it in a thread."""

    def __init__(
        self,
        *,
        settings: AIHubMixSettings,
        output_uri: str,
        output_conn_id: str | None,
        prefix: str,
        model: str,
        fingerprint: str,
        trigger_run: str,
        max_image_bytes: int | None = None,
    ) -> None:
        self.settings = settings
        self.output_uri = output_uri
        self.output_conn_id = output_conn_id
        self.prefix = prefix
        self.model = model
        self.fingerprint = fingerprint
        self.trigger_run = trigger_run
        self.max_image_bytes = max_image_bytes
        self._store: ObjectStore | None = None
        self._ledger: ManifestLedger | None = None
        self._collector: ImageCollector | None = None
        # The request's task and the trigger (recording a shutdown) may write at the same time.
        self._writing = threading.Lock()

    # -- collaborators (built lazily, in the calling thread) -----------------------------------
    @property
    def store(self) -> ObjectStore:
        if self._store is None:
            self._store = open_store(self.output_uri, aws_conn_id=self.output_conn_id)
        return self._store

    @property
    def ledger(self) -> ManifestLedger:
        """Every manifest move of the send goes through it (checked, recorded and saved together)."""
        if self._ledger is None:
            self._ledger = ManifestLedger(self.store, self.prefix)
        return self._ledger

    @property
    def manifest_key(self) -> str:
        return self.ledger.key

    @property
    def manifest_uri(self) -> str:
        return self.ledger.uri

    def collector(self, manifest: Manifest) -> ImageCollector:
        if self._collector is None:
            hook: AIHubMixHook = AIHubMixHook.from_settings(self.settings)  # no connection lookup
            identity = TaskIdentity(
                dag_id=manifest.dag_id,
                run_id=manifest.run_id,
                task_id=manifest.task_id,
                map_index=manifest.map_index,
                try_number=manifest.try_number,
            )
            self._collector = ImageCollector(
                hook=hook,
                store=self.store,
                model=self.model,
                identity=identity,
                max_image_bytes=self.max_image_bytes or DEFAULT_MAX_IMAGE_BYTES,
            )
            self._collector.ledger = self.ledger  # one ledger for every move of this send
        return self._collector

    def load(self) -> Manifest:
        manifest = self.ledger.load()
        if manifest is None:
            raise AIHubMixError(f"No manifest at {self.manifest_uri}: nothing to send for this task")
        if manifest.fingerprint != self.fingerprint:
            raise AIHubMixError(
                f"{self.manifest_uri} now records a different request (fingerprint "
                f"{manifest.fingerprint[:12]}, expected {self.fingerprint[:12]}); not sending"
            )
        return manifest

    # -- the steps ------------------------------------------------------------------------------
    def resume(self, now: datetime | None = None) -> Resume:
        """Decide from the manifest alone; an earlier run's send marker stops every send.

        A marker held by a triggerer in its graceful stop (until its ``hold_until``) is waited
        for (``wait_until``), not called lost.
        """
        with self._writing:
            return self._resume(now or datetime.now(timezone.utc))

    def _resume(self, now: datetime) -> Resume:
        manifest = self.load()
        images = len(manifest.received)
        if manifest.in_flight is not None or manifest.status in (
            ManifestStatus.SUBMITTING,
            ManifestStatus.AMBIGUOUS,
        ):
            held = holding(manifest)
            if held is not None and held.hold_until and datetime.fromisoformat(held.hold_until) > now:
                return Resume(
                    wait_until=datetime.fromisoformat(held.hold_until), waiting_for=held, images=images
                )
            return Resume(error=self._possibly_billed(manifest, now), images=images)
        if manifest.status is ManifestStatus.FAILED:
            return Resume(error=recorded_error(manifest), images=images)
        if manifest.status in (ManifestStatus.RECEIVED, ManifestStatus.COMPLETE):
            return Resume(done=True, images=images, total=manifest.requests_total)
        if manifest.status is not ManifestStatus.DEFERRED or not manifest.request_key:
            raise AIHubMixError(
                f"{self.manifest_uri} is {manifest.status.value}, not deferred: nothing to send"
            )
        return Resume(next_request=manifest.requests_answered, total=manifest.requests_total, images=images)

    def _possibly_billed(self, manifest: Manifest, now: datetime) -> AIHubMixPossiblyBilledError:
        marker = manifest.in_flight
        if manifest.status is ManifestStatus.AMBIGUOUS and marker is None:
            return recorded_error(manifest, AIHubMixPossiblyBilledError)  # type: ignore[return-value]
        where = (
            f"request {marker.request + 1} of {manifest.requests_total} at {marker.at} (trigger run "
            f"{marker.trigger_run})"
            if marker
            else "the request"
        )
        held = holding(manifest)
        if held is not None:
            cause = (
                f"The triggerer was stopped ({held.cause}) at {held.at}, {held.in_flight_s:.0f} s after it "
                f"sent {where} for model {self.model}, and its answer was not recorded before that process "
                "ended"
            )
            advice = (
                " A longer shutdown window keeps such answers (docs/DEPLOYMENT.md: the triggerer's "
                "terminationGracePeriodSeconds and the runner's 20 s)."
                if held.cause == GRACEFUL_STOP
                else ""
            )
        else:
            cause = (
                f"The triggerer sent {where} for model {self.model} but ended before its answer was recorded"
            )
            if marker is not None:
                sent = datetime.fromisoformat(marker.at)
                held = Interruption(
                    cause=CRASH,
                    at=now.isoformat(),
                    request=marker.request,
                    trigger_run=marker.trigger_run,
                    sent_at=marker.at,
                    in_flight_s=round(max(0.0, (now - sent).total_seconds()), 1),
                )
                self.ledger.interrupted(manifest, held)
                cause += " without a graceful stop (killed, out of memory or crashed)"
            advice = ""
        error = AIHubMixPossiblyBilledError(
            f"{cause}, so it may have been billed (see {self.manifest_uri}). Not sending it again; "
            f"set regenerate=True to buy a new generation.{advice}"
        )
        self.ledger.ambiguous(manifest, error=error.message, request_id=None, error_type=type(error).__name__)
        return error

    def record_interruption(self, cause: str, hold_s: float = 0.0) -> Interruption | None:
        """Record that this trigger run lost its triggerer with its request in flight.

        ``hold_s``: how long this process keeps the request running (a graceful stop). Returns
        ``None`` when no request of this run is in flight any more (its answer is recorded).
        """
        with self._writing:
            manifest = self.load()
            marker = manifest.in_flight
            if marker is None or marker.trigger_run != self.trigger_run:
                return None
            now = datetime.now(timezone.utc)
            interruption = Interruption(
                cause=cause,
                at=now.isoformat(),
                request=marker.request,
                trigger_run=marker.trigger_run,
                sent_at=marker.at,
                in_flight_s=round(max(0.0, (now - datetime.fromisoformat(marker.at)).total_seconds()), 1),
                hold_until=(now + timedelta(seconds=hold_s)).isoformat() if hold_s > 0 else None,
            )
            self.ledger.interrupted(manifest, interruption)
            return interruption

    def load_request(self, index: int) -> tuple[str, bytes]:
        """Request ``index`` as ``(path, JSON body bytes)``, read from storage."""
        manifest = self.load()
        raw = self.store.read_json(manifest.request_key or "")
        if not raw:
            raise AIHubMixError(f"The stored request {manifest.request_key} is missing; nothing was sent")
        request = StoredRequest.model_validate(raw).requests[index]
        return request.path, json.dumps(request.body, separators=(",", ":")).encode()

    def mark_sending(self, index: int) -> None:
        """The send marker, written before a single byte of request ``index`` goes out."""
        with self._writing:
            manifest = self.load()
            if manifest.in_flight is not None or manifest.requests_answered != index:
                raise AIHubMixError(
                    f"{self.manifest_uri} changed under the trigger; not sending request {index}"
                )
            marker = SendMarker(request=index, at=utcnow(), trigger_run=self.trigger_run)
            self.ledger.submitting(manifest, marker)
            # Built now, while the triggerer answers: once it is stopping its runner no longer reads
            # the supervisor's replies, and building the hook masks the key through them.
            self.collector(manifest)

    def record_answer(self, index: int, answer: PredictionAnswer) -> int:
        """Parse the answer, store its images, then record them and clear the marker; -> images."""
        try:
            result = answer.parse()
        finally:
            answer.close()
        with self._writing:
            manifest = self.load()
            # A URL image the triggerer cannot store now is downloaded by the worker when it completes.
            record_answer(self.collector(manifest), manifest, index, result, url_later=True)
        return len(result.images)

    def record_failure(
        self, index: int, error: AIHubMixError, *, secrets: tuple[str, ...] = ()
    ) -> AIHubMixError:
        """Record why request ``index`` ended (:func:`~.outcomes.record_failure`); -> the error to report.

        An unreadable answer to a one-request purchase is saved beside the manifest (without
        ``secrets``), so a later run finishes from it with no request.
        """
        with self._writing:
            return self._record_failure(index, error, secrets)

    def _record_failure(self, index: int, error: AIHubMixError, secrets: tuple[str, ...]) -> AIHubMixError:
        manifest = self.load()
        save: SaveAnswer | None = None
        if manifest.requests_total <= 1 and manifest.requests_answered == 0:

            def save(err: AIHubMixUnreadableAnswerError) -> str:
                return write_answer(self.store, self.prefix, self.model, err, secrets)

        error = record_failure(self.ledger, manifest, error, save_answer=save)
        log.warning("Request %d for model %s ended: %s", index + 1, self.model, error)
        return error


def holding(manifest: Manifest) -> Interruption | None:
    """The interruption recorded for the request in flight now (same trigger run and request)."""
    marker = manifest.in_flight
    if marker is None:
        return None
    for interruption in reversed(manifest.interruptions):
        if interruption.trigger_run == marker.trigger_run and interruption.request == marker.request:
            return interruption
    return None


def recorded_error(manifest: Manifest, default: type[AIHubMixError] = AIHubMixError) -> AIHubMixError:
    """The typed error a manifest's last attempt recorded, built again."""
    last = manifest.attempts[-1] if manifest.attempts else None
    message = last.error if last and last.error else f"AIHubMix request for {manifest.model} failed"
    return error_from(
        last.error_type if last else None,
        message,
        default=default,
        request_id=last.request_id if last else None,
    )


def error_from(
    name: str | None, message: str, *, default: type[AIHubMixError] = AIHubMixError, **kwargs: Any
) -> AIHubMixError:
    """An instance of the exceptions-module class ``name`` (only AIHubMix errors), else ``default``."""
    cls = getattr(exceptions, name or "", None)
    if not (isinstance(cls, type) and issubclass(cls, AIHubMixError)):
        cls = default
    return cls(message, **{k: v for k, v in kwargs.items() if v is not None})


__all__ = [
    "CRASH",
    "DEFAULT_SHUTDOWN_HOLD_S",
    "GRACEFUL_STOP",
    "REQUEST_NAME",
    "USER_ACTION",
    "PreparedRequest",
    "PurchaseLedger",
    "Resume",
    "StoredRequest",
    "error_from",
    "holding",
    "recorded_error",
    "request_key",
]
