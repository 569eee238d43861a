"""A validated input on the wire: the one builder of a request's path and JSON body.

Every sender uses it -- the hook's :meth:`~.hooks.aihubmix.AIHubMixHook.predict`, the Gemini
series in the worker, and the request a worker stores for the triggerer to send -- so a request
is put together one way wherever it is sent. Paths are relative to the connection's base URL:

* ``/v1/models/<path>/predictions`` (AIHubMix's unified predictions endpoint) with
  ``{"input": ...}``;
* ``/v1/images/generations`` (OpenAI-style models) with the flat body and the catalog's model;
* ``/gemini/v1beta/models/<id>:generateContent`` (Gemini) with the ``generateContent`` body of
  request ``request_index`` of ``n`` (seed + ``request_index``); ``:streamGenerateContent`` when the
  input asks for ``stream`` (answered as a JSON array of chunks).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from airflow_provider_aihubmix.catalog.models import Endpoint, ModelSpec
from airflow_provider_aihubmix.responses import gemini
from airflow_provider_aihubmix.schemas import request_body, schema_for

GENERATIONS_PATH = "/v1/images/generations"


@dataclass(frozen=True)
class WireRequest:
    """One billable request as it goes out: ``path`` (relative to the base URL) and JSON ``body``.

    ``index`` is which of a one-image-per-request model's ``n`` requests it is (0 otherwise);
    ``seed`` is the seed that request sends (Gemini), to label its image; else ``None``.
    """

    path: str
    body: dict[str, Any]
    seed: int | None = None
    index: int = 0


def predictions_path(model_path: str) -> str:
    """``/v1/models/<model path>/predictions``, the path quoted as AIHubMix's clients quote it."""
    return f"/v1/models/{quote(model_path, safe='/:._-')}/predictions"


def wire_request(spec: ModelSpec, input_: Mapping[str, Any], request_index: int = 0) -> WireRequest:
    """Request ``request_index`` for ``spec`` from an input :func:`~.build_input` validated.

    ``request_index`` counts only for one-image-per-request models (Gemini); others send one request.
    """
    if spec.one_image_per_request:
        return WireRequest(
            path=gemini.generate_content_path(spec.model_id, stream=input_.get("stream") is True),
            body=gemini.request_body(input_, request_index=request_index),
            seed=gemini.request_seed(input_, request_index),
            index=request_index,
        )
    body = request_body(spec, dict(input_))
    if spec.endpoint is Endpoint.GENERATIONS:
        return WireRequest(path=GENERATIONS_PATH, body=body)
    return WireRequest(path=predictions_path(spec.path), body=body)


def reference_keys(spec: ModelSpec) -> frozenset[str]:
    """The keys of a validated input that carry reference images (and iRAG's ``mask``) for ``spec``.

    Read from the family schema's own placement of references (``wire_image``), so a family that
    puts its references under other keys (Flux ``input_image_2``, iRAG ``refer_image``) is covered.
    """
    schema = schema_for(spec.family)
    probe = [f"reference-{i}" for i in range(max(spec.max_reference_images, 1))]
    keys = {key for key, _ in schema.model_construct().wire_image(probe, spec)}
    if "mask" in schema.model_fields:
        keys.add(schema.wire_names.get("mask", "mask"))
    return frozenset(keys)


def with_references(
    spec: ModelSpec, input_: Mapping[str, Any], resolved: Mapping[str, str]
) -> dict[str, Any]:
    """``input_`` (validated with references as the user gave them) with each reference replaced by
    what the API takes (``resolved``: given -> ``data:`` URI or URL); nothing else is validated again.

    Every resolved reference was checked when it was read (an image, within the size limit), so the
    request needs no second validation of its prompt and parameters.
    """
    out = dict(input_)
    for key in reference_keys(spec) & out.keys():
        value = out[key]
        if isinstance(value, list):
            out[key] = [resolved.get(item, item) if isinstance(item, str) else item for item in value]
        elif isinstance(value, str):
            out[key] = resolved.get(value, value)
    return out


__all__ = [
    "GENERATIONS_PATH",
    "WireRequest",
    "predictions_path",
    "reference_keys",
    "wire_request",
    "with_references",
]
