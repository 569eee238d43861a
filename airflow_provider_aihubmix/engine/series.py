"""``n`` images as ``n`` requests, each bought once and recorded before the next (Gemini).

Models whose request makes one image (:attr:`ModelSpec.one_image_per_request`) buy ``n``
images with ``n`` billable requests. The worker moves the manifest through the ledger the
same way the triggerer does (:mod:`airflow_provider_aihubmix.engine.deferred`), request by request:

* before request ``k`` goes out: ``submitting`` with the send marker ``in_flight.request = k``
  (a worker killed mid-call leaves the trace; the retry refuses to buy request ``k`` blindly);
* its answer: the image(s) stored first, then recorded with ``requests_answered = k + 1`` in
  one move -- ``deferred`` ("answered up to k, nothing sent beyond") while requests are left,
  ``received`` after the last -- so a retry after request 2 of 3 buys only the third;
* a refusal or an API error: ``failed``, keeping the answered requests and their images; a
  retry resumes at request ``k``. A lost answer: ``ambiguous`` (the retry refuses).

The step a caller repeats is :func:`buy_request` (:func:`begin_request`, the call, then
:func:`record_answer` or :func:`record_failure`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

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
)
from airflow_provider_aihubmix.responses.usage import merge_usage

if TYPE_CHECKING:
    from airflow_provider_aihubmix.engine.run import GenerationRun
    from airflow_provider_aihubmix.responses.shapes import PredictionResult

log = logging.getLogger(__name__)

# States with answered requests and nothing in flight: a retry continues from requests_answered.
RESUMABLE = frozenset({ManifestStatus.DEFERRED, ManifestStatus.FAILED})


def requests_wanted(input_: Mapping[str, Any]) -> int:
    """How many requests the validated input asks for (its ``n``, default 1)."""
    n = input_.get("n")
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1


def is_resumable(manifest: Manifest, fingerprint: str) -> bool:
    """Whether ``manifest`` is this request's series, cut short with some requests answered."""
    return (
        manifest.fingerprint == fingerprint
        and manifest.status in RESUMABLE
        and manifest.requests_answered > 0
        and manifest.in_flight is None
    )


def begin_request(run: GenerationRun, manifest: Manifest, index: int) -> None:
    """``submitting`` with the send marker for request ``index``: on disk before the call."""
    marker = SendMarker(request=index, at=utcnow(), trigger_run=f"worker try {manifest.try_number}")
    run.ledger.submitting(manifest, marker)


def record_failure(run: GenerationRun, manifest: Manifest, err: AIHubMixError) -> None:
    """A lost or unreadable answer may be billed (``ambiguous``); a refusal is not (``failed``)."""
    error, request_id, error_type = str(err), err.request_id, type(err).__name__
    if isinstance(err, (AIHubMixPossiblyBilledError, AIHubMixResponseError)):
        run.ledger.ambiguous(manifest, error=error, request_id=request_id, error_type=error_type)
    else:
        run.ledger.failed(manifest, error=error, request_id=request_id, error_type=error_type)


def record_answer(
    run: GenerationRun, manifest: Manifest, index: int, result: PredictionResult
) -> list[dict[str, Any]]:
    """Store request ``index``'s images, then record them and ``requests_answered`` in one move."""
    if not result.images:
        raise AIHubMixError(f"AIHubMix returned no image for request {index + 1} of model {run.model}")
    received, records = list(manifest.received), list(manifest.records)
    new_records = []
    for image in result.images:
        position = len(received)
        record = run.store_image(position, image, None)
        received.append(
            ReceivedImage(
                index=position,
                key=run.store.key_for(record["uri"]),
                sha256=record["sha256"],
                seed=image.seed,
                request_index=index,
                commentary=image.commentary,
            )
        )
        new_records.append(record)
    run.ledger.answered(
        manifest,
        index,
        received=received,
        records=records + new_records,
        usage=merge_usage(manifest.usage, result.usage),
        request_id=result.request_id,
    )
    return new_records


def buy_request(run: GenerationRun, manifest: Manifest, index: int, params: Mapping[str, Any]) -> None:
    """Send request ``index`` (``params`` with references already inline) and record its outcome."""
    begin_request(run, manifest, index)
    started = time.monotonic()
    try:
        result = run.hook.predict(run.spec, params, extra_input=run.extra_input, request_index=index)
    except AIHubMixError as err:
        record_failure(run, manifest, err)
        raise
    manifest.timings["api_seconds"] = round(
        (manifest.timings.get("api_seconds") or 0.0) + time.monotonic() - started, 3
    )
    record_answer(run, manifest, index, result)


def buy_series(run: GenerationRun, manifest: Manifest, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Buy every request not answered yet, one after the other, then complete the manifest."""
    manifest.requests_total = requests_wanted(run.input)
    while manifest.requests_answered < manifest.requests_total:
        index = manifest.requests_answered
        log.info("Sending request %d of %d for model %s", index + 1, manifest.requests_total, run.model)
        buy_request(run, manifest, index, params)
    # Every image is stored; this verifies them, prices them and writes ``complete``.
    return run.finish_received(manifest)


def resume_series(run: GenerationRun, manifest: Manifest, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Continue a series an earlier try left: keep what it bought, buy only the rest."""
    log.info(
        "Resuming from %s: %d of %d request(s) already answered and paid for; buying only the rest",
        run.manifest_uri,
        manifest.requests_answered,
        requests_wanted(run.input),
    )
    return buy_series(run, manifest, params)


__all__ = [
    "begin_request",
    "buy_request",
    "buy_series",
    "is_resumable",
    "record_answer",
    "record_failure",
    "requests_wanted",
    "resume_series",
]
