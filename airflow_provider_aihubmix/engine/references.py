"""A purchase's reference images as the API takes them: read once, before the first billable request.

References are validated as given when the run is built (cheap, nothing read); this module reads
them when the requests are about to be sent: ``s3://``/``gs://``/local files are read and inlined,
URLs stay URLs (the API fetches them) except for one-image-per-request models (Gemini), whose
``inlineData`` needs the bytes, so those are downloaded once here with the credential-free client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from airflow_provider_aihubmix.catalog.models import ModelSpec
from airflow_provider_aihubmix.responses.gemini import with_inlined_urls
from airflow_provider_aihubmix.schemas import schema_for
from airflow_provider_aihubmix.storage.references import (
    DEFAULT_MAX_REFERENCE_BYTES,
    resolve_param_references,
)

# url, max_bytes -> the bytes at url (the hook's download: no API key, SSRF-checked, size-capped).
Download = Callable[..., bytes]


def inline_url(url: str, download: Download) -> str:
    """``url``'s image as a ``data:`` URI, fetched with ``download`` (at most the reference cap)."""
    data = download(url, max_bytes=DEFAULT_MAX_REFERENCE_BYTES)
    return str(with_inlined_urls({"image": [url]}, {url: data})["image"][0])


def resolve_references(
    spec: ModelSpec,
    references: Sequence[str],
    params: Mapping[str, Any],
    *,
    aws_conn_id: str | None,
    download: Download,
) -> dict[str, str]:
    """Each reference as given -> what the API takes (a URL or a ``data:`` URI).

    ``references`` are the ``image`` references; a ``mask`` parameter (by the family's canonical
    name) is read the same way. Keys are stripped as the validated input holds them.

    :raises AIHubMixValidationError: a missing, unreadable, oversized or non-image reference,
        naming the parameter and the model, before any request.
    """
    given: dict[str, list[str]] = {"image": list(references)}
    schema = schema_for(spec.family)
    for key, value in params.items():
        if isinstance(value, str) and isinstance(key, str) and schema.canonical(key) == "mask":
            given[key] = [value]
    resolved: dict[str, str] = {}
    for key, refs in given.items():
        if not refs:
            continue
        read = resolve_param_references({key: refs}, (key,), model=spec.name, aws_conn_id=aws_conn_id)
        readable = read[key] if isinstance(read[key], list) else [read[key]]
        if spec.one_image_per_request:
            readable = [
                inline_url(ref, download) if ref.lower().startswith(("http://", "https://")) else ref
                for ref in readable
            ]
        resolved.update((ref.strip(), read_ref) for ref, read_ref in zip(refs, readable, strict=True))
    return resolved
