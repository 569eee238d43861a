"""The engine every operator shares: buy images once, then hand them to the collector.

One :class:`GenerationRun` is one task instance's purchase. It validates before any
HTTP call, decides from the manifest whether to reuse, re-attach or submit
(:meth:`GenerationRun.resume`), and moves the manifest through the ledger around the billable
call so that a retry never pays twice:

* ``submitting`` is written *before* the call, so a worker killed mid-call leaves a
  trace and the retry refuses to buy again blindly (``regenerate=True`` overrides);
* ``submitted`` records an async task id, so a retry re-attaches to it;
* ``received`` records the images the API answered with, before any is stored, so a
  retry finishes from the stored objects (or downloads the URLs again) without a call;
* ``complete`` is written last, after every image is stored and verified.

Storing and verifying (the half the sensor uses alone) is :mod:`airflow_provider_aihubmix.engine.collection`;
the states and their allowed moves are :mod:`airflow_provider_aihubmix.engine.manifest`; the writes are
:mod:`airflow_provider_aihubmix.engine.ledger`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_aihubmix import metrics
from airflow_provider_aihubmix.catalog.models import ModelSpec
from airflow_provider_aihubmix.engine import series
from airflow_provider_aihubmix.engine.collection import DEFAULT_MAX_IMAGE_BYTES, ImageCollector, image_record
from airflow_provider_aihubmix.engine.decide import Action, decide
from airflow_provider_aihubmix.engine.deferred import (
    PreparedRequest,
    StoredRequest,
    error_from,
    request_key,
)
from airflow_provider_aihubmix.engine.downloads import DOWNLOAD_ATTEMPTS, EXPIRED_STATUSES
from airflow_provider_aihubmix.engine.events import EventStatus, PredictionEvent, TaskEvent
from airflow_provider_aihubmix.engine.kept import check_stored, keep_earlier, keep_for_resend
from airflow_provider_aihubmix.engine.manifest import (
    Manifest,
    ManifestStatus,
    TaskIdentity,
    fingerprint,
)
from airflow_provider_aihubmix.engine.outcomes import record_failure
from airflow_provider_aihubmix.engine.references import resolve_references
from airflow_provider_aihubmix.engine.resend import PossiblyBilledPolicy, resent, reservation_key
from airflow_provider_aihubmix.engine.saved_answers import finish_from_saved, save_unreadable
from airflow_provider_aihubmix.engine.spending import PurchaseBudget
from airflow_provider_aihubmix.exceptions import (
    AIHubMixBudgetExceededError,
    AIHubMixError,
    AIHubMixPossiblyBilledError,
    AIHubMixTaskTimeoutError,
)
from airflow_provider_aihubmix.lineage import LineageRequest, request_of
from airflow_provider_aihubmix.pricing.cost import check_budget, cost_record, estimate_request
from airflow_provider_aihubmix.redaction import redact_input
from airflow_provider_aihubmix.responses.shapes import PredictionResult, TaskHandle
from airflow_provider_aihubmix.schemas import build_input
from airflow_provider_aihubmix.schemas.wire import WireRequest, wire_request, with_references
from airflow_provider_aihubmix.storage.references import reference_strings

if TYPE_CHECKING:
    from airflow_provider_aihubmix.engine.budget import DagBudget
    from airflow_provider_aihubmix.hooks.aihubmix import AIHubMixHook
    from airflow_provider_aihubmix.pricing import Estimate, PriceTable
    from airflow_provider_aihubmix.storage import ObjectStore

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What :meth:`GenerationRun.start` got to: stored records, or an async task to wait for."""

    records: list[dict[str, Any]] | None = None
    task: TaskHandle | None = None
    reused: bool = False
    # A sync request stored for the triggerer to send (deferrable): its manifest, status ``deferred``.
    deferred: Manifest | None = None


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
        prices: PriceTable | None = None,
        dag_budget: DagBudget | None = None,
    ) -> None:
        super().__init__(
            hook=hook, store=store, model=spec.path, identity=identity, max_image_bytes=max_image_bytes
        )
        self.prices = prices
        self.dag_budget = dag_budget
        # The purchase's reservation in the run's ledger (pricing/reservations.py).
        self.budget = PurchaseBudget(dag_budget, store, identity)
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
        self.estimate = estimate_request(spec, self.input, prices, references=len(self.references))
        self.max_cost_usd: float | None = None
        # Earlier purchases this run keeps when it buys anew (keep_earlier); carried into its manifest.
        self.earlier: list[dict[str, Any]] = []

    def images_asked(self) -> int | None:
        """The images this request asks for (its count, or the model's default when none is sent)."""
        return self.estimate.images if self.estimate is not None else None

    def cost_cap(self) -> float | None:
        return self.max_cost_usd

    def new_manifest(self, status: ManifestStatus = ManifestStatus.SUBMITTING) -> Manifest:
        """A fresh manifest for buying this request, not saved: the ledger records its first
        state (``submitting`` here, ``deferred`` when the triggerer sends it)."""
        return Manifest.for_task(
            self.identity,
            status=status,
            fingerprint=self.fingerprint,
            model=self.spec.path,
            family=self.spec.family.value,
            input=redact_input(self.input),
            cost=cost_record(self.estimate),
            earlier=self.earlier,
        )

    def lineage_request(self) -> LineageRequest:
        """What this run asks for, as lineage reports it (validated input, references as given)."""
        spec = self.spec
        return request_of(
            spec.path, spec.family.value, self.params, self.input, self.references, self.estimate
        )

    def warn_if_rendered_differently(self, manifest: Manifest, when: str) -> None:
        """Warn that templates rendered again on resume differ from ``manifest``'s request.

        The recorded request is finished anyway: a clock macro or a changed upstream XCom must not
        orphan work that is already paid for.
        """
        if manifest.fingerprint != self.fingerprint:
            log.warning(
                "The request renders differently than when %s; finishing the recorded one anyway "
                "(fingerprint %s, now %s)",
                when,
                manifest.fingerprint[:12],
                self.fingerprint[:12],
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
        self.warn_if_rendered_differently(manifest, f"AIHubMix task {event.remote_task_id} was submitted")
        manifest.try_number = self.identity.try_number
        recorded = [task.task_id for task in manifest.remote_tasks]
        if event.remote_task_id not in recorded:
            # The event must answer the task this task instance submitted, not one from elsewhere.
            raise AIHubMixError(
                f"Trigger event for AIHubMix task {event.remote_task_id!r} does not match the task(s) "
                f"{recorded} recorded in {self.manifest_uri}"
            )
        records = self.collect(manifest, event)
        self.budget.sent = True
        self.budget.settle(self.ledger.manifest or manifest)
        return records

    # -- the purchase -----------------------------------------------------------------------
    def check_budget(self, *, max_cost_usd: float | None, allow_unknown_cost: bool) -> Estimate:
        """The task's ``max_cost_usd``, the DAG run's budget and, where the connection turns it on,
        the account balance (``balance_guard``), before anything is submitted."""
        try:
            return self._check_budget(max_cost_usd=max_cost_usd, allow_unknown_cost=allow_unknown_cost)
        except AIHubMixBudgetExceededError:
            metrics.budget_refused(
                model=self.spec.path, family=self.spec.family.value, dag_id=self.identity.dag_id
            )
            raise

    def _check_budget(self, *, max_cost_usd: float | None, allow_unknown_cost: bool) -> Estimate:
        self.max_cost_usd = max_cost_usd
        found = check_budget(
            self.spec,
            self.input,
            max_cost_usd=max_cost_usd,
            allow_unknown_cost=allow_unknown_cost,
            table=self.prices,
            references=len(self.references),
        )
        # Reserved before anything is sent; a retry reuses its reservation (engine/spending.py).
        key = reservation_key(self.fingerprint, self.earlier)  # a second send reserves apart
        self.budget.reserve(found, key, allow_unknown_cost=allow_unknown_cost)
        if self.hook.balance_guard:  # off unless the connection turns it on (the unit is undocumented)
            self.hook.check_balance(found.total_usd, model=self.spec.name)
        self.estimate = found
        return found

    def start(
        self,
        *,
        regenerate: bool = False,
        max_cost_usd: float | None = None,
        allow_unknown_cost: bool = False,
        send_from_triggerer: bool = False,
        on_possibly_billed: PossiblyBilledPolicy = PossiblyBilledPolicy.FAIL,
    ) -> Outcome:
        """Reuse a complete result, re-attach to a recorded task, or submit once (twice at most
        under ``on_possibly_billed='resend_once'``, see :mod:`~.resend`).

        The budget guard runs only before a submission: reusing or re-attaching to work
        already paid for costs nothing more. ``send_from_triggerer`` (a sync model, deferrable)
        stores the request for :class:`AIHubMixPredictionTrigger` instead of sending it here.
        """
        previous = self.load_manifest()
        series_here = self.spec.one_image_per_request and not send_from_triggerer
        policy = on_possibly_billed
        action = decide(
            previous, self.fingerprint, regenerate=regenerate, series=series_here, on_possibly_billed=policy
        )
        if previous is not None and not action.buys:
            return self.resume(previous, action)
        if previous is not None and action is Action.RESEND:
            self.earlier = keep_for_resend(self, previous)  # recorded and reserved before it goes out
        elif previous is not None and previous.fingerprint == self.fingerprint and not regenerate:
            self.earlier = list(previous.earlier)  # a resend mark outlives a refused send: no third
        self.check_budget(max_cost_usd=max_cost_usd, allow_unknown_cost=allow_unknown_cost)
        try:
            outcome = self.buy(
                previous, action, regenerate=regenerate, send_from_triggerer=send_from_triggerer
            )
        except BaseException:
            # Refused before sending, or an error that bills nothing: the reservation is released.
            self.budget.after_error(self.ledger.manifest)
            raise
        if outcome.records is not None:
            self.budget.settle(self.ledger.manifest)
        return outcome

    def buy(
        self, previous: Manifest | None, action: Action, *, regenerate: bool, send_from_triggerer: bool
    ) -> Outcome:
        """The purchase :meth:`start` decided on, after its budget checks and reservation."""
        if action is Action.RESUME_SERIES and previous is not None:
            # n requests of one image each: keep the answered ones, buy only the rest.
            manifest = self.ledger.adopt(previous, self.identity.try_number)
            return Outcome(records=series.resume_series(self, manifest, self.requests_total, self.sender()))
        if previous is not None and previous.fingerprint != self.fingerprint:
            log.info("Stored manifest answers a different request; generating anew")
        anew = previous is not None and (regenerate or previous.fingerprint != self.fingerprint)
        if anew and previous is not None and previous.records and action is Action.BUY:
            # Not a series continued where it stopped: that keeps its images under its own keys.
            self.earlier = keep_earlier(self, previous)
        if send_from_triggerer and not self.spec.is_async:
            return Outcome(deferred=self.defer())
        return self.submit()

    def resume(self, previous: Manifest, action: Action) -> Outcome:
        """Carry out an action :func:`~.decide.decide` chose that buys nothing.

        complete -> reuse, received -> finish storing, submitted -> re-attach, an unreadable
        answer saved -> read it again; a request that may have been billed -> refuse.
        """
        if action is Action.REFUSE_CHANGED:
            raise AIHubMixPossiblyBilledError(
                f"{self.manifest_uri} records a paid request ({previous.status.value}, model "
                f"{previous.model}) that differs from this one and was never completed. Not "
                "replacing it; set regenerate=True to buy the new request anyway."
            )
        if action is Action.REUSE:
            check_stored(self, previous)
            log.info(
                "Reusing %d stored image(s) from %s (same request fingerprint %s); no API call made. "
                "Set regenerate=True to generate again.",
                len(previous.records),
                self.manifest_uri,
                self.fingerprint[:12],
            )
            return Outcome(records=self.reuse(previous).records, reused=True)
        if action is Action.FINISH_RECEIVED:
            log.info(
                "Finishing from %s: the API already answered with %d image(s) in try %s; storing "
                "them from the stored objects or their URLs, no API call made.",
                self.manifest_uri,
                len(previous.received),
                previous.attempts[-1].try_number if previous.attempts else "?",
            )
            # Nothing is bought in this try: lineage and cost report it as reused.
            return Outcome(records=self.finish_received(self.reuse(previous)), reused=True)
        if action is Action.REATTACH:
            task = previous.remote_tasks[-1]
            log.info("Re-attaching to AIHubMix task %s recorded in %s", task.task_id, self.manifest_uri)
            return Outcome(task=TaskHandle(task_id=task.task_id, polling_url=task.polling_url))
        if action is Action.FINISH_SAVED:
            return self.finish_saved(self.reuse(previous))
        last = previous.attempts[-1] if previous.attempts else None
        raise AIHubMixPossiblyBilledError(
            f"A previous attempt (try {last.try_number if last else '?'} at "
            f"{last.at if last else '?'}) sent this request but its answer was lost, so it "
            f"may have been billed (see {self.manifest_uri}). Not submitting again; set "
            "regenerate=True to buy a new generation"
            + (" (already sent twice)." if resent(previous) else ", or on_possibly_billed='resend_once'."),
            request_id=last.request_id if last else None,
        )

    def finish_saved(self, manifest: Manifest) -> Outcome:
        """Finish from the answer saved beside the manifest (images or a task): no request is sent."""
        result = finish_from_saved(self, manifest)
        if result.task is not None:
            return Outcome(task=result.task, reused=True)
        return Outcome(records=self.store_result(manifest, result), reused=True)

    def task_submitted_at(self, task_id: str) -> float | None:
        """When ``task_id`` was submitted (wall-clock epoch seconds), as the manifest records it."""
        manifest = self.ledger.manifest if self.ledger.manifest is not None else self.load_manifest()
        return manifest.task_submitted_at(task_id) if manifest is not None else None

    def wire_requests(self) -> list[WireRequest]:
        """Every billable request of this purchase, from the input validated once (no second check)."""
        resolved = resolve_references(
            self.spec, self.references, self.params, aws_conn_id=self.aws_conn_id, download=self.download
        )
        input_ = with_references(self.spec, self.input, resolved)
        return [wire_request(self.spec, input_, index) for index in range(self.requests_total)]

    def download(self, url: str, *, max_bytes: int) -> bytes:
        """``url``'s bytes through the hook's credential-free download client (Gemini URL references)."""
        return self.hook.download(url, max_bytes=max_bytes)

    @property
    def requests_total(self) -> int:
        """How many billable requests this purchase is: ``n`` for one-image-per-request models, else 1."""
        return series.requests_wanted(self.input) if self.spec.one_image_per_request else 1

    def sender(self) -> series.SendRequest:
        """Sends request ``index`` of a series, references read and inlined once for all of them."""
        requests = self.wire_requests()

        def send(index: int) -> PredictionResult:
            self.budget.sending()
            return self.hook.send(self.spec, requests[index])

        return send

    def submit(self) -> Outcome:
        """Buy once: ``submitting`` is on disk before the billable call, its outcome right after."""
        if self.spec.one_image_per_request:
            return Outcome(
                records=series.buy_series(self, self.new_manifest(), self.requests_total, self.sender())
            )
        (request,) = self.wire_requests()
        manifest = self.new_manifest()
        self.budget.sending()
        self.ledger.submitting(manifest)
        started = time.monotonic()
        try:
            result = self.hook.send(self.spec, request)
        except AIHubMixError as err:
            # Billed or not is decided in one place; an unreadable 2xx answer is kept beside the
            # manifest, so a later run finishes from it with no request.
            error = record_failure(self.ledger, manifest, err, save_answer=lambda e: save_unreadable(self, e))
            if error is err:
                raise
            raise error from None
        manifest.timings["api_seconds"] = round(time.monotonic() - started, 3)
        if result.task is not None:
            self.ledger.submitted(manifest, result.task, usage=result.usage, request_id=result.request_id)
            log.info("Submitted async AIHubMix task %s for model %s", result.task.task_id, self.spec.path)
            return Outcome(task=result.task)
        manifest.usage = result.usage
        return Outcome(records=self.store_result(manifest, result))

    # -- a sync model sent by the triggerer (deferrable) -----------------------------------------
    def defer(self) -> Manifest:
        """Write the request beside the manifest and record it ``deferred``; nothing is sent.

        A deferred (or failed) manifest of the same request with answered requests (a Gemini
        fan-out cut short) is continued, not restarted: what was bought stays bought.
        """
        requests = [PreparedRequest(path=r.path, body=r.body) for r in self.wire_requests()]
        previous = self.load_manifest()
        if (
            previous is not None
            and previous.fingerprint == self.fingerprint
            and previous.status in (ManifestStatus.DEFERRED, ManifestStatus.FAILED)
            and previous.requests_answered
        ):
            manifest = previous
            manifest.try_number = self.identity.try_number
        else:
            manifest = self.new_manifest(ManifestStatus.DEFERRED)
        key = request_key(self.prefix)
        self.budget.sending()  # the triggerer sends it: the reservation stays counted until then
        self.store.write_json(
            key, StoredRequest(model=self.spec.path, requests=requests).model_dump(mode="json")
        )
        self.ledger.deferred(manifest, request_key=key, requests_total=len(requests))
        log.info(
            "Stored %d request(s) for model %s at %s; the triggerer sends them",
            len(requests),
            self.spec.path,
            self.store.uri_for(key),
        )
        return manifest

    def complete_deferred(self, event: PredictionEvent) -> list[dict[str, Any]]:
        """The worker's part after the triggerer: verify the stored images, complete, or raise.

        Each stored object is read back and checked against the sha256 the trigger recorded
        (a URL image the trigger could not store is downloaded now); a failure event raises the
        same typed error the blocking path raises.
        """
        self.budget.sent = True  # the triggerer sent (or tried): only the manifest can release it
        if event.status is not EventStatus.SUCCESS:
            self.budget.after_error(self.load_manifest())
            if event.status is EventStatus.TIMEOUT:
                raise AIHubMixTaskTimeoutError(
                    event.message or "The request was not sent before the deadline"
                )
            raise error_from(
                event.error_type,
                event.message or f"Sending the request for model {event.model} failed in the triggerer",
                status_code=event.status_code,
                code=event.code,
                request_id=event.request_id,
            )
        manifest = self.load_manifest()
        if manifest is None or manifest.status not in (ManifestStatus.RECEIVED, ManifestStatus.COMPLETE):
            state = manifest.status.value if manifest else "missing"
            raise AIHubMixError(
                f"The triggerer reported the answer stored, but {self.manifest_uri} is {state}; "
                "not completing (nothing is sent again)"
            )
        self.warn_if_rendered_differently(manifest, "it was deferred")
        if manifest.status is ManifestStatus.COMPLETE:
            records = self.ledger.adopt(manifest, self.identity.try_number).records
        else:
            manifest.try_number = self.identity.try_number
            records = self.finish_received(manifest)
        if manifest.request_key:
            # The request may hold private reference images; the manifest keeps its fingerprint.
            self.store.delete(manifest.request_key)
        self.budget.settle(manifest)
        return records


__all__ = [
    "DEFAULT_MAX_IMAGE_BYTES",
    "DOWNLOAD_ATTEMPTS",
    "EXPIRED_STATUSES",
    "GenerationRun",
    "ImageCollector",
    "Outcome",
    "TaskIdentity",
    "image_record",
]
