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

The step a caller repeats is :func:`buy_request`: :func:`begin_request`, the call (``send``,
handed in by the caller), then :func:`~.outcomes.record_answer` or :func:`~.outcomes.record_failure`,
the one recorder the triggerer uses too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_aihubmix.engine.manifest import Manifest, ManifestStatus, SendMarker, utcnow
from airflow_provider_aihubmix.engine.outcomes import record_answer, record_failure
from airflow_provider_aihubmix.exceptions import AIHubMixError

if TYPE_CHECKING:
    from airflow_provider_aihubmix.engine.collection import ImageCollector
    from airflow_provider_aihubmix.responses.shapes import PredictionResult

log = logging.getLogger(__name__)

# States with answered requests and nothing in flight: a retry continues from requests_answered.
RESUMABLE = frozenset({ManifestStatus.DEFERRED, ManifestStatus.FAILED})

# Sends request ``index`` of the series (the billable call) and returns its parsed answer.
SendRequest = Callable[[int], "PredictionResult"]


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


def begin_request(collector: ImageCollector, manifest: Manifest, index: int) -> None:
    """``submitting`` with the send marker for request ``index``: on disk before the call."""
    marker = SendMarker(request=index, at=utcnow(), trigger_run=f"worker try {manifest.try_number}")
    collector.ledger.submitting(manifest, marker)


def buy_request(collector: ImageCollector, manifest: Manifest, index: int, send: SendRequest) -> None:
    """Send request ``index`` and record its outcome (images stored first, then recorded)."""
    begin_request(collector, manifest, index)
    started = time.monotonic()
    try:
        result = send(index)
    except AIHubMixError as err:
        record_failure(collector.ledger, manifest, err)
        raise
    manifest.timings["api_seconds"] = round(
        (manifest.timings.get("api_seconds") or 0.0) + time.monotonic() - started, 3
    )
    record_answer(collector, manifest, index, result)


def buy_series(
    collector: ImageCollector, manifest: Manifest, total: int, send: SendRequest
) -> list[dict[str, Any]]:
    """Buy every one of ``total`` requests not answered yet, in order, then complete the manifest."""
    manifest.requests_total = total
    while manifest.requests_answered < manifest.requests_total:
        index = manifest.requests_answered
        log.info("Sending request %d of %d for model %s", index + 1, manifest.requests_total, collector.model)
        buy_request(collector, manifest, index, send)
    # Every image is stored; this verifies them, prices them and writes ``complete``.
    return collector.finish_received(manifest)


def resume_series(
    collector: ImageCollector, manifest: Manifest, total: int, send: SendRequest
) -> list[dict[str, Any]]:
    """Continue a series an earlier try left: keep what it bought, buy only the rest."""
    log.info(
        "Resuming from %s: %d of %d request(s) already answered and paid for; buying only the rest",
        collector.manifest_uri,
        manifest.requests_answered,
        total,
    )
    return buy_series(collector, manifest, total, send)


__all__ = [
    "RESUMABLE",
    "SendRequest",
    "begin_request",
    "buy_request",
    "buy_series",
    "is_resumable",
    "requests_wanted",
    "resume_series",
]
