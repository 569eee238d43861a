"""Reference images: whatever a DAG hands the ``image`` parameter, turned into what the API takes.

The API takes a public URL or a ``data:`` URI. Users hand us those, but also ``s3://``
URIs and local paths -- typically an upstream task's XCom record -- which only this
worker can read, so those are read here and sent inline.
"""

from __future__ import annotations

import ast
import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_aihubmix.exceptions import (
    AIHubMixStorageError,
    AIHubMixValidationError,
    NotAnImageError,
)
from airflow_provider_aihubmix.storage.sniff import SNIFF_HEAD_BYTES, sniff_image
from airflow_provider_aihubmix.storage.stores import read_uri_bytes
from airflow_provider_aihubmix.storage.uris import OBJECT_SCHEMES

# A reference above this is refused before anything is read into a request body.
DEFAULT_MAX_REFERENCE_BYTES = 20 * 1024 * 1024


def parse_rendered(text: str) -> Any:
    """A list or XCom record that a template rendered to text (JSON or Python repr), parsed back.

    ``image="{{ ti.xcom_pull('generate') }}"`` renders the upstream records as their repr;
    anything that does not parse stays one location string.
    """
    stripped = text.strip()
    if not stripped.startswith(("[", "{")):
        return text
    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(stripped)
        except Exception:  # bad syntax, deep nesting: try the next reading
            continue
    return text


def reference_strings(image: Any) -> list[str]:
    """Flatten ``image`` (a string, an XCom record, or lists of either) to location strings.

    Lists may nest one level per upstream mapping (``xcom_pull`` of a mapped task gives a
    list of record lists).
    """
    if isinstance(image, str):
        image = parse_rendered(image)
    if image is None or image == "" or image == []:
        return []
    items = image if isinstance(image, Sequence) and not isinstance(image, (str, bytes)) else [image]
    refs: list[str] = []
    for item in items:
        if isinstance(item, str):
            item = parse_rendered(item)
        if isinstance(item, Sequence) and not isinstance(item, (str, bytes)):
            refs.extend(reference_strings(list(item)))
        elif isinstance(item, Mapping):
            uri = item.get("uri")
            if not isinstance(uri, str) or not uri:
                raise AIHubMixValidationError(
                    "Parameter 'image' got a mapping without a 'uri'; pass an XCom image record, "
                    "an https:// URL, an s3:// URI, a local path or a data: URI"
                )
            refs.append(uri)
        elif isinstance(item, str) and item.strip():
            refs.append(item.strip())
        else:
            raise AIHubMixValidationError(
                f"Parameter 'image' got {type(item).__name__}; allowed: https:// URL, s3:// URI, "
                "local path, data: URI, an XCom image record, or a list of these"
            )
    return refs


def needs_reading(ref: str) -> bool:
    return not ref.startswith(("http://", "https://", "data:"))


def is_data_uri(ref: str) -> bool:
    return ref[:5].lower() == "data:"


def check_data_uri(ref: str) -> None:
    """A ``data:`` URI's bytes must be an image, as a file's must: sniffed before any request.

    :raises NotAnImageError: naming the URI by its length (never its payload).
    """
    payload = "".join(ref.partition(",")[2].split())
    head = payload[: SNIFF_HEAD_BYTES // 3 * 4]
    try:
        data = base64.b64decode(head + "=" * (-len(head) % 4))
    except ValueError:  # binascii.Error: the schema's pattern lets odd padding through
        data = b""
    try:
        sniff_image(data)
    except NotAnImageError as exc:
        raise NotAnImageError(f"data: URI ({len(ref)} characters) is {exc.message}") from None


def resolve_reference(
    ref: str, *, aws_conn_id: str | None, max_bytes: int = DEFAULT_MAX_REFERENCE_BYTES
) -> str:
    """Return ``ref`` as the API accepts it: URLs and data URIs (checked) as they are, others inline."""
    if is_data_uri(ref):
        check_data_uri(ref)
        return ref
    if not needs_reading(ref):
        return ref
    data, content_type = read_uri_bytes(ref, aws_conn_id=aws_conn_id, max_bytes=max_bytes)
    return f"data:{content_type};base64,{base64.b64encode(data).decode('ascii')}"


def resolve_references(
    image: Any, *, aws_conn_id: str | None, max_bytes: int = DEFAULT_MAX_REFERENCE_BYTES
) -> list[str]:
    return [
        resolve_reference(r, aws_conn_id=aws_conn_id, max_bytes=max_bytes) for r in reference_strings(image)
    ]


def is_readable_location(ref: str) -> bool:
    """An ``s3://`` / ``file://`` URI or a local path: something this worker reads itself."""
    lowered = ref.strip().lower()
    if lowered.startswith(tuple(f"{scheme}://" for scheme in (*OBJECT_SCHEMES, "file"))):
        return True
    return "://" not in lowered and not lowered.startswith("data:")


def resolve_param_references(
    params: Mapping[str, Any],
    image_keys: Sequence[str],
    *,
    model: str,
    aws_conn_id: str | None,
    max_bytes: int = DEFAULT_MAX_REFERENCE_BYTES,
) -> dict[str, Any]:
    """``params`` with every reference under ``image_keys`` read and inlined as a ``data:`` URI.

    What the hook does for a direct ``predict`` call, like the operator does for its ``image``:
    an ``s3://`` URI or a local path never goes to the API as text. A location that cannot be
    read, or that is not an image (a ``data:`` URI's bytes included), is an
    :class:`AIHubMixValidationError` naming the parameter,
    raised before any request.
    """
    out = dict(params)
    for key in image_keys:
        if key not in out or out[key] is None:
            continue
        refs = reference_strings(out[key])
        if not any(is_readable_location(ref) or is_data_uri(ref) for ref in refs):
            continue  # URLs go as they are; the schema judges anything else
        try:
            resolved = [
                resolve_reference(ref, aws_conn_id=aws_conn_id, max_bytes=max_bytes)
                if is_readable_location(ref) or is_data_uri(ref)
                else ref
                for ref in refs
            ]
        except AIHubMixStorageError as exc:
            raise AIHubMixValidationError(
                f"Parameter '{key}' holds a reference that cannot be sent for model {model}: {exc.message}; "
                "allowed: https:// URLs, data: URIs, or readable s3:// URIs and local paths of images"
            ) from exc
        out[key] = resolved[0] if isinstance(out[key], str) and len(resolved) == 1 else resolved
    return out
