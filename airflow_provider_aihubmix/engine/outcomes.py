"""The outcome of one billable request, recorded one way by the worker, the series and the triggerer.

Two rules live here and nowhere else:

* **billed or not** (:func:`may_be_billed`): a lost answer (:class:`AIHubMixPossiblyBilledError`)
  or a 2xx answer nothing reads (:class:`AIHubMixResponseError`, and its subclass
  :class:`AIHubMixUnreadableAnswerError`) may have been billed, so the manifest goes
  ``ambiguous`` and no retry sends the request again; every other :class:`AIHubMixError` is the
  API refusing the request, which bills nothing, so the manifest goes ``failed`` and a retry may
  send it again;
* **recording an answer** (:func:`record_answer`): the images are stored first, then recorded
  with ``requests_answered`` and the send marker cleared in one manifest write, so a process
  killed in between finishes from stored objects and never buys again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from airflow_provider_aihubmix.engine.manifest import Manifest, ReceivedImage
from airflow_provider_aihubmix.engine.saved_answers import ANSWER_NAME, unreadable_error
from airflow_provider_aihubmix.exceptions import (
    AIHubMixError,
    AIHubMixPossiblyBilledError,
    AIHubMixResponseError,
    AIHubMixUnreadableAnswerError,
)
from airflow_provider_aihubmix.responses.usage import merge_usage

if TYPE_CHECKING:
    from airflow_provider_aihubmix.engine.collection import ImageCollector
    from airflow_provider_aihubmix.engine.ledger import ManifestLedger
    from airflow_provider_aihubmix.responses.shapes import PredictionResult

log = logging.getLogger(__name__)

# Saves an unreadable answer beside the manifest and returns the saved object's URI.
SaveAnswer = Callable[[AIHubMixUnreadableAnswerError], str]


def may_be_billed(err: AIHubMixError) -> bool:
    """Whether the request that raised ``err`` may have been billed (see the module docstring)."""
    return isinstance(err, (AIHubMixPossiblyBilledError, AIHubMixResponseError))


def record_failure(
    ledger: ManifestLedger, manifest: Manifest, err: AIHubMixError, *, save_answer: SaveAnswer | None = None
) -> AIHubMixError:
    """Record why a billable request ended without images; return the error to raise or report.

    ``save_answer`` (a one-request purchase only: a later run can finish from the saved body) keeps
    an unreadable 2xx answer beside the manifest; the returned error then says where it is.
    """
    error_type = type(err).__name__
    if not may_be_billed(err):
        ledger.failed(manifest, error=err.message, request_id=err.request_id, error_type=error_type)
        return err
    if save_answer is not None and isinstance(err, AIHubMixUnreadableAnswerError):
        saved = unreadable_error(err, save_answer(err))
        ledger.ambiguous(
            manifest,
            error=saved.message,
            request_id=saved.request_id,
            error_type=error_type,
            saved_answer=ANSWER_NAME,
        )
        return saved
    ledger.ambiguous(manifest, error=err.message, request_id=err.request_id, error_type=error_type)
    return err


def record_answer(
    collector: ImageCollector,
    manifest: Manifest,
    index: int,
    result: PredictionResult,
    *,
    url_later: bool = False,
) -> list[dict[str, Any]]:
    """Store request ``index``'s images, then record them and ``requests_answered`` in one move.

    ``url_later`` (the triggerer): an image with a URL that cannot be stored now is recorded
    without its object, for the worker to download when it completes; an inline image that
    cannot be stored was billed and is lost (:class:`AIHubMixPossiblyBilledError`). Otherwise a
    storage error is raised as it is. Returns the records of the images stored now.
    """
    if not result.images:
        raise AIHubMixResponseError(
            f"AIHubMix answered request {index + 1} for model {collector.model} with no image",
            request_id=result.request_id,
        )
    received, records = list(manifest.received), list(manifest.records)
    stored: list[dict[str, Any]] = []
    for image in result.images:
        position = len(received)
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
            if not url_later:
                raise
            if image.url is None:
                raise AIHubMixPossiblyBilledError(
                    f"AIHubMix answered request {index + 1} for model {collector.model}, but image "
                    f"{position} could not be stored ({err.message}); it was billed and is lost",
                    request_id=result.request_id,
                ) from err
            log.warning("Image %d not stored yet (%s); the worker downloads it again", position, err)
        else:
            item.key = collector.store.key_for(record["uri"])
            item.sha256 = record["sha256"]
            stored.append(record)
        received.append(item)
        del image
    collector.ledger.answered(
        manifest,
        index,
        received=received,
        records=records + stored,
        usage=merge_usage(manifest.usage, result.usage),
        request_id=result.request_id,
    )
    return stored


__all__ = ["SaveAnswer", "may_be_billed", "record_answer", "record_failure"]
