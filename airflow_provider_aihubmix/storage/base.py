"""The store interface the operators call, and the streaming pieces both stores share."""

from __future__ import annotations

import hashlib
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from typing import IO, Any
from urllib.parse import quote

from airflow_provider_aihubmix.exceptions import (
    AtomicCreateUnsupportedError,
    ImageTooLargeError,
    IncompleteImageError,
)
from airflow_provider_aihubmix.storage.sniff import SNIFF_HEAD_BYTES, ImageInfo, sniff_image

#: Bytes of a streamed image kept in RAM before the spool rolls over to a temporary file.
SPOOL_MEMORY_BYTES = 8 * 1024 * 1024
#: Read size when copying or reading back objects.
READ_CHUNK_BYTES = 1024 * 1024

# S3 limits user metadata to 2 KB in total (keys + values) and sends it as ASCII headers.
_METADATA_TOTAL_BYTES = 2048
_METADATA_VALUE_CHARS = 256
_METADATA_KEY = re.compile(r"[^a-z0-9-]+")
# Printable ASCII except '%', so quote() only touches what an HTTP header cannot carry.
_METADATA_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


@dataclass(frozen=True)
class StoredObject:
    """One image as written: where it is and what it is. ``as_dict`` is JSON-serialisable."""

    uri: str
    key: str
    content_type: str
    bytes: int
    sha256: str
    width: int | None
    height: int | None
    metadata: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of_image(
        cls,
        uri: str,
        key: str,
        info: ImageInfo,
        *,
        size: int,
        sha256: str,
        metadata: dict[str, str] | None = None,
    ) -> StoredObject:
        """How every store (and a verified re-read) describes an image: where, what, how big."""
        return cls(
            uri=uri,
            key=key,
            content_type=info.content_type,
            bytes=size,
            sha256=sha256,
            width=info.width,
            height=info.height,
            metadata=metadata if metadata is not None else {},
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class HashingWriter:
    """
    Write a stream of chunks to a binary file while hashing, counting and keeping the head.

    The head is sniffed as soon as it is complete, so a multi-megabyte HTML error page is refused
    after ``SNIFF_HEAD_BYTES`` instead of being spooled to the end.
    """

    def __init__(self, fileobj: IO[bytes], *, max_bytes: int | None = None, what: str = "image") -> None:
        self._file = fileobj
        self._max_bytes = max_bytes
        self._what = what
        self._hash = hashlib.sha256()
        self._head = bytearray()
        self._info: ImageInfo | None = None
        self.size = 0

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        if not chunk:
            return
        self.size += len(chunk)
        if self._max_bytes is not None and self.size > self._max_bytes:
            raise ImageTooLargeError(f"{self._what} is larger than the limit of {self._max_bytes} bytes")
        self._hash.update(chunk)
        if len(self._head) < SNIFF_HEAD_BYTES:
            self._head += chunk[: SNIFF_HEAD_BYTES - len(self._head)]
            if len(self._head) >= SNIFF_HEAD_BYTES:
                self._info = sniff_image(self._head)
        self._file.write(chunk)

    def write_all(self, chunks: Iterable[bytes | bytearray | memoryview]) -> None:
        for chunk in chunks:
            self.write(chunk)

    def check_size(self, expected_size: int | None) -> None:
        """Refuse a stream that ended short of (or ran past) the size the server announced."""
        if expected_size is None or expected_size == self.size:
            return
        if self.size < expected_size:
            raise IncompleteImageError(
                f"{self._what} truncated: received {self.size} of {expected_size} announced bytes"
            )
        raise IncompleteImageError(
            f"{self._what} is {self.size} bytes but {expected_size} were announced; refusing to store it"
        )

    def image_info(self) -> ImageInfo:
        if self._info is None:
            self._info = sniff_image(self._head)
        return self._info

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


def build_metadata(metadata: Mapping[str, str], *, sha256: str) -> dict[str, str]:
    """
    Object metadata S3 accepts: lower-case ``[a-z0-9-]`` keys, printable ASCII values.

    Long values are cut to 256 characters and non-ASCII text is percent-encoded, so a caller's
    metadata can never make an otherwise good upload fail. ``sha256`` is always set by the store.
    """
    out: dict[str, str] = {}
    for raw_key, raw_value in metadata.items():
        key = _METADATA_KEY.sub("-", str(raw_key).lower()).strip("-")
        if not key or raw_value is None:
            continue
        out[key] = quote(str(raw_value), safe=_METADATA_SAFE)[:_METADATA_VALUE_CHARS]
    out["sha256"] = sha256
    total = sum(len(k) + len(v) for k, v in out.items())
    if total > _METADATA_TOTAL_BYTES:
        raise ValueError(f"object metadata is {total} bytes; S3 allows {_METADATA_TOTAL_BYTES}")
    return out


def dump_json(obj: Any) -> bytes:
    """Stable, human-readable JSON for manifests."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False).encode("utf-8")


#: ``put_image``'s ``on_stored``: (the stored image, a seekable binary reader of its bytes).
OnStored = Callable[["StoredObject", IO[bytes]], None]


class ObjectStore(ABC):
    """
    Images and manifests under one base URI (an ``output_uri``), addressed by relative keys.

    Keys are relative to the base (see ``keys.task_prefix``); methods that read also accept a full
    URI of the same scheme, so a record's ``uri`` from XCom can be passed back as it is.
    """

    #: Canonical form of the ``output_uri`` this store is bound to.
    base_uri: str

    @abstractmethod
    def uri_for(self, key: str) -> str:
        """The full URI of ``key`` (``s3://bucket/prefix/key`` or ``file:///dir/key``)."""

    @abstractmethod
    def key_for(self, uri: str) -> str:
        """The key of a URI under this store's base; raises if the URI is elsewhere."""

    @abstractmethod
    def put_image(
        self,
        key_stem: str,
        chunks: Iterable[bytes],
        *,
        metadata: Mapping[str, str],
        expected_size: int | None = None,
        max_bytes: int | None = None,
        on_stored: OnStored | None = None,
    ) -> StoredObject:
        """
        Stream an image to ``{key_stem}.{sniffed extension}``, verified, or store nothing.

        The stream is hashed and sniffed while it is read; a stream that is not an image, ends short of
        ``expected_size`` or exceeds ``max_bytes`` raises before anything is visible under the key.
        ``on_stored`` is called once the image is stored, with it and a seekable reader of the bytes
        just written, before the store lets go of them: what the caller needs from the image (its
        thumbnail) without reading the object back; what it raises propagates.
        """

    @abstractmethod
    def put_image_bytes(self, key_stem: str, data: bytes, *, metadata: Mapping[str, str]) -> StoredObject:
        """``put_image`` for an image already in memory (``b64_json``), without copying it again."""

    @abstractmethod
    def write_json(self, key: str, obj: Any) -> str:
        """Write ``obj`` as JSON atomically (a reader sees the old or the new document); return its URI."""

    @abstractmethod
    def read_json(self, key: str) -> Any | None:
        """The parsed JSON at ``key``, or None when there is no such object."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether an object exists at ``key``."""

    @abstractmethod
    def open_read(self, uri_or_key: str) -> AbstractContextManager[IO[bytes]]:
        """A binary stream of the object at a key or a URI of this store's scheme."""

    def read_bytes(self, uri_or_key: str, *, max_bytes: int | None = None) -> bytes:
        """The whole object; ``ImageTooLargeError`` past ``max_bytes`` (read at most one byte more)."""
        with self.open_read(uri_or_key) as stream:
            if max_bytes is None:
                return stream.read()
            data = stream.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise ImageTooLargeError(f"{uri_or_key} is larger than the limit of {max_bytes} bytes")
        return data

    def list_keys(self, prefix: str) -> list[str]:
        """Keys under ``prefix`` (relative, '/'-separated), sorted; ``[]`` when there are none.

        Used to read the manifests of a whole DAG run (the DAG-level budget, run cost summaries).
        """
        raise NotImplementedError(f"{type(self).__name__} cannot list keys")

    def create_json(self, key: str, obj: Any) -> bool:
        """Create ``key`` holding ``obj`` as JSON only if no object is there; return whether it was created.

        Atomic: of any number of concurrent callers for one key exactly one gets True, and a reader
        sees either no object or the whole document. This is what gives the DAG budget's
        reservation ledger its total order (:mod:`airflow_provider_aihubmix.pricing.reservations`).
        A retry of the caller's own create that already succeeded also answers True (the store
        compares the document it finds with ``obj``), so pass a document unique to the caller.

        A store that cannot create atomically keeps this default, which raises; the DAG budget then
        refuses to run naming the store (the per-task ``max_cost_usd`` still works).

        :raises AtomicCreateUnsupportedError: the store has no atomic create.
        """
        raise AtomicCreateUnsupportedError(
            f"{type(self).__name__} ({self.base_uri}) has no atomic create-if-absent"
        )

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object at ``key``; a missing object is not an error."""

    @abstractmethod
    def link_for(self, uri: str) -> str:
        """A link a person can open for ``uri``: the S3 console (or a presigned URL) or a local path."""

    def presigned_url(self, key: str, expires_s: int) -> str | None:
        """A GET URL of the object at ``key`` that the store itself honours for ``expires_s``
        seconds and refuses after, or None when this store (or its credentials) cannot sign one:
        the caller then streams the object. S3: SigV4 query auth; GCS: a V4 signed URL; Azure: a
        read-only SAS."""
        return None


__all__ = [
    "READ_CHUNK_BYTES",
    "SPOOL_MEMORY_BYTES",
    "HashingWriter",
    "ObjectStore",
    "OnStored",
    "StoredObject",
    "build_metadata",
    "dump_json",
]
