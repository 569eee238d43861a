"""How a result URL becomes a stored image: streamed into the store, retried, fetched anew if expired.

:class:`ResultDownloads` is a part of :class:`~airflow_provider_aihubmix.engine.collection.ImageCollector`
(its ``hook``, ``store``, ``model`` and ``max_image_bytes``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from airflow_provider_aihubmix.exceptions import AIHubMixDownloadError
from airflow_provider_aihubmix.redaction import redact_url
from airflow_provider_aihubmix.storage import NotAnImageError

if TYPE_CHECKING:
    from airflow_provider_aihubmix.hooks.aihubmix import AIHubMixHook
    from airflow_provider_aihubmix.storage import ObjectStore, StoredObject
    from airflow_provider_aihubmix.storage.base import OnStored

log = logging.getLogger("airflow_provider_aihubmix.engine.run")

#: Tries per image download (a short or broken body is tried again; nothing short is stored).
DOWNLOAD_ATTEMPTS = 3
#: What an expired async result link answers: the link is fetched anew from the task.
EXPIRED_STATUSES = frozenset({401, 403, 404, 410})


class ResultDownloads:
    hook: AIHubMixHook
    store: ObjectStore
    model: str
    max_image_bytes: int

    def image_stem(self, index: int) -> str:
        raise NotImplementedError

    def metadata(self, index: int) -> dict[str, str]:
        raise NotImplementedError

    def download_result(
        self, index: int, url: str, remote_task_id: str | None, on_stored: OnStored | None = None
    ) -> StoredObject:
        """Download image ``index``; an expired async result link is fetched anew from the task.

        Task result links live about ten minutes: a fan-out resuming late, or a retry, can
        find them dead while the task -- paid for -- still answers with fresh ones.
        """
        stem, metadata = self.image_stem(index), self.metadata(index)
        try:
            return self.download_and_store(stem, url, metadata, on_stored)
        except AIHubMixDownloadError as err:
            if remote_task_id is None or err.status_code not in EXPIRED_STATUSES:
                raise
            state = self.hook.get_task(remote_task_id)
            if not state.status.is_success or index >= len(state.result_urls):
                raise
            log.info(
                "Result link of image %d expired; downloading a fresh one from task %s", index, remote_task_id
            )
            return self.download_and_store(stem, state.result_urls[index], metadata, on_stored)

    def download_and_store(
        self, stem: str, url: str, metadata: dict[str, str], on_stored: OnStored | None = None
    ) -> StoredObject:
        """Stream ``url`` into storage, retrying a short or broken body: never store a short file."""
        for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
            try:
                with self.hook.stream_download(url, max_bytes=self.max_image_bytes) as download:
                    return self.store.put_image(
                        stem,
                        download.iter_bytes(),
                        metadata=metadata,
                        expected_size=download.content_length,
                        on_stored=on_stored,
                    )
            except NotAnImageError as err:
                # Say which image and where: "not an image: unrecognised signature ..." alone names neither.
                index = metadata.get("index", "?")
                raise NotAnImageError(
                    f"Image {index} of model {self.model} downloaded from {redact_url(url)} is {err.message} "
                    "(an HTML or error page served instead of the image?); nothing was stored under its name",
                    status_code=err.status_code,
                    request_id=err.request_id,
                ) from err
            except AIHubMixDownloadError as err:
                if not getattr(err, "retryable", False) or attempt == DOWNLOAD_ATTEMPTS:
                    raise
                log.warning("Download attempt %d of an image failed (%s); retrying", attempt, err.message)
        raise AssertionError("unreachable")


__all__ = ["DOWNLOAD_ATTEMPTS", "EXPIRED_STATUSES", "ResultDownloads"]
