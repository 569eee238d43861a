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
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from airflow_provider_aihubmix.engine.ledger import ManifestLedger
from airflow_provider_aihubmix.engine.manifest import (
    Manifest,
    ManifestStatus,
    ReceivedImage,
    SendMarker,
    utcnow,
)
from airflow_provider_aihubmix.exceptions import (
    AIHubMixError,
    AIHubMixPossiblyBilledError,
    AIHubMixResponseError,
    AIHubMixUnreadableAnswerError,
)
from airflow_provider_aihubmix.responses.usage import merge_usage

if TYPE_CHECKING:
    from airflow_provider_aihubmix.catalog.models import ModelSpec
    from airflow_provider_aihubmix.engine.collection import ImageCollector
    from airflow_provider_aihubmix.engine.events import PredictionEvent
    from airflow_provider_aihubmix.engine.run import GenerationRun
    from airflow_provider_aihubmix.hooks.aihubmix import AIHubMixHook
    from airflow_provider_aihubmix.http import AIHubMixSettings
    from airflow_provider_aihubmix.http.sends import PredictionAnswer
    from airflow_provider_aihubmix.storage import ObjectStore

log = logging.getLogger(__name__)

REQUEST_NAME = "request.json"


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
    from airflow_provider_aihubmix.storage import join_key

    return join_key(prefix, REQUEST_NAME)


def prepared_requests(
    spec: ModelSpec, params: Mapping[str, Any], extra_input: Mapping[str, Any] | None
) -> list[PreparedRequest]:
    """The requests a purchase is made of, validated; no HTTP."""
    from airflow_provider_aihubmix.hooks.aihubmix import AIHubMixHook

    if not spec.one_image_per_request:
        _, path, body = AIHubMixHook.prepare_prediction(spec, params, extra_input)
        return [PreparedRequest(path=path, body=body)]
    from airflow_provider_aihubmix.engine.series import requests_wanted
    from airflow_provider_aihubmix.schemas import build_input

    # Gemini: one request per image, request i sending seed + i (references already inline).
    prepared = []
    for index in range(requests_wanted(build_input(spec, params, extra_input))):
        _, path, body = AIHubMixHook.prepare_prediction(spec, params, extra_input, request_index=index)
        prepared.append(PreparedRequest(path=path, body=body))
    return prepared


def defer_purchase(run: GenerationRun) -> Manifest:
    """Write the request beside the manifest and record it ``deferred``; nothing is sent.

    A deferred (or failed) manifest of the same request with answered requests (a Gemini
    fan-out cut short) is continued, not restarted: what was bought stays bought.
    """
    requests = prepared_requests(run.spec, run.readable_params(), run.extra_input)
    previous = run.load_manifest()
    if (
        previous is not None
        and previous.fingerprint == run.fingerprint
        and previous.status in (ManifestStatus.DEFERRED, ManifestStatus.FAILED)
        and previous.requests_answered
    ):
        manifest = previous
        manifest.try_number = run.identity.try_number
    else:
        manifest = run.new_manifest(ManifestStatus.DEFERRED)
    key = request_key(run.prefix)
    run.store.write_json(key, StoredRequest(model=run.spec.path, requests=requests).model_dump(mode="json"))
    run.ledger.deferred(manifest, request_key=key, requests_total=len(requests))
    log.info(
        "Stored %d request(s) for model %s at %s; the triggerer sends them",
        len(requests),
        run.spec.path,
        run.store.uri_for(key),
    )
    return manifest


@dataclass
class Resume:
    """Where a trigger run starts: the next request to send, or an ending already recorded."""

    next_request: int = 0
    total: int = 0
    done: bool = False
    error: AIHubMixError | None = None
    images: int = 0


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

    # -- collaborators (built lazily, in the calling thread) -----------------------------------
    @property
    def store(self) -> ObjectStore:
        if self._store is None:
            from airflow_provider_aihubmix.storage import open_store

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
            from airflow_provider_aihubmix.engine.collection import DEFAULT_MAX_IMAGE_BYTES, ImageCollector
            from airflow_provider_aihubmix.engine.manifest import TaskIdentity
            from airflow_provider_aihubmix.hooks.aihubmix import AIHubMixHook

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
    def resume(self) -> Resume:
        """Decide from the manifest alone; an earlier run's send marker stops every send."""
        manifest = self.load()
        images = len(manifest.received)
        if manifest.in_flight is not None or manifest.status in (
            ManifestStatus.SUBMITTING,
            ManifestStatus.AMBIGUOUS,
        ):
            return Resume(error=self._possibly_billed(manifest), images=images)
        if manifest.status is ManifestStatus.FAILED:
            return Resume(error=recorded_error(manifest), images=images)
        if manifest.status in (ManifestStatus.RECEIVED, ManifestStatus.COMPLETE):
            return Resume(done=True, images=images, total=manifest.requests_total)
        if manifest.status is not ManifestStatus.DEFERRED or not manifest.request_key:
            raise AIHubMixError(
                f"{self.manifest_uri} is {manifest.status.value}, not deferred: nothing to send"
            )
        return Resume(next_request=manifest.requests_answered, total=manifest.requests_total, images=images)

    def _possibly_billed(self, manifest: Manifest) -> AIHubMixPossiblyBilledError:
        marker = manifest.in_flight
        if manifest.status is ManifestStatus.AMBIGUOUS and marker is None:
            return recorded_error(manifest, AIHubMixPossiblyBilledError)  # type: ignore[return-value]
        where = (
            f"request {marker.request + 1} of {manifest.requests_total} at {marker.at} (trigger run "
            f"{marker.trigger_run})"
            if marker
            else "the request"
        )
        error = AIHubMixPossiblyBilledError(
            f"The triggerer sent {where} for model {self.model} but stopped before its answer was "
            f"recorded, so it may have been billed (see {self.manifest_uri}). Not sending it again; "
            "set regenerate=True to buy a new generation."
        )
        self.ledger.ambiguous(manifest, error=error.message, request_id=None, error_type=type(error).__name__)
        return error

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
        manifest = self.load()
        if manifest.in_flight is not None or manifest.requests_answered != index:
            raise AIHubMixError(f"{self.manifest_uri} changed under the trigger; not sending request {index}")
        marker = SendMarker(request=index, at=utcnow(), trigger_run=self.trigger_run)
        self.ledger.submitting(manifest, marker)

    def record_answer(self, index: int, answer: PredictionAnswer) -> int:
        """Parse the answer, store its images, then record them and clear the marker; -> images."""
        try:
            result = answer.parse()
        finally:
            answer.close()
        if not result.images:
            raise AIHubMixResponseError(
                f"AIHubMix answered request {index + 1} for model {self.model} with no image",
                request_id=result.request_id,
            )
        manifest = self.load()
        collector = self.collector(manifest)
        received, records = list(manifest.received), list(manifest.records)
        start = len(received)
        for offset, image in enumerate(result.images):
            position = start + offset
            item = ReceivedImage(
                index=position,
                url=image.url,
                seed=image.seed,
                revised_prompt=image.revised_prompt,
                request_index=index,
                commentary=image.commentary,
            )
            try:
                record = collector.store_image(position, image, None)
            except AIHubMixError as err:
                if image.url is None:
                    # The answer was billed and its inline image cannot be fetched again: this is
                    # a lost answer, not a refusal, and must never be sent again.
                    raise AIHubMixPossiblyBilledError(
                        f"AIHubMix answered request {index + 1} for model {self.model}, but image "
                        f"{position} could not be stored ({err.message}); it was billed and is lost",
                        request_id=result.request_id,
                    ) from err
                # A URL can be fetched again: the worker downloads it when it completes.
                log.warning("Image %d not stored yet (%s); the worker downloads it again", position, err)
            else:
                item.key = self.store.key_for(record["uri"])
                item.sha256 = record["sha256"]
                records.append(record)
            received.append(item)
            del image
        self.ledger.answered(
            manifest,
            index,
            received=received,
            records=records,
            usage=merge_usage(manifest.usage, result.usage),
            request_id=result.request_id,
        )
        return len(result.images)

    def record_failure(
        self, index: int, error: AIHubMixError, *, ambiguous: bool, secrets: tuple[str, ...] = ()
    ) -> AIHubMixError:
        """A refusal (nothing billed: ``failed``) or a lost / unreadable answer (``ambiguous``).

        An unreadable answer to a one-request purchase is saved beside the manifest (without
        ``secrets``), so a later run finishes from it with no request; returns the error to report.
        """
        manifest = self.load()
        if (
            ambiguous
            and isinstance(error, AIHubMixUnreadableAnswerError)
            and manifest.requests_total <= 1
            and manifest.requests_answered == 0
        ):
            from airflow_provider_aihubmix.engine.saved_answers import (
                ANSWER_NAME,
                unreadable_error,
                write_answer,
            )

            error = unreadable_error(error, write_answer(self.store, self.prefix, self.model, error, secrets))
            self.ledger.ambiguous(
                manifest,
                error=error.message,
                request_id=error.request_id,
                error_type=type(error).__name__,
                saved_answer=ANSWER_NAME,
            )
            log.warning("Request %d for model %s ended: %s", index + 1, self.model, error)
            return error
        end = self.ledger.ambiguous if ambiguous else self.ledger.failed
        end(manifest, error=error.message, request_id=error.request_id, error_type=type(error).__name__)
        log.warning("Request %d for model %s ended: %s", index + 1, self.model, error)
        return error


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
    from airflow_provider_aihubmix import exceptions

    cls = getattr(exceptions, name or "", None)
    if not (isinstance(cls, type) and issubclass(cls, AIHubMixError)):
        cls = default
    return cls(message, **{k: v for k, v in kwargs.items() if v is not None})


__all__ = [
    "REQUEST_NAME",
    "PreparedRequest",
    "PurchaseLedger",
    "Resume",
    "StoredRequest",
    "complete_deferred",
    "defer_purchase",
    "error_from",
    "merge_usage",
    "prepared_requests",
    "recorded_error",
    "request_key",
]


def complete_deferred(run: GenerationRun, event: PredictionEvent) -> list[dict[str, Any]]:
    """The worker's part after the triggerer: verify the stored images, complete, or raise.

    Each stored object is read back and checked against the sha256 the trigger recorded
    (a URL image the trigger could not store is downloaded now); a failure event raises the
    same typed error the blocking path raises.
    """
    from airflow_provider_aihubmix.engine.events import EventStatus

    if event.status is not EventStatus.SUCCESS:
        if event.status is EventStatus.TIMEOUT:
            from airflow_provider_aihubmix.exceptions import AIHubMixTaskTimeoutError

            raise AIHubMixTaskTimeoutError(event.message or "The request was not sent before the deadline")
        raise error_from(
            event.error_type,
            event.message or f"Sending the request for model {event.model} failed in the triggerer",
            status_code=event.status_code,
            code=event.code,
            request_id=event.request_id,
        )
    manifest = run.load_manifest()
    if manifest is None or manifest.status not in (ManifestStatus.RECEIVED, ManifestStatus.COMPLETE):
        state = manifest.status.value if manifest else "missing"
        raise AIHubMixError(
            f"The triggerer reported the answer stored, but {run.manifest_uri} is {state}; "
            "not completing (nothing is sent again)"
        )
    if manifest.fingerprint != run.fingerprint:
        log.warning(
            "The request renders differently than when it was deferred; completing the recorded one "
            "(fingerprint %s, now %s)",
            manifest.fingerprint[:12],
            run.fingerprint[:12],
        )
    if manifest.status is ManifestStatus.COMPLETE:
        records = run.ledger.adopt(manifest, run.identity.try_number).records
    else:
        manifest.try_number = run.identity.try_number
        records = run.finish_received(manifest)
    if manifest.request_key:
        # The request may hold private reference images; the manifest keeps its fingerprint.
        run.store.delete(manifest.request_key)
    return records
