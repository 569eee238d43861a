"""OpenLineage for image generation, kept apart from the operators (the provider is optional).

Lineage is computed one way, as in Airflow's dbt Cloud provider: a task hands a
:class:`LineageSnapshot` -- the request, the stored records, the manifest the engine wrote or
reused, the error -- to the free functions :func:`lineage_on_start`, :func:`lineage_on_complete`
and :func:`lineage_on_failure`. Those functions read nothing else; they import ``openlineage``
only when called, so a deployment without the OpenLineage provider never imports it.

Every operator and the sensor inherit :class:`AIHubMixLineageMixin`, whose
``get_openlineage_facets_on_*`` methods build the snapshot in one place
(:meth:`~AIHubMixLineageMixin.lineage_snapshot`) from what the task recorded and from its own
:meth:`~AIHubMixLineageMixin.lineage_request`.

* inputs: the reference images -- ``s3://`` objects, ``https://`` URLs and local files
  (``data:`` URIs are not datasets; the facet counts them);
* outputs: every stored image and the task instance's ``manifest.json``;
* run facet ``aihubmix``: model, family, prompt sha256, parameters without secrets, seed,
  remote task ids, usage, cost (estimated and actual, with the price's source and date) and the
  moderation outcome (``docs/LINEAGE.md``).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import urlsplit

from airflow_provider_aihubmix.exceptions import (
    AIHubMixError,
    AIHubMixModerationError,
    AIHubMixTaskFailedError,
)
from airflow_provider_aihubmix.facets import FACET_NAME
from airflow_provider_aihubmix.pricing.cost import cost_record, totals_line
from airflow_provider_aihubmix.redaction import PROMPT_FIELDS, redact_input, without_secrets

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.event_v2 import Dataset

    from airflow_provider_aihubmix.engine.collection import ImageCollector
    from airflow_provider_aihubmix.engine.manifest import Manifest
    from airflow_provider_aihubmix.facets.run import AIHubMixRunFacet
    from airflow_provider_aihubmix.pricing import Estimate

log = logging.getLogger(__name__)

MODERATION_PASSED = "passed"
MODERATION_OUTCOMES = ("request_moderated", "content_moderated")
_ERROR_MESSAGE_LIMIT = 2000
COMMENTARY_LIMIT = 1000  # characters of the model's text kept per image (Gemini)

_F = TypeVar("_F", bound=Callable[..., Any])


# -- naming -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetId:
    """An OpenLineage dataset identity: the naming the in-tree amazon and common.io providers use."""

    namespace: str
    name: str


def dataset_id(location: str) -> DatasetId | None:
    """
    The dataset a reference image or stored object is, or ``None`` for inline ``data:`` URIs.

    ``s3://bucket/key`` -> (``s3://bucket``, ``key``); ``https://host/path?sig`` ->
    (``https://host``, ``/path``): the query string is dropped because presigned URLs carry
    their signature there; ``file:///p`` and local paths -> (``file``, ``/p``).
    """
    location = location.strip()
    if not location or location[:5].lower() == "data:":
        return None
    parts = urlsplit(location, allow_fragments=False)
    scheme = parts.scheme.lower()
    if scheme == "s3":
        # The key is taken literally, as the amazon provider does (a '?' may be part of it).
        key = location.split("://", 1)[1].partition("/")[2]
        return DatasetId(f"s3://{parts.netloc}", key or "/")
    if scheme in ("http", "https"):
        host = parts.hostname or ""  # no userinfo: it could be a credential
        netloc = f"{host}:{parts.port}" if parts.port else host
        return DatasetId(f"{scheme}://{netloc}", parts.path.split("#", 1)[0] or "/")
    if scheme == "file":
        return DatasetId(f"file://{parts.netloc}" if parts.netloc else "file", parts.path)
    if len(scheme) > 1:  # any other URI scheme (a one-letter "scheme" is a Windows drive)
        return DatasetId(f"{scheme}://{parts.netloc}", parts.path.lstrip("/") or "/")
    # Start-up cost: DAG parsing loads this module (the lineage mixin); storage loads when a task runs.
    from airflow_provider_aihubmix.storage.uris import path_to_file_uri

    # A local path: named like the file:// URI the storage layer records for hook lineage.
    return dataset_id(path_to_file_uri(os.path.abspath(os.path.expanduser(location))))


def unique_datasets(locations: Sequence[str]) -> list[DatasetId]:
    seen: dict[DatasetId, None] = {}
    for location in locations:
        found = dataset_id(location)
        if found is not None:
            seen.setdefault(found)
    return list(seen)


# -- facet content ----------------------------------------------------------------------------


def moderation_outcome(error: BaseException | None) -> str | None:
    """``request_moderated`` / ``content_moderated`` when ``error`` is a moderation refusal."""
    if isinstance(error, AIHubMixModerationError):
        # A synchronous refusal: the request was judged, unless the error says the output was
        # (a Gemini safety finishReason is content_moderated).
        return error.code if error.code in MODERATION_OUTCOMES else "request_moderated"
    if isinstance(error, AIHubMixTaskFailedError) and error.code in MODERATION_OUTCOMES:
        return error.code
    return None


def error_info(error: BaseException) -> dict[str, Any]:
    """What the facet says about a failure. Provider errors are already scrubbed of secrets."""
    message = error.message if isinstance(error, AIHubMixError) else str(error)
    info: dict[str, Any] = {"type": type(error).__name__, "message": message[:_ERROR_MESSAGE_LIMIT]}
    if isinstance(error, AIHubMixError):
        if error.code:
            info["code"] = error.code
        if error.status_code is not None:
            info["statusCode"] = error.status_code
        if error.request_id:
            info["requestId"] = error.request_id
    return info


def lineage_parameters(input_: Mapping[str, Any], *, include_prompt: bool) -> dict[str, Any]:
    """The request input as lineage may carry it: redacted images, no secrets, no prompt by default."""
    redacted = without_secrets(redact_input(dict(input_)))
    if not include_prompt:
        redacted = {k: v for k, v in redacted.items() if k not in PROMPT_FIELDS}
    return cast("dict[str, Any]", redacted)


def request_of(
    model: str,
    family: str,
    params: Mapping[str, Any],
    input_: Mapping[str, Any],
    references: Sequence[str],
    estimate: Estimate | None = None,
) -> LineageRequest:
    """The lineage view of a validated request: its parameters, input, reference images and the
    cost estimate the budget guard made (or would make)."""
    seed = params.get("seed")
    return LineageRequest(
        model=model,
        family=family,
        prompt=params.get("prompt") if isinstance(params.get("prompt"), str) else None,
        input=dict(input_),
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        references=list(references),
        estimate=estimate,
    )


def prompt_sha256(prompt: Any) -> str | None:
    if not isinstance(prompt, str):
        return None
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


@dataclass
class LineageRequest:
    """What was (or is about to be) asked: enough for inputs and the request half of the facet."""

    model: str
    family: str | None = None
    prompt: str | None = None
    input: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    references: list[str] = field(default_factory=list)
    remote_task_ids: list[str] = field(default_factory=list)
    estimate: Estimate | None = None

    def facet_fields(self, *, include_prompt: bool) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "model": self.model,
            "family": self.family,
            "promptSha256": prompt_sha256(self.prompt),
            "prompt": self.prompt if include_prompt else None,
            "parameters": lineage_parameters(self.input, include_prompt=include_prompt),
            "seed": self.seed,
            "referenceImages": len(self.references),
            "inlineReferenceImages": sum(1 for r in self.references if r[:5].lower() == "data:"),
            "remoteTaskIds": list(self.remote_task_ids),
        }
        if self.estimate is not None:
            # Before anything is stored: what the budget guard estimated, and from which price.
            fields["cost"] = facet_cost(cost_record(self.estimate))
        return fields


def facet_cost(cost: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The manifest's ``cost`` object as the facet carries it (camelCase, no empty fields)."""
    if not cost:
        return None
    price = cost.get("price") or {}
    out: dict[str, Any] = {
        "currency": cost.get("currency", "USD"),
        "estimated": cost.get("estimated"),
        "actual": cost.get("actual"),
        "basis": {k: v for k, v in (cost.get("basis") or {}).items() if v is not None},
        "imagesRequested": cost.get("images_requested"),
        "priceUnit": price.get("unit"),
        "priceSource": price.get("source"),
        "priceRead": price.get("read") or None,
        "priceOrigin": price.get("origin"),
        "images": [{k: v for k, v in image.items() if v is not None} for image in cost.get("images") or []],
    }
    return {k: v for k, v in out.items() if v not in (None, [], {})}


def _unique(values: Sequence[str | None]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


# -- one snapshot, free functions ---------------------------------------------------------------


@dataclass(frozen=True)
class LineageSnapshot:
    """What lineage reports about one task instance, handed over in one piece.

    ``request_error``: why the request could not be built (an invalid rendered value);
    ``error``: what the task raised; ``records``: the XCom records; ``manifest`` /
    ``manifest_uri``: the manifest the engine last wrote or reused (``None`` before any).
    """

    request: LineageRequest
    request_error: BaseException | None = None
    records: Sequence[Mapping[str, Any]] = ()
    manifest: Manifest | None = None
    manifest_uri: str | None = None
    reused: bool = False
    error: BaseException | None = None
    include_prompt: bool = False

    @property
    def stored(self) -> list[Mapping[str, Any]]:
        return [r for r in self.records if r.get("uri")]

    def request_facet(self) -> dict[str, Any]:
        return self.request.facet_fields(include_prompt=self.include_prompt)

    def manifest_uris(self) -> list[str]:
        return [self.manifest_uri] if self.manifest is not None and self.manifest_uri else []


def lineage_on_start(snapshot: LineageSnapshot) -> OperatorLineage:
    """Inputs and the request facet, from the rendered and validated request (no outputs yet)."""
    facet = snapshot.request_facet()
    if snapshot.request_error is not None:
        facet["error"] = error_info(snapshot.request_error)
    return operator_lineage(snapshot.request, facet, outputs=[])


def lineage_on_complete(snapshot: LineageSnapshot) -> OperatorLineage:
    """Inputs, every stored image and the manifest as outputs, and the full facet."""
    facet = snapshot.request_facet()
    stored = snapshot.stored
    facet.update(result_fields(snapshot, stored))
    if stored:
        # The API answered with images, so whatever moderation applies let them through.
        facet["moderation"] = MODERATION_PASSED
    outputs = [str(r["uri"]) for r in stored] + snapshot.manifest_uris()
    return operator_lineage(snapshot.request, facet, outputs=outputs)


def lineage_on_failure(snapshot: LineageSnapshot) -> OperatorLineage:
    """As on start, plus what failed, the moderation outcome, and the manifest if written."""
    facet = snapshot.request_facet()
    facet.update(result_fields(snapshot, []))
    error = snapshot.error or snapshot.request_error
    if error is not None:
        facet["error"] = error_info(error)
        facet["moderation"] = moderation_outcome(error)
    return operator_lineage(snapshot.request, facet, outputs=snapshot.manifest_uris())


def generation_totals(snapshot: LineageSnapshot) -> str:
    """The task's one ``AIHubMix totals: ...`` line (images, estimated cost, usage)."""
    manifest = snapshot.manifest
    return totals_line(
        images=len(snapshot.stored),
        estimated_cost_usd=manifest.estimated_cost_usd if manifest is not None else None,
        actual_cost_usd=manifest.actual_cost_usd if manifest is not None else None,
        usage=manifest.usage if manifest is not None else None,
        reused=snapshot.reused,
    )


def result_fields(snapshot: LineageSnapshot, stored: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Facet fields known once the run wrote its manifest: usage, cost, remote task ids."""
    manifest = snapshot.manifest
    fields: dict[str, Any] = {"imagesCount": len(stored)}
    remote_ids: list[str | None] = [r.get("remote_task_id") for r in snapshot.records]
    if manifest is not None:
        remote_ids = [*(t.task_id for t in manifest.remote_tasks), *remote_ids]
        fields["usage"] = manifest.usage
        commentary = [item.commentary[:COMMENTARY_LIMIT] for item in manifest.received if item.commentary]
        fields["commentary"] = commentary or None
        fields["manifestUri"] = snapshot.manifest_uri
        fields["reused"] = snapshot.reused
        fields["imagesAsked"] = manifest.images_asked
        fields["possiblyBilledSends"] = possibly_billed_sends(manifest) or None
    if manifest is not None and manifest.cost:
        fields["cost"] = facet_cost(manifest.cost)
        fields["costOverCap"] = manifest.cost.get("over_cap")
    fields["remoteTaskIds"] = _unique(remote_ids)
    return {k: v for k, v in fields.items() if v is not None}


def possibly_billed_sends(manifest: Manifest) -> list[dict[str, Any]]:
    """The sends ``on_possibly_billed="resend_once"`` sent again, as the manifest's ``earlier`` marks them."""
    return [
        {
            "status": e.get("status"),
            "requestId": e.get("request_id"),
            "sentAt": e.get("sent_at"),
            "estimatedCostUsd": e.get("estimated_cost_usd"),
            "manifestUri": e.get("manifest"),
        }
        for e in manifest.earlier
        if e.get("resend")  # engine.resend.RESEND_MARK (lineage does not import the engine)
    ]


def operator_lineage(
    request: LineageRequest, facet: dict[str, Any], *, outputs: Sequence[str]
) -> OperatorLineage:
    """The ``OperatorLineage`` the listener emits: datasets named like the in-tree providers do."""
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.event_v2 import Dataset

    # Optional dependency: the facet class needs openlineage (the [openlineage] extra), as above.
    from airflow_provider_aihubmix.facets.run import AIHubMixRunFacet

    def datasets(locations: Sequence[str]) -> list[Dataset]:
        return [Dataset(namespace=d.namespace, name=d.name) for d in unique_datasets(locations)]

    # remoteTaskIds may come from both the request (sensor) and the result: merge, keep order.
    facet["remoteTaskIds"] = _unique([*request.remote_task_ids, *facet.get("remoteTaskIds", [])])
    run_facet: AIHubMixRunFacet = AIHubMixRunFacet(**{k: v for k, v in facet.items() if v is not None})
    return OperatorLineage(
        inputs=datasets(request.references),
        outputs=datasets(outputs),
        run_facets={FACET_NAME: run_facet},
    )


# -- the mixin --------------------------------------------------------------------------------


def _remember_failure(method: _F) -> _F:
    """Keep the exception a task method raised, for ``get_openlineage_facets_on_failure``.

    The listener hands that method only the task instance, not the error, and the facet must
    say whether the failure was moderation.
    """

    @functools.wraps(method)
    def wrapper(self: AIHubMixLineageMixin, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as err:  # TaskDeferred is a BaseException: deferral is not recorded
            self._lineage_error = err
            raise

    wrapper._aihubmix_remembers_failure = True  # type: ignore[attr-defined]
    return cast("_F", wrapper)


class AIHubMixLineageMixin:
    """OpenLineage methods shared by the image operators and the sensor.

    What a task records for lineage, and nothing else: ``_lineage_run`` (the engine that wrote
    or reused the manifest: a :class:`GenerationRun`, or the sensor's :class:`ImageCollector`),
    ``_lineage_records`` (the XCom records) and ``_lineage_error`` (what ``execute`` or
    ``execute_complete`` raised). A subclass says what was asked in :meth:`lineage_request`.

    The error is the one thing recorded implicitly: the OpenLineage listener does not hand it
    to ``get_openlineage_facets_on_failure``, so every subclass's ``execute`` and
    ``execute_complete`` are wrapped (:func:`_remember_failure`) when the class is created --
    an override cannot forget it.
    """

    _lineage_run: ImageCollector | None = None
    _lineage_records: list[dict[str, Any]] | None = None
    _lineage_error: BaseException | None = None
    lineage_include_prompt: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in ("execute", "execute_complete"):
            method = cls.__dict__.get(name)
            if callable(method) and not getattr(method, "_aihubmix_remembers_failure", False):
                setattr(cls, name, _remember_failure(method))

    def lineage_request(self) -> tuple[LineageRequest, BaseException | None]:
        """What this task asked for, and why it could not be built (never raises)."""
        raise NotImplementedError

    def lineage_snapshot(self) -> LineageSnapshot:
        """Everything lineage reports about this task, read in this one place."""
        request, request_error = self.lineage_request()
        run = self._lineage_run
        return LineageSnapshot(
            request=request,
            request_error=request_error,
            records=list(self._lineage_records or []),
            manifest=run.manifest if run is not None else None,
            manifest_uri=run.manifest_uri if run is not None else None,
            reused=run is not None and run.reused,
            error=self._lineage_error,
            include_prompt=self.lineage_include_prompt,
        )

    # -- OpenLineage entry points ------------------------------------------------------------
    def get_openlineage_facets_on_start(self) -> OperatorLineage:
        return lineage_on_start(self.lineage_snapshot())

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        return lineage_on_complete(self.lineage_snapshot())

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> OperatorLineage:
        return lineage_on_failure(self.lineage_snapshot())

    def log_generation_totals(self) -> None:
        """Log the task's one ``AIHubMix totals: ...`` line (images, estimated cost, usage)."""
        log.info(generation_totals(self.lineage_snapshot()))


__all__ = [
    "MODERATION_PASSED",
    "AIHubMixLineageMixin",
    "DatasetId",
    "LineageRequest",
    "LineageSnapshot",
    "dataset_id",
    "error_info",
    "generation_totals",
    "lineage_on_complete",
    "lineage_on_failure",
    "lineage_on_start",
    "lineage_parameters",
    "moderation_outcome",
    "operator_lineage",
    "prompt_sha256",
    "request_of",
    "result_fields",
    "unique_datasets",
]
