"""
Where generated images go: S3 (through the amazon provider) or a local directory.

Operators call ``open_store(output_uri)`` and then ``put_image`` / ``write_json`` with keys from
``task_prefix``; boto3 is imported only when an ``s3://`` store is used.
"""

from __future__ import annotations

from airflow_provider_aihubmix.exceptions import (
    AIHubMixStorageError,
    ImageTooLargeError,
    IncompleteImageError,
    InvalidOutputURIError,
    NotAnImageError,
)
from airflow_provider_aihubmix.storage.base import (
    SPOOL_MEMORY_BYTES,
    ObjectStore,
    StoredObject,
)
from airflow_provider_aihubmix.storage.keys import (
    MANIFEST_NAME,
    check_key,
    encode_key_part,
    image_key_stem,
    join_key,
    manifest_key,
    run_prefix,
    task_prefix,
)
from airflow_provider_aihubmix.storage.local import LocalObjectStore
from airflow_provider_aihubmix.storage.sniff import SNIFF_HEAD_BYTES, ImageInfo, sniff_image
from airflow_provider_aihubmix.storage.stores import open_store, read_uri_bytes
from airflow_provider_aihubmix.storage.uris import (
    OutputLocation,
    default_local_output_uri,
    parse_output_uri,
)

__all__ = [
    "MANIFEST_NAME",
    "SNIFF_HEAD_BYTES",
    "SPOOL_MEMORY_BYTES",
    "AIHubMixStorageError",
    "ImageInfo",
    "ImageTooLargeError",
    "IncompleteImageError",
    "InvalidOutputURIError",
    "LocalObjectStore",
    "NotAnImageError",
    "ObjectStore",
    "OutputLocation",
    "StoredObject",
    "check_key",
    "default_local_output_uri",
    "encode_key_part",
    "image_key_stem",
    "join_key",
    "manifest_key",
    "open_store",
    "parse_output_uri",
    "read_uri_bytes",
    "run_prefix",
    "sniff_image",
    "task_prefix",
]
