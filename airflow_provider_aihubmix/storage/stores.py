"""Pick the store for an ``output_uri``, and read reference images from wherever they live."""

from __future__ import annotations

import os
from typing import Any

from airflow_provider_aihubmix.exceptions import ImageTooLargeError, InvalidOutputURIError, NotAnImageError
from airflow_provider_aihubmix.storage.base import ObjectStore
from airflow_provider_aihubmix.storage.lineage import record_asset
from airflow_provider_aihubmix.storage.local import LocalObjectStore
from airflow_provider_aihubmix.storage.sniff import SNIFF_HEAD_BYTES, sniff_image
from airflow_provider_aihubmix.storage.uris import (
    AZURE_SCHEMES,
    OBJECT_SCHEMES,
    file_uri_to_path,
    parse_output_uri,
    path_to_file_uri,
    split_object_uri,
)

#: The connection each cloud's store uses when the operator's ``output_conn_id`` is left at its
#: default (``aws_default``, the S3 one): the Google and Azure providers' own defaults.
DEFAULT_CONN_IDS = {
    "s3": "aws_default",
    "gs": "google_cloud_default",
    **dict.fromkeys(AZURE_SCHEMES, "wasb_default"),
}


def conn_id_for(scheme: str, conn_id: str | None) -> str | None:
    """``conn_id`` for a store of ``scheme``; the S3 default stands for "this cloud's default"."""
    if conn_id == "aws_default":
        return DEFAULT_CONN_IDS.get(scheme, conn_id)
    return conn_id


def open_store(output_uri: str, *, aws_conn_id: str | None = "aws_default", **options: Any) -> ObjectStore:
    """
    The store for ``output_uri``: ``s3://bucket/prefix``, ``gs://bucket/prefix``, an Azure
    container (``abfs[s]://`` or ``wasb[s]://container[@account host]/prefix``) or ``file:///dir``.

    ``aws_conn_id`` is the task's ``output_conn_id``: the connection of whichever cloud the URI
    names (left at ``aws_default`` it means that cloud's default: ``google_cloud_default``,
    ``wasb_default``). ``options`` go to the store (e.g. ``max_attempts``). The Google and Azure
    stores need the ``[google]`` / ``[azure]`` extra, imported only here.

    :raises InvalidOutputURIError: naming ``output_uri`` when it is malformed or has ``..`` segments.
    """
    location = parse_output_uri(output_uri)
    if location.scheme == "file":
        return LocalObjectStore(location.uri)
    conn_id = conn_id_for(location.scheme, aws_conn_id)
    if location.scheme == "gs":
        # Optional dependency: the [google] extra (GCSHook, google-cloud-storage), loaded only for gs://.
        from airflow_provider_aihubmix.storage.gcs import GCSObjectStore

        return GCSObjectStore(location.uri, conn_id=conn_id, **options)
    if location.scheme in AZURE_SCHEMES:
        # Optional dependency: the [azure] extra (WasbHook, azure-storage-blob), only for Azure URIs.
        from airflow_provider_aihubmix.storage.azure import AzureBlobObjectStore

        return AzureBlobObjectStore(location.uri, conn_id=conn_id, **options)
    # Start-up cost: boto3 (through the amazon provider) loads only for s3://, never for file://.
    from airflow_provider_aihubmix.storage.s3 import S3ObjectStore

    return S3ObjectStore(location.uri, aws_conn_id=aws_conn_id, **options)


def read_uri_bytes(
    uri: str, *, aws_conn_id: str | None = "aws_default", max_bytes: int | None = None
) -> tuple[bytes, str]:
    """
    Read a reference image (for edits and chains) from ``s3://``, ``gs://``, an Azure URI,
    ``file://`` or a local path (object stores through ``aws_conn_id``, as :func:`open_store`).

    Returns the bytes and the content type sniffed from them. The bytes must be an image: a path
    that points at any other file raises ``NotAnImageError`` and its content is never returned.
    The read is recorded as an input asset for lineage.

    :raises ImageTooLargeError: when the object is larger than ``max_bytes``.
    :raises NotAnImageError: when the bytes are not a known image format.
    :raises InvalidOutputURIError: when a local path does not exist or cannot be read.
    """
    if not isinstance(uri, str) or not uri or "\x00" in uri:
        raise InvalidOutputURIError(f"reference image location must be a non-empty string, got {uri!r}")
    context: object
    if uri.lower().startswith(tuple(f"{scheme}://" for scheme in OBJECT_SCHEMES)):
        _, root, key = split_object_uri(uri)
        if not key:
            raise InvalidOutputURIError(f"reference image {uri!r} names a bucket but no key")
        store = open_store(root, aws_conn_id=aws_conn_id)
        location = f"{root}/{key}"
        data = store.read_bytes(location, max_bytes=max_bytes)
        context = store
    else:
        if "://" in uri:
            if not uri.lower().startswith("file://"):
                raise InvalidOutputURIError(
                    f"reference image {uri!r}: only s3://, gs://, abfs:// / wasb://, file:// and "
                    "local paths are read here"
                )
            path = file_uri_to_path(uri)
        else:
            path = os.path.abspath(os.path.expanduser(uri))
        location = path_to_file_uri(path)
        try:
            data = _read_file(path, max_bytes)
        except OSError as exc:
            # A missing or unreadable reference is a bad input, found before any request.
            raise InvalidOutputURIError(
                f"reference image {location} cannot be read: {exc.strerror or type(exc).__name__}"
            ) from None
        context = _LOCAL_READER
    try:
        info = sniff_image(memoryview(data)[:SNIFF_HEAD_BYTES])
    except NotAnImageError as exc:
        # Name the file: among several references the signature alone does not say which one.
        what = "empty (0 bytes)" if not data else exc.message
        raise NotAnImageError(f"reference image {location} is {what}") from None
    record_asset("input", context, location, {"content_type": info.content_type})
    return data, info.content_type


class _LocalReferenceReader:
    """Lineage context for reference images read from local files (no store is bound to them)."""

    def __repr__(self) -> str:
        return "LocalReferenceReader()"


_LOCAL_READER = _LocalReferenceReader()


def _read_file(path: str, max_bytes: int | None) -> bytes:
    with open(path, "rb") as handle:
        data = handle.read() if max_bytes is None else handle.read(max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:
        raise ImageTooLargeError(f"{path_to_file_uri(path)} is larger than the limit of {max_bytes} bytes")
    return data


__all__ = ["DEFAULT_CONN_IDS", "conn_id_for", "open_store", "read_uri_bytes"]
