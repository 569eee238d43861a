"""
Deterministic object keys for a task's images and manifest.

A task instance's objects live under a prefix built from (dag_id, run_id, task_id, map_index), so a
retry overwrites its own objects and mapped tasks never collide. Ids are user-controlled text: each
one is encoded so it stays one readable path segment that can never climb out of the prefix
(``..``, ``/``, ``\\``, NUL, control characters), on S3 and on a local file system alike.
"""

from __future__ import annotations

import hashlib
import re

from airflow_provider_aihubmix.exceptions import InvalidOutputURIError

MANIFEST_NAME = "manifest.json"

# Characters kept as they are: unreserved URI characters plus ':' and '+' (run ids hold ISO dates
# such as "manual__2024-01-01T00:00:00+00:00"). All are valid in S3 keys, POSIX file names and URI
# path segments without quoting. Everything else becomes "~XX" per UTF-8 byte; '~' itself is escaped,
# so the encoding is injective (two different ids never share a key).
_KEEP = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-:+")
# File systems cap a name at 255 bytes; long ids keep a readable head and a hash of the whole id.
_MAX_PART = 120
_HEAD_PART = 96


def encode_key_part(value: str) -> str:
    """
    Encode one id as a single safe key segment.

    The result matches ``[A-Za-z0-9._\\-:+~]+``, never starts with '.', and is at most 120 characters.
    """
    if not value:
        raise ValueError("an id used in an object key must not be empty")
    out: list[str] = []
    for position, char in enumerate(value):
        # A leading '.' would make "..", "." or a hidden file: escape it.
        if char in _KEEP and not (position == 0 and char == "."):
            out.append(char)
        else:
            out.extend(f"~{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
    encoded = "".join(out)
    if len(encoded) > _MAX_PART:
        # "~~" cannot come out of the escaping above, so a shortened id cannot equal a short one.
        digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:20]
        encoded = f"{encoded[:_HEAD_PART]}~~{digest}"
    return encoded


def task_prefix(dag_id: str, run_id: str, task_id: str, map_index: int | None = -1) -> str:
    """
    Relative key prefix unique to one task instance (no leading or trailing '/').

    ``map_index`` is -1 (or None) for an unmapped task, as in Airflow.
    """
    index = -1 if map_index is None else int(map_index)
    if index < -1:
        raise ValueError(f"map_index must be -1 or a non-negative integer, got {map_index!r}")
    return "/".join(
        (
            f"dag_id={encode_key_part(dag_id)}",
            f"run_id={encode_key_part(run_id)}",
            f"task_id={encode_key_part(task_id)}",
            f"map_index={index}",
        )
    )


def run_prefix(dag_id: str, run_id: str) -> str:
    """Relative key prefix of a whole DAG run: every task instance's prefix starts with it."""
    return f"dag_id={encode_key_part(dag_id)}/run_id={encode_key_part(run_id)}"


def image_key_stem(prefix: str, index: int) -> str:
    """Key of image ``index`` under ``prefix`` without its extension (the store adds the sniffed one)."""
    if index < 0:
        raise ValueError(f"image index must be >= 0, got {index}")
    return join_key(prefix, f"image-{index:03d}")


def manifest_key(prefix: str) -> str:
    """Key of the manifest that sits beside a task's images."""
    return join_key(prefix, MANIFEST_NAME)


def join_key(*parts: str) -> str:
    """Join relative key parts with '/' and validate the result."""
    return check_key("/".join(part.strip("/") for part in parts if part.strip("/")))


_BAD_KEY_CHARS = re.compile(r"[\x00-\x1f\x7f\\?#]")


def check_key(key: str) -> str:
    """
    Validate a key relative to a store's base; return it unchanged.

    Defence in depth: every store method checks its key, so even a key built by hand cannot reach
    outside the base directory or prefix.
    """
    if not key or key.startswith("/"):
        raise InvalidOutputURIError(f"object key must be a non-empty relative path, got {key!r}")
    if _BAD_KEY_CHARS.search(key):
        raise InvalidOutputURIError(f"object key {key!r} contains a control character, '\\', '?' or '#'")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidOutputURIError(f"object key {key!r} has an empty, '.' or '..' segment")
    return key


__all__ = [
    "MANIFEST_NAME",
    "check_key",
    "encode_key_part",
    "image_key_stem",
    "join_key",
    "manifest_key",
    "run_prefix",
    "task_prefix",
]
