"""OpenLineage for image generation, kept apart from the operators (the provider is optional).

Every operator and the sensor inherit :class:`AIHubMixLineageMixin`. The OpenLineage listener
calls its three ``get_openlineage_facets_on_*`` methods; they read what the task recorded
(``_lineage_run``, ``_lineage_records``, ``_lineage_error``) and import ``openlineage`` only
when called, so a deployment without the OpenLineage provider never imports it.

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

from airflow_provider_aihubmix.cost import cost_record, totals_line
from airflow_provider_aihubmix.exceptions import (
    AIHubMixError,
    AIHubMixModerationError,
    AIHubMixTaskFailedError,
)
from airflow_provider_aihubmix.facets import FACET_NAME
from airflow_provider_aihubmix.redaction import redact_input, without_secrets

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.event_v2 import Dataset

    from airflow_provider_aihubmix.collection import ImageCollector
    from airflow_provider_aihubmix.facets.run import AIHubMixRunFacet
    from airflow_provider_aihubmix.pricing import Estimate

log = logging.getLogger(__name__)

MODERATION_PASSED = "passed"
MODERATION_OUTCOMES = ("request_moderated", "content_moderated")
# Request fields holding prompt text: kept out of the facet unless lineage_include_prompt=True.
PROMPT_FIELDS = frozenset({"prompt", "negative_prompt"})
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

    State the lineage methods read: ``_lineage_run`` (the :class:`GenerationRun`, or the
    sensor's :class:`ImageCollector`), ``_lineage_records`` (the XCom records) and
    ``_lineage_error`` (what ``execute`` or ``execute_complete`` raised; recorded by a wrapper
    this class puts around those methods in every subclass that defines them).
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

    # -- OpenLineage entry points ------------------------------------------------------------
    def get_openlineage_facets_on_start(self) -> OperatorLineage:
        """Inputs and the request facet, from the rendered and validated request (no outputs yet)."""
        request, error = self._lineage_request()
        facet = request.facet_fields(include_prompt=self.lineage_include_prompt)
        if error is not None:
            facet["error"] = error_info(error)
        return self._operator_lineage(request, facet, outputs=[])

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """Inputs, every stored image and the manifest as outputs, and the full facet."""
        request, _ = self._lineage_request()
        facet = request.facet_fields(include_prompt=self.lineage_include_prompt)
        stored = [r for r in self._lineage_records or [] if r.get("uri")]
        facet.update(self._result_fields(stored))
        if stored:
            # The API answered with images, so whatever moderation applies let them through.
            facet["moderation"] = MODERATION_PASSED
        outputs = [r["uri"] for r in stored] + self._manifest_uris()
        return self._operator_lineage(request, facet, outputs=outputs)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> OperatorLineage:
        """As on start, plus what failed, the moderation outcome, and the manifest if written."""
        request, request_error = self._lineage_request()
        facet = request.facet_fields(include_prompt=self.lineage_include_prompt)
        facet.update(self._result_fields([]))
        error = self._lineage_error or request_error
        if error is not None:
            facet["error"] = error_info(error)
            facet["moderation"] = moderation_outcome(error)
        return self._operator_lineage(request, facet, outputs=self._manifest_uris())

    # -- totals -------------------------------------------------------------------------------
    def log_generation_totals(self) -> None:
        """Log the task's one ``AIHubMix totals: ...`` line (images, estimated cost, usage)."""
        run = self._lineage_run
        manifest = run.manifest if run is not None else None
        stored = [r for r in self._lineage_records or [] if r.get("uri")]
        log.info(
            totals_line(
                images=len(stored),
                estimated_cost_usd=manifest.estimated_cost_usd if manifest is not None else None,
                actual_cost_usd=manifest.actual_cost_usd if manifest is not None else None,
                usage=manifest.usage if manifest is not None else None,
                reused=run is not None and run.reused,
            )
        )

    # -- building blocks ----------------------------------------------------------------------
    def _lineage_request(self) -> tuple[LineageRequest, BaseException | None]:
        """The request as the run validated it, else as the operator would; never raises."""
        from airflow_provider_aihubmix.generation import GenerationRun

        run = self._lineage_run
        if isinstance(run, GenerationRun):
            request, _ = self._request_of(
                run.spec.path, run.spec.family.value, run.params, run.input, run.references
            )
            request.estimate = run.estimate
            return request, None
        if hasattr(self, "aihubmix_task_id"):
            return self._sensor_request(), None
        try:
            from airflow_provider_aihubmix.references import reference_strings
            from airflow_provider_aihubmix.schemas import build_input

            spec = self.resolve_spec()  # type: ignore[attr-defined]
            params: dict[str, Any] = self.request_params()  # type: ignore[attr-defined]
            references = reference_strings(params.get("image"))
            input_ = build_input(
                spec,
                {**params, "image": references or None},
                self.extra_input,  # type: ignore[attr-defined]
            )
        except Exception as err:  # an invalid request still gets a START / FAIL event
            return LineageRequest(model=str(getattr(self, "model", None) or "unknown")), err
        request, _ = self._request_of(spec.path, spec.family.value, params, input_, references)
        from airflow_provider_aihubmix.cost import estimate_request

        request.estimate = estimate_request(spec, input_, references=len(references))
        return request, None

    def _request_of(
        self,
        model: str,
        family: str,
        params: Mapping[str, Any],
        input_: Mapping[str, Any],
        references: Sequence[str],
    ) -> tuple[LineageRequest, None]:
        seed = params.get("seed")
        request = LineageRequest(
            model=model,
            family=family,
            prompt=params.get("prompt") if isinstance(params.get("prompt"), str) else None,
            input=dict(input_),
            seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
            references=list(references),
        )
        return request, None

    def _sensor_request(self) -> LineageRequest:
        from airflow_provider_aihubmix.catalog import UnknownModelError, resolve_model

        model = str(getattr(self, "model", None) or "unknown")
        try:
            family: str | None = resolve_model(model, warn=False).family.value
        except UnknownModelError:
            family = "unknown"
        task_id = getattr(self, "aihubmix_task_id", None)
        return LineageRequest(model=model, family=family, remote_task_ids=[str(task_id)] if task_id else [])

    def _result_fields(self, stored: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Facet fields known once the run wrote its manifest: usage, cost, remote task ids."""
        run = self._lineage_run
        manifest = run.manifest if run is not None else None
        fields: dict[str, Any] = {"imagesCount": len(stored)}
        remote_ids: list[str | None] = [r.get("remote_task_id") for r in self._lineage_records or []]
        if manifest is not None:
            remote_ids = [*(t.task_id for t in manifest.remote_tasks), *remote_ids]
            fields["usage"] = manifest.usage
            commentary = [item.commentary[:COMMENTARY_LIMIT] for item in manifest.received if item.commentary]
            fields["commentary"] = commentary or None
            fields["manifestUri"] = run.manifest_uri if run is not None else None
            fields["reused"] = run is not None and run.reused
        if manifest is not None and manifest.cost:
            fields["cost"] = facet_cost(manifest.cost)
        fields["remoteTaskIds"] = _unique(remote_ids)
        return {k: v for k, v in fields.items() if v is not None}

    def _manifest_uris(self) -> list[str]:
        run = self._lineage_run
        return [run.manifest_uri] if run is not None and run.manifest is not None else []

    def _operator_lineage(
        self, request: LineageRequest, facet: dict[str, Any], *, outputs: Sequence[str]
    ) -> OperatorLineage:
        from airflow.providers.openlineage.extractors import OperatorLineage
        from openlineage.client.event_v2 import Dataset

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


__all__ = [
    "MODERATION_PASSED",
    "AIHubMixLineageMixin",
    "DatasetId",
    "LineageRequest",
    "dataset_id",
    "error_info",
    "lineage_parameters",
    "moderation_outcome",
    "prompt_sha256",
    "unique_datasets",
]
