"""The engine every operator and the sensor share: buy images once, store them, record them.

One :class:`GenerationRun` is one task instance's purchase. It validates before any
HTTP call, decides from the manifest whether to reuse, re-attach or submit, and writes
the manifest around the billable call so that a retry never pays twice:

* ``submitting`` is written *before* the call, so a worker killed mid-call leaves a
  trace and the retry refuses to buy again blindly (``regenerate=True`` overrides);
* ``submitted`` records an async task id, so a retry re-attaches to it;
* ``received`` records the images the API answered with, before any is stored, so a
  retry finishes from the stored objects (or downloads the URLs again) without a call;
* ``complete`` is written last, after every image is stored and verified.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_aihubmix.catalog import ModelSpec
from airflow_provider_aihubmix.cost import check_budget, cost_breakdown
from airflow_provider_aihubmix.events import EventStatus, TaskEvent
from airflow_provider_aihubmix.exceptions import (
    AIHubMixDownloadError,
    AIHubMixError,
    AIHubMixPossiblyBilledError,
    AIHubMixResponseError,
    AIHubMixTaskFailedError,
    AIHubMixTaskModeratedError,
    AIHubMixTaskTimeoutError,
)
from airflow_provider_aihubmix.manifest import (
    Manifest,
    ManifestStatus,
    ReceivedImage,
    RemoteTask,
    fingerprint,
    utcnow,
)
from airflow_provider_aihubmix.polling import PollSchedule
from airflow_provider_aihubmix.redaction import redact_input
from airflow_provider_aihubmix.references import reference_strings, resolve_references
from airflow_provider_aihubmix.responses import (
    GeneratedImage,
    PredictionResult,
    TaskHandle,
    status_from_string,
)
from airflow_provider_aihubmix.schemas import build_input

if TYPE_CHECKING:
    from airflow_provider_aihubmix.hooks.aihubmix import AIHubMixHook
    from airflow_provider_aihubmix.storage import ObjectStore, StoredObject

log = logging.getLogger(__name__)

DOWNLOAD_ATTEMPTS = 3
EXPIRED_STATUSES = frozenset({401, 403, 404, 410})
DEFAULT_MAX_IMAGE_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class TaskIdentity:
    """Where in Airflow this purchase happens; it fixes the storage prefix."""

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


@dataclass
class Outcome:
    """What :meth:`GenerationRun.start` got to: stored records, or an async task to wait for."""

    records: list[dict[str, Any]] | None = None
    task: TaskHandle | None = None
    reused: bool = False
    # A sync request stored for the triggerer to send (deferrable): its manifest, status ``deferred``.
    deferred: Manifest | None = None


# A manifest in one of these states stands for money that may already be spent.
IN_FLIGHT = frozenset(
    {ManifestStatus.SUBMITTING, ManifestStatus.SUBMITTED, ManifestStatus.RECEIVED, ManifestStatus.AMBIGUOUS}
)


class ImageCollector:
    """Stores a response's images under the task instance's prefix and completes its manifest.

    The sensor uses it alone (it collects a task someone else submitted); the operators
    through :class:`GenerationRun`, which adds the purchase itself.
    """

    def __init__(
        self,
        *,
        hook: AIHubMixHook,
        store: ObjectStore,
        model: str,
        identity: TaskIdentity,
        max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
    ) -> None:
        from airflow_provider_aihubmix.storage import task_prefix

        self.hook = hook
        self.store = store
        self.model = model
        self.identity = identity
        self.max_image_bytes = max_image_bytes
        self.prefix = task_prefix(identity.dag_id, identity.run_id, identity.task_id, identity.map_index)
        # The manifest as last written or reused, and whether it was reused: what lineage reports.
        self.manifest: Manifest | None = None
        self.reused = False

    @property
    def manifest_key(self) -> str:
        from airflow_provider_aihubmix.storage import manifest_key

        return manifest_key(self.prefix)

    @property
    def manifest_uri(self) -> str:
        return self.store.uri_for(self.manifest_key)

    def load_manifest(self) -> Manifest | None:
        raw = self.store.read_json(self.manifest_key)
        return Manifest.model_validate(raw) if raw else None

    def save_manifest(self, manifest: Manifest) -> None:
        self.store.write_json(self.manifest_key, manifest.model_dump(mode="json"))
        self.manifest = manifest

    # -- collecting -------------------------------------------------------------------------
    def store_result(self, manifest: Manifest, result: PredictionResult) -> list[dict[str, Any]]:
        """Record what the API answered (``received``), then store every image and complete.

        The answer is recorded before anything is stored: if storing fails or the worker
        dies, the retry finishes from the stored objects or downloads the URLs again --
        it never buys the same images twice.
        """
        if not result.images:
            raise AIHubMixError(f"AIHubMix returned no images for model {self.model}")
        if result.usage is not None:
            manifest.usage = result.usage
        manifest.received = [self.received_image(i, image) for i, image in enumerate(result.images)]
        manifest.records = []
        manifest.record_attempt(ManifestStatus.RECEIVED, request_id=result.request_id)
        self.save_manifest(manifest)
        return self.finish_received(manifest, result.images, request_id=result.request_id)

    def received_image(self, index: int, image: GeneratedImage) -> ReceivedImage:
        if image.data is None:
            return ReceivedImage(
                index=index, url=image.url, seed=image.seed, revised_prompt=image.revised_prompt
            )
        from airflow_provider_aihubmix.storage import SNIFF_HEAD_BYTES, NotAnImageError, sniff_image

        try:
            # The store names the object by its sniffed type, so the key is known before the write.
            key: str | None = (
                f"{self.image_stem(index)}.{sniff_image(image.data[:SNIFF_HEAD_BYTES]).extension}"
            )
        except NotAnImageError:
            key = None  # storing it will fail and say why
        return ReceivedImage(
            index=index,
            key=key,
            sha256=hashlib.sha256(image.data).hexdigest(),
            seed=image.seed,
            revised_prompt=image.revised_prompt,
        )

    def finish_received(
        self,
        manifest: Manifest,
        images: Sequence[GeneratedImage] | None = None,
        *,
        request_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Store the ``received`` images not yet stored and complete the manifest.

        ``images`` is the API's answer in this try; without it (a retry) each image comes
        from its verified stored object, or its URL is downloaded again.
        """
        remote_task_id = manifest.remote_tasks[-1].task_id if manifest.remote_tasks else None
        started = time.monotonic()
        done = {record["index"]: record for record in manifest.records}
        records: list[dict[str, Any]] = []
        for position, item in enumerate(manifest.received):
            record = done.get(item.index)
            if (
                record is None
                or self.verified_object(self.store.key_for(record["uri"]), record["sha256"]) is None
            ):
                image = images[item.index] if images is not None else None
                record = self.store_received(item, image, remote_task_id)
            records.append(record)
            if position < len(manifest.received) - 1:
                # Progress, so a retry after a later failure keeps what is stored; the last
                # record goes out with the complete manifest.
                manifest.records = records + [r for i, r in done.items() if i > item.index]
                self.save_manifest(manifest)
        manifest.timings["store_seconds"] = round(time.monotonic() - started, 3)
        manifest.timings["completed_at"] = utcnow()
        manifest.records = records
        # Signed vendor URLs are only needed until the images are stored.
        manifest.received = [item.model_copy(update={"url": None}) for item in manifest.received]
        cost = cost_breakdown(self.model, records, usage=manifest.usage)
        manifest.estimated_cost_usd = cost.total_usd
        manifest.cost = cost.as_dict()
        manifest.record_attempt(ManifestStatus.COMPLETE, request_id=request_id)
        self.save_manifest(manifest)
        total = manifest.estimated_cost_usd
        log.info(
            "Stored %d image(s) for model %s under %s; usage=%s; estimated cost %s",
            len(records),
            self.model,
            self.store.uri_for(self.prefix),
            manifest.usage,
            f"{total:.4f} USD" if total is not None else "unknown (no published price)",
        )
        return records

    def store_received(
        self, item: ReceivedImage, image: GeneratedImage | None, remote_task_id: str | None
    ) -> dict[str, Any]:
        """Store one received image: from this try's answer, the stored object, or its URL."""
        described = GeneratedImage(seed=item.seed, revised_prompt=item.revised_prompt)
        if image is not None:
            return self.store_image(item.index, image, remote_task_id)
        if item.key and item.sha256:
            stored = self.verified_object(item.key, item.sha256)
            if stored is not None:
                log.info("Image %d is already stored at %s; not storing it again", item.index, stored.uri)
                return image_record(
                    stored, self.model, item.index, self.identity.map_index, described, remote_task_id
                )
        if item.url:
            log.info("Downloading image %d again from the URL the API answered with", item.index)
            stored = self.download_result(item.index, item.url, remote_task_id)
            return image_record(
                stored, self.model, item.index, self.identity.map_index, described, remote_task_id
            )
        raise AIHubMixPossiblyBilledError(
            f"AIHubMix answered with image {item.index} of model {self.model} inline, but it was never "
            f"stored and cannot be fetched again (see {self.manifest_uri}). Not buying it again; set "
            "regenerate=True to buy a new generation."
        )

    def verified_object(self, key: str, sha256: str) -> StoredObject | None:
        """The object at ``key`` if it exists and its content hashes to ``sha256``, else None."""
        from airflow_provider_aihubmix.storage import (
            SNIFF_HEAD_BYTES,
            AIHubMixStorageError,
            StoredObject,
            sniff_image,
        )
        from airflow_provider_aihubmix.storage.base import READ_CHUNK_BYTES

        if not self.store.exists(key):
            return None
        digest, size, head = hashlib.sha256(), 0, bytearray()
        try:
            with self.store.open_read(key) as stream:
                while chunk := stream.read(READ_CHUNK_BYTES):
                    digest.update(chunk)
                    size += len(chunk)
                    if len(head) < SNIFF_HEAD_BYTES:
                        head += chunk[: SNIFF_HEAD_BYTES - len(head)]
            info = sniff_image(head)
        except (AIHubMixStorageError, OSError) as err:
            log.warning("Stored object %s cannot be verified (%s); storing it again", key, err)
            return None
        if digest.hexdigest() != sha256:
            log.warning("Stored object %s does not match its recorded sha256; storing it again", key)
            return None
        return StoredObject(
            uri=self.store.uri_for(key),
            key=key,
            content_type=info.content_type,
            bytes=size,
            sha256=sha256,
            width=info.width,
            height=info.height,
        )

    def collect(self, manifest: Manifest, event: TaskEvent) -> list[dict[str, Any]]:
        """Store the images of a finished async task, or raise for a failed or timed-out one."""
        if event.status is EventStatus.TIMEOUT:
            raise AIHubMixTaskTimeoutError(
                f"AIHubMix task {event.remote_task_id} did not finish before the deadline; it stays "
                f"recorded in {self.manifest_uri} so a retry re-attaches to it instead of paying again"
            )
        if event.status is EventStatus.ERROR:
            # Polling failed, not the task: it may be running or done and paid for.
            raise AIHubMixError(
                f"Could not learn the outcome of AIHubMix task {event.remote_task_id}: "
                f"{event.message or 'polling failed'}. It stays recorded in {self.manifest_uri}, so a "
                "retry re-attaches to it instead of paying again"
            )
        if event.status is EventStatus.FAILED:
            manifest.record_attempt(ManifestStatus.FAILED, error=event.message)
            self.save_manifest(manifest)
            folded = status_from_string(event.task_status) if event.task_status else None
            # A moderated task fails without Airflow retries: resubmitting buys the same verdict.
            error_class = (
                AIHubMixTaskModeratedError if folded and folded.is_moderated else AIHubMixTaskFailedError
            )
            raise error_class(
                f"AIHubMix task {event.remote_task_id} failed with status {event.task_status!r}: "
                f"{event.message or ''}".rstrip(": "),
                # The folded status (e.g. content_moderated) tells lineage why, without parsing text.
                code=folded.value if folded else None,
            )
        images = [GeneratedImage(url=url) for url in event.result_urls]
        return self.store_result(manifest, PredictionResult(images=images, usage=manifest.usage))

    def collect_remote(self, event: TaskEvent) -> list[dict[str, Any]]:
        """Collect a task submitted elsewhere (the sensor's case), once.

        Its manifest is fingerprinted by the remote task id: a retry after the images were
        stored returns them, or finishes a half-stored answer, instead of racing the
        expiring result links again.
        """
        remote_task_id = event.remote_task_id
        task_fingerprint = fingerprint(self.model, {"remote_task_id": remote_task_id})
        previous = self.load_manifest()
        if previous is not None and previous.fingerprint == task_fingerprint:
            previous.try_number = self.identity.try_number
            if previous.status is ManifestStatus.COMPLETE:
                log.info("AIHubMix task %s is already collected in %s", remote_task_id, self.manifest_uri)
                self.manifest, self.reused = previous, True
                return previous.records
            if previous.status is ManifestStatus.RECEIVED and previous.received:
                self.manifest, self.reused = previous, True
                return self.finish_received(previous)
        manifest = Manifest(
            status=ManifestStatus.SUBMITTED,
            fingerprint=task_fingerprint,
            model=self.model,
            family="unknown",
            input={"remote_task_id": remote_task_id},
            dag_id=self.identity.dag_id,
            run_id=self.identity.run_id,
            task_id=self.identity.task_id,
            map_index=self.identity.map_index,
            try_number=self.identity.try_number,
            remote_tasks=[RemoteTask(task_id=remote_task_id, submitted_at=utcnow())],
        )
        return self.collect(manifest, event)

    def image_stem(self, index: int) -> str:
        from airflow_provider_aihubmix.storage import image_key_stem

        return image_key_stem(self.prefix, index)

    def metadata(self, index: int) -> dict[str, str]:
        return {"model": self.model, "index": str(index)}

    def store_image(self, index: int, image: GeneratedImage, remote_task_id: str | None) -> dict[str, Any]:
        stem = self.image_stem(index)
        metadata = self.metadata(index)
        if image.data is not None:
            stored = self.store.put_image_bytes(stem, image.data, metadata=metadata)
        elif image.url is not None:
            stored = self.download_result(index, image.url, remote_task_id)
        else:
            raise AIHubMixError(f"Image {index} of model {self.model} has neither data nor a URL")
        return image_record(stored, self.model, index, self.identity.map_index, image, remote_task_id)

    def download_result(self, index: int, url: str, remote_task_id: str | None) -> StoredObject:
        """Download image ``index``; an expired async result link is fetched anew from the task.

        Task result links live about ten minutes: a fan-out resuming late, or a retry, can
        find them dead while the task -- paid for -- still answers with fresh ones.
        """
        stem, metadata = self.image_stem(index), self.metadata(index)
        try:
            return self.download_and_store(stem, url, metadata)
        except AIHubMixDownloadError as err:
            if remote_task_id is None or err.status_code not in EXPIRED_STATUSES:
                raise
            state = self.hook.get_task(remote_task_id)
            if not state.status.is_success or index >= len(state.result_urls):
                raise
            log.info(
                "Result link of image %d expired; downloading a fresh one from task %s", index, remote_task_id
            )
            return self.download_and_store(stem, state.result_urls[index], metadata)

    def download_and_store(self, stem: str, url: str, metadata: dict[str, str]) -> StoredObject:
        """Stream ``url`` into storage, retrying a short or broken body: never store a short file."""
        for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
            try:
                with self.hook.stream_download(url, max_bytes=self.max_image_bytes) as download:
                    return self.store.put_image(
                        stem,
                        download.iter_bytes(),
                        metadata=metadata,
                        expected_size=download.content_length,
                    )
            except AIHubMixDownloadError as err:
                if not getattr(err, "retryable", False) or attempt == DOWNLOAD_ATTEMPTS:
                    raise
                log.warning("Download attempt %d of an image failed (%s); retrying", attempt, err.message)
        raise AssertionError("unreachable")


class GenerationRun(ImageCollector):
    """One task instance's purchase: validated request, storage prefix and manifest."""

    def __init__(
        self,
        *,
        hook: AIHubMixHook,
        store: ObjectStore,
        spec: ModelSpec,
        params: Mapping[str, Any],
        extra_input: Mapping[str, Any] | None,
        identity: TaskIdentity,
        aws_conn_id: str | None,
        max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
    ) -> None:
        super().__init__(
            hook=hook, store=store, model=spec.path, identity=identity, max_image_bytes=max_image_bytes
        )
        self.spec = spec
        self.params = dict(params)
        # Anything but a mapping (a template rendered to a list or a string) is left for
        # build_input below to refuse with a validation error.
        self.extra_input: Any = dict(extra_input) if isinstance(extra_input, Mapping) else extra_input or {}
        self.aws_conn_id = aws_conn_id
        self.references = reference_strings(self.params.get("image"))
        # Validated with the references as given: cheap, before anything is read or sent,
        # and stable across retries (a presigned URL would change the fingerprint).
        self.input = build_input(spec, {**self.params, "image": self.references or None}, self.extra_input)
        self.fingerprint = fingerprint(spec.path, self.input)

    def new_manifest(self) -> Manifest:
        return Manifest(
            status=ManifestStatus.SUBMITTING,
            fingerprint=self.fingerprint,
            model=self.spec.path,
            family=self.spec.family.value,
            input=redact_input(self.input),
            dag_id=self.identity.dag_id,
            run_id=self.identity.run_id,
            task_id=self.identity.task_id,
            map_index=self.identity.map_index,
            try_number=self.identity.try_number,
        )

    def collect_event(self, event: TaskEvent) -> list[dict[str, Any]]:
        """Collect the task this task instance recorded, found by its id.

        Templates are rendered again on resume; a value that renders differently (a clock
        macro, a changed upstream XCom) must not orphan a task that is already paid for.
        """
        manifest = self.load_manifest()
        if manifest is None:
            raise AIHubMixError(
                f"No manifest at {self.manifest_uri}; cannot collect a task that this task instance "
                "did not submit"
            )
        if manifest.fingerprint != self.fingerprint:
            log.warning(
                "The request renders differently than when AIHubMix task %s was submitted; collecting "
                "the recorded task anyway (fingerprint %s, now %s)",
                event.remote_task_id,
                manifest.fingerprint[:12],
                self.fingerprint[:12],
            )
        manifest.try_number = self.identity.try_number
        recorded = [task.task_id for task in manifest.remote_tasks]
        if event.remote_task_id not in recorded:
            # The event must answer the task this task instance submitted, not one from elsewhere.
            raise AIHubMixError(
                f"Trigger event for AIHubMix task {event.remote_task_id!r} does not match the task(s) "
                f"{recorded} recorded in {self.manifest_uri}"
            )
        return self.collect(manifest, event)

    # -- the purchase -----------------------------------------------------------------------
    def check_budget(self, *, max_cost_usd: float | None, allow_unknown_cost: bool) -> float | None:
        return check_budget(
            self.spec, self.input, max_cost_usd=max_cost_usd, allow_unknown_cost=allow_unknown_cost
        )

    def start(
        self,
        *,
        regenerate: bool = False,
        max_cost_usd: float | None = None,
        allow_unknown_cost: bool = False,
        send_from_triggerer: bool = False,
    ) -> Outcome:
        """Reuse a complete result, re-attach to a recorded task, or submit once.

        The budget guard runs only before a submission: reusing or re-attaching to work
        already paid for costs nothing more. ``send_from_triggerer`` (a sync model, deferrable)
        stores the request for :class:`AIHubMixPredictionTrigger` instead of sending it here.
        """
        previous = self.load_manifest()
        if previous is not None and previous.fingerprint == self.fingerprint and not regenerate:
            if previous.status is ManifestStatus.COMPLETE:
                log.info(
                    "Reusing %d stored image(s) from %s (same request fingerprint %s); no API call made. "
                    "Set regenerate=True to generate again.",
                    len(previous.records),
                    self.manifest_uri,
                    self.fingerprint[:12],
                )
                self.manifest, self.reused = previous, True
                return Outcome(records=previous.records, reused=True)
            if previous.status is ManifestStatus.RECEIVED and previous.received:
                log.info(
                    "Finishing from %s: the API already answered with %d image(s) in try %s; storing "
                    "them from the stored objects or their URLs, no API call made.",
                    self.manifest_uri,
                    len(previous.received),
                    previous.attempts[-1].try_number if previous.attempts else "?",
                )
                previous.try_number = self.identity.try_number
                # Nothing is bought in this try: lineage and cost report it as reused.
                self.manifest, self.reused = previous, True
                return Outcome(records=self.finish_received(previous), reused=True)
            if previous.status is ManifestStatus.SUBMITTED and previous.remote_tasks:
                task = previous.remote_tasks[-1]
                log.info("Re-attaching to AIHubMix task %s recorded in %s", task.task_id, self.manifest_uri)
                return Outcome(task=TaskHandle(task_id=task.task_id, polling_url=task.polling_url))
            if previous.status in (ManifestStatus.SUBMITTING, ManifestStatus.AMBIGUOUS):
                last = previous.attempts[-1] if previous.attempts else None
                raise AIHubMixPossiblyBilledError(
                    f"A previous attempt (try {last.try_number if last else '?'} at "
                    f"{last.at if last else '?'}) sent this request but its answer was lost, so it "
                    f"may have been billed (see {self.manifest_uri}). Not submitting again; set "
                    "regenerate=True to buy a new generation.",
                    request_id=last.request_id if last else None,
                )
        elif previous is not None and previous.fingerprint != self.fingerprint:
            # A deferred fan-out with answered requests holds bought images too.
            paid = previous.status in IN_FLIGHT or previous.requests_answered > 0
            if paid and previous.status is not ManifestStatus.COMPLETE and not regenerate:
                raise AIHubMixPossiblyBilledError(
                    f"{self.manifest_uri} records a paid request ({previous.status.value}, model "
                    f"{previous.model}) that differs from this one and was never completed. Not "
                    "replacing it; set regenerate=True to buy the new request anyway."
                )
            log.info("Stored manifest answers a different request; generating anew")
        self.check_budget(max_cost_usd=max_cost_usd, allow_unknown_cost=allow_unknown_cost)
        if send_from_triggerer and not self.spec.is_async:
            from airflow_provider_aihubmix.deferred import defer_purchase

            return Outcome(deferred=defer_purchase(self))
        return self.submit()

    def submit(self) -> Outcome:
        params = dict(self.params)
        if self.references:
            params["image"] = resolve_references(self.references, aws_conn_id=self.aws_conn_id)
        manifest = self.new_manifest()
        manifest.timings["submitted_at"] = utcnow()
        manifest.record_attempt(ManifestStatus.SUBMITTING)
        self.save_manifest(manifest)
        started = time.monotonic()
        try:
            result = self.hook.predict(self.spec, params, extra_input=self.extra_input)
        except (AIHubMixPossiblyBilledError, AIHubMixResponseError) as err:
            # A lost answer, or a 2xx answer nothing can read (malformed JSON, unknown shape):
            # the gateway may have accepted and billed it, so a retry must not buy it again.
            manifest.record_attempt(ManifestStatus.AMBIGUOUS, request_id=err.request_id, error=str(err))
            self.save_manifest(manifest)
            raise
        except AIHubMixError as err:
            # The API answered with a refusal: nothing was billed, a retry may submit again.
            manifest.record_attempt(ManifestStatus.FAILED, request_id=err.request_id, error=str(err))
            self.save_manifest(manifest)
            raise
        manifest.timings["api_seconds"] = round(time.monotonic() - started, 3)
        manifest.usage = result.usage
        if result.task is not None:
            manifest.remote_tasks.append(
                RemoteTask(
                    task_id=result.task.task_id,
                    polling_url=result.task.polling_url,
                    submitted_at=utcnow(),
                )
            )
            manifest.record_attempt(ManifestStatus.SUBMITTED, request_id=result.request_id)
            self.save_manifest(manifest)
            log.info("Submitted async AIHubMix task %s for model %s", result.task.task_id, self.spec.path)
            return Outcome(task=result.task)
        return Outcome(records=self.store_result(manifest, result))


def image_record(
    stored: StoredObject,
    model: str,
    index: int,
    map_index: int,
    image: GeneratedImage,
    remote_task_id: str | None,
) -> dict[str, Any]:
    """One XCom record: where the image is and what it is -- never its bytes or a vendor URL."""
    record: dict[str, Any] = {
        "uri": stored.uri,
        "model": model,
        "index": index,
        "map_index": map_index,
        "content_type": stored.content_type,
        "bytes": stored.bytes,
        "sha256": stored.sha256,
        "width": stored.width,
        "height": stored.height,
    }
    if image.seed is not None:
        record["seed"] = image.seed
    if image.revised_prompt:
        record["revised_prompt"] = image.revised_prompt
    if remote_task_id:
        record["remote_task_id"] = remote_task_id
    return record


def wait_for_task(
    hook: AIHubMixHook,
    task_id: str,
    *,
    model: str | None,
    schedule: PollSchedule,
    timeout: float,
) -> TaskEvent:
    """Poll in the worker (non-deferrable mode) with the trigger's decisions (:class:`TaskWait`)."""
    from airflow_provider_aihubmix.polling import TaskWait

    # Wall-clock, like the trigger's end_time.
    wait = TaskWait(task_id, end_time=time.time() + timeout, schedule=schedule, model=model, log=log)
    while True:
        try:
            event = wait.on_state(hook.get_task(task_id))
        except AIHubMixError as err:
            event = wait.on_error(err)
        event = event or wait.check_deadline()
        if event is not None:
            return event
        time.sleep(wait.next_delay())
