"""Storing and verifying what was bought: the half of the engine the sensor uses alone.

:class:`ImageCollector` records the API's answer (``received``), stores every image under the
task instance's prefix -- from the answer, from a verified stored object, or by downloading its
URL again -- and completes the manifest. It never calls the billable endpoint; buying is
:mod:`airflow_provider_aihubmix.engine.run`.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_aihubmix.engine.downloads import DOWNLOAD_ATTEMPTS, ResultDownloads
from airflow_provider_aihubmix.engine.events import EventStatus, TaskEvent
from airflow_provider_aihubmix.engine.ledger import ManifestLedger
from airflow_provider_aihubmix.engine.manifest import (
    Manifest,
    ManifestStatus,
    ReceivedImage,
    RemoteTask,
    TaskIdentity,
    fingerprint,
    utcnow,
)
from airflow_provider_aihubmix.exceptions import (
    AIHubMixDownloadError,
    AIHubMixError,
    AIHubMixPossiblyBilledError,
    AIHubMixTaskFailedError,
    AIHubMixTaskModeratedError,
    AIHubMixTaskNotFoundError,
    AIHubMixTaskTimeoutError,
)
from airflow_provider_aihubmix.pricing import estimate
from airflow_provider_aihubmix.pricing.cost import settle
from airflow_provider_aihubmix.redaction import redact_url
from airflow_provider_aihubmix.responses.shapes import (
    GeneratedImage,
    PredictionResult,
    TaskStatus,
    status_from_string,
)
from airflow_provider_aihubmix.storage import (
    SNIFF_HEAD_BYTES,
    AIHubMixStorageError,
    NotAnImageError,
    StoredObject,
    image_key_stem,
    sniff_image,
    task_prefix,
)
from airflow_provider_aihubmix.storage.base import READ_CHUNK_BYTES
from airflow_provider_aihubmix.storage.thumbnails import try_thumbnail

if TYPE_CHECKING:
    from airflow_provider_aihubmix.hooks.aihubmix import AIHubMixHook
    from airflow_provider_aihubmix.pricing import Estimate, PriceTable
    from airflow_provider_aihubmix.storage import ObjectStore, StoredObject

# The engine's one logger name, whichever half logs: deployments filter on it.
log = logging.getLogger("airflow_provider_aihubmix.engine.run")

DEFAULT_MAX_IMAGE_BYTES = 512 * 1024 * 1024


class ImageCollector(ResultDownloads):
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
        self.hook = hook
        self.store = store
        self.model = model
        self.identity = identity
        self.max_image_bytes = max_image_bytes
        self.prefix = task_prefix(identity.dag_id, identity.run_id, identity.task_id, identity.map_index)
        self.ledger = ManifestLedger(store, self.prefix)
        # Whether this try reused work an earlier one paid for: what lineage and cost report.
        self.reused = False
        # Prices (package rows + the user's overrides) and the estimate the actual cost is set against.
        self.prices: PriceTable | None = None
        self.estimate: Estimate | None = None

    @property
    def manifest(self) -> Manifest | None:
        """The manifest as last written or reused."""
        return self.ledger.manifest

    @property
    def manifest_key(self) -> str:
        return self.ledger.key

    @property
    def manifest_uri(self) -> str:
        return self.ledger.uri

    def load_manifest(self) -> Manifest | None:
        return self.ledger.load()

    def save_manifest(self, manifest: Manifest) -> None:
        self.ledger.save(manifest)

    def reuse(self, manifest: Manifest) -> Manifest:
        """Adopt a manifest an earlier try left, for work it already paid for."""
        self.reused = True
        return self.ledger.adopt(manifest, self.identity.try_number)

    # -- collecting -------------------------------------------------------------------------
    def store_result(self, manifest: Manifest, result: PredictionResult) -> list[dict[str, Any]]:
        """Record what the API answered (``received``), then store every image and complete.

        The answer is recorded before anything is stored: if storing fails or the worker
        dies, the retry finishes from the stored objects or downloads the URLs again --
        it never buys the same images twice.
        """
        if not result.images:
            raise AIHubMixError(f"AIHubMix returned no images for model {self.model}")
        received = [self.received_image(i, image) for i, image in enumerate(result.images)]
        self.ledger.received(manifest, received, usage=result.usage, request_id=result.request_id)
        return self.finish_received(manifest, result.images, request_id=result.request_id)

    def received_image(self, index: int, image: GeneratedImage) -> ReceivedImage:
        if image.data is None:
            return ReceivedImage(
                index=index, url=image.url, seed=image.seed, revised_prompt=image.revised_prompt
            )
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
        failures: list[tuple[ReceivedImage, AIHubMixError]] = []
        for position, item in enumerate(manifest.received):
            record = done.get(item.index)
            if (
                record is None
                or self.verified_object(self.store.key_for(record["uri"]), record["sha256"]) is None
            ):
                image = images[item.index] if images is not None else None
                try:
                    record = self.store_received(item, image, remote_task_id)
                except AIHubMixError as err:
                    # Every image of a paid answer is fetched on its own: one dead link must not
                    # keep the others from being stored.
                    failures.append((item, err))
                    continue
            records.append(record)
            if position < len(manifest.received) - 1:
                # Progress, so a retry after a later failure keeps what is stored; the last
                # record goes out with the complete manifest.
                manifest.records = records + [r for i, r in done.items() if i > item.index]
                self.ledger.save(manifest)
        if failures:
            manifest.records = records
            self.ledger.save(manifest)
            raise self.unstored_error(failures, stored=len(records), total=len(manifest.received))
        manifest.timings["store_seconds"] = round(time.monotonic() - started, 3)
        self.note_count(manifest, len(records))
        cost = self.flag_over_cap(settle(self.cost_estimate(), records, usage=manifest.usage))
        self.ledger.complete(manifest, records, cost=cost, request_id=request_id)
        log.info(
            "Stored %d image(s) for model %s under %s; usage=%s; estimated cost %s, actual %s",
            len(records),
            self.model,
            self.store.uri_for(self.prefix),
            manifest.usage,
            _usd(manifest.estimated_cost_usd),
            _usd(manifest.actual_cost_usd),
        )
        return records

    def unstored_error(
        self, failures: list[tuple[ReceivedImage, AIHubMixError]], *, stored: int, total: int
    ) -> AIHubMixError:
        """The error for images of a paid answer that could not be stored, each named by its index
        and URL (without its signed query); of the first failure's type, so a caller's handling holds."""
        if total == 1:
            return failures[0][1]
        named = "; ".join(
            f"image {item.index} ({redact_url(item.url) if item.url else 'inline'}): {err.message}"
            for item, err in failures
        )
        message = (
            f"{len(failures)} of {total} image(s) of model {self.model} could not be stored ({named}); "
            f"the other {stored} are stored and recorded in {self.manifest_uri}. A retry stores only the "
            "missing image(s); nothing is bought again."
        )
        first = failures[0][1]
        kwargs: dict[str, Any] = {"status_code": first.status_code, "request_id": first.request_id}
        if isinstance(first, AIHubMixDownloadError):
            kwargs["retryable"] = any(getattr(err, "retryable", False) for _, err in failures)
        try:
            return type(first)(message, **kwargs)
        except TypeError:  # an error class with other required arguments
            return AIHubMixError(message, **{k: v for k, v in kwargs.items() if k != "retryable"})

    def images_asked(self) -> int | None:
        """How many images the request asked for; a collector alone does not know."""
        return None

    def cost_cap(self) -> float | None:
        """The task's ``max_cost_usd``, where the purchase had one."""
        return None

    def note_count(self, manifest: Manifest, returned: int) -> None:
        """Record how many images were asked; warn when the answer held fewer or more."""
        asked = manifest.images_asked = self.images_asked()
        if asked is None or returned == asked:
            return
        why = (
            "the upstream may have filtered some (a safety filter drops images without an error)"
            if returned < asked
            else "every one is stored, and the actual cost follows what was returned"
        )
        log.warning(
            "AIHubMix returned %d image(s) of model %s where the request asked for %d: %s",
            returned,
            self.model,
            asked,
            why,
        )

    def flag_over_cap(self, cost: dict[str, Any]) -> dict[str, Any]:
        """``cost`` marked ``over_cap`` (with the cap) when the actual figure passed ``max_cost_usd``."""
        cap, actual = self.cost_cap(), cost.get("actual")
        if cap is None or actual is None or actual <= cap:
            return cost
        log.warning(
            "The actual cost of this task, $%.4f, is over its max_cost_usd $%.4f: AIHubMix returned more "
            "than the estimate allowed for; the images are stored and the cost is recorded as billed",
            actual,
            cap,
        )
        return {**cost, "over_cap": True, "cap_usd": cap}

    def cost_estimate(self) -> Estimate:
        """The estimate the actual cost is set against; a collected task's own is model-only."""
        if self.estimate is None:
            self.estimate = estimate(self.model, {}, self.prices)
        return self.estimate

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
        return StoredObject.of_image(self.store.uri_for(key), key, info, size=size, sha256=sha256)

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
        folded_status = status_from_string(event.task_status) if event.task_status else None
        if event.status is EventStatus.FAILED and folded_status is TaskStatus.NOT_FOUND:
            # Unknown is not failed: the id was answered and paid for. Keep it recorded as submitted
            # so a retry re-attaches (and never submits again); regenerate=True buys anew.
            raise AIHubMixTaskNotFoundError(
                f"{event.message or f'AIHubMix task {event.remote_task_id} was not found'}. It stays "
                f"recorded in {self.manifest_uri}: a retry re-attaches to it instead of paying again; "
                "set regenerate=True to buy a new generation",
                code=TaskStatus.NOT_FOUND.value,
            )
        if event.status is EventStatus.FAILED:
            self.ledger.failed(manifest, error=event.message)
            folded = folded_status
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
            if previous.status is ManifestStatus.COMPLETE:
                log.info("AIHubMix task %s is already collected in %s", remote_task_id, self.manifest_uri)
                return self.reuse(previous).records
            if previous.status is ManifestStatus.RECEIVED and previous.received:
                return self.finish_received(self.reuse(previous))
        manifest = Manifest.for_task(
            self.identity,
            status=ManifestStatus.SUBMITTED,
            fingerprint=task_fingerprint,
            model=self.model,
            family="unknown",
            input={"remote_task_id": remote_task_id},
            remote_tasks=[RemoteTask(task_id=remote_task_id, submitted_at=utcnow())],
        )
        return self.collect(manifest, event)

    def image_stem(self, index: int) -> str:
        return image_key_stem(self.prefix, index)

    def metadata(self, index: int) -> dict[str, str]:
        return {"model": self.model, "index": str(index)}

    def store_image(self, index: int, image: GeneratedImage, remote_task_id: str | None) -> dict[str, Any]:
        stem = self.image_stem(index)
        metadata = self.metadata(index)
        # Thumbnails: after the image is stored, before the manifest records it; from the bytes in
        # memory, or from the download's spool while the store still holds it (no read-back).
        # A failure is logged, never raised.
        thumbnails: list[dict[str, Any] | None] = []
        if image.data is not None:
            stored = self.store.put_image_bytes(stem, image.data, metadata=metadata)
            thumbnails.append(try_thumbnail(self.store, stored, image.data))
        elif image.url is not None:
            stored = self.download_result(
                index,
                image.url,
                remote_task_id,
                on_stored=lambda kept, reader: thumbnails.append(try_thumbnail(self.store, kept, reader)),
            )
        else:
            raise AIHubMixError(f"Image {index} of model {self.model} has neither data nor a URL")
        thumbnail = thumbnails[-1] if thumbnails else try_thumbnail(self.store, stored, None)
        if thumbnail is not None:
            self.ledger.thumbnails[str(index)] = thumbnail
        return image_record(stored, self.model, index, self.identity.map_index, image, remote_task_id)


def _usd(value: float | None) -> str:
    return "unknown (no public price)" if value is None else f"{value:.4f} USD"


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


__all__ = ["DEFAULT_MAX_IMAGE_BYTES", "DOWNLOAD_ATTEMPTS", "ImageCollector", "image_record"]
