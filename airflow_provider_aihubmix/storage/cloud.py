"""
What every object store but S3 shares: streaming, verification, retries, manifests, listing.

A backend (``gcs.py``, ``azure.py``; a fourth joins by one module) supplies a handful of
primitives on one object -- upload with its content type and metadata, describe (size + MD5 the
store computed), download, create-if-absent, list, delete -- and what counts as transient or
missing. :class:`CloudObjectStore` builds the :class:`ObjectStore` contract on them with the
guarantees the S3 store has:

* images are streamed through a spool (at most ``SPOOL_MEMORY_BYTES`` in RAM), hashed (sha256 and
  MD5) and sniffed while read; nothing is uploaded when the stream is not an image, short of its
  announced size or over ``max_bytes``;
* after each upload the store is asked what it holds: its size and its own MD5 (GCS ``md5Hash``,
  Azure ``Content-MD5``, both computed by the service) must equal what was sent, else the object
  is deleted and the write retried; after the retry budget the task fails (``AIHubMixStorageError``)
  and nothing is recorded. The sha256 goes into the object's metadata as on S3;
* transient failures (connection errors, 429, 5xx) are retried with the S3 store's budget: 9 tries,
  1 s doubling to 8 s (about a minute);
* ``create_json`` is the store's conditional create (GCS ``ifGenerationMatch=0``, Azure
  ``If-None-Match: *``), so the DAG budget's reservations work on these stores too.

Why hooks rather than Airflow's ``ObjectStoragePath``: the fsspec file systems behind it (gcsfs,
adlfs) write and read, but expose neither a conditional create (no ``ifGenerationMatch`` /
``If-None-Match`` on ``pipe``/``open``) nor a documented, store-computed checksum of what was
written in a form common to the file systems (``info()`` keys differ per backend), and their
``open('wb')`` buffers whole blocks with retries we cannot bound to the S3 budget. The contract
needs all three, so the stores use the providers' hooks (``GCSHook``, ``WasbHook``), as the S3
store uses ``S3Hook``: the same connections (``google_cloud_default``, ``wasb_default``), imported
only when a store of that kind is opened. An ``ObjectStoragePath`` is still accepted as an
``output_uri`` (its URI and ``conn_id`` are used).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import time
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import IO, Any, TypeVar, cast

from airflow_provider_aihubmix.exceptions import (
    AIHubMixStorageError,
    ImageTooLargeError,
    InvalidOutputURIError,
    StoredObjectMismatchError,
)
from airflow_provider_aihubmix.storage.base import (
    SPOOL_MEMORY_BYTES,
    HashingWriter,
    ObjectStore,
    OnStored,
    StoredObject,
    build_metadata,
    dump_json,
)
from airflow_provider_aihubmix.storage.keys import check_key
from airflow_provider_aihubmix.storage.lineage import record_asset
from airflow_provider_aihubmix.storage.sniff import ImageInfo
from airflow_provider_aihubmix.storage.spool import ImageSpool, NullSink, put_spooled
from airflow_provider_aihubmix.storage.uris import OutputLocation, parse_output_uri, split_object_uri

log = logging.getLogger(__name__)

T = TypeVar("T")

JSON_CONTENT_TYPE = "application/json; charset=utf-8"


@dataclass(frozen=True)
class ObjectFacts:
    """What the store reports about an object it holds: its size and the MD5 it computed (raw bytes)."""

    size: int
    md5: bytes | None


class CloudObjectStore(ObjectStore):
    """
    The :class:`ObjectStore` contract over a backend's primitives (see the module docstring).

    :param output_uri: ``scheme://bucket/prefix`` of the backend's scheme.
    :param conn_id: the Airflow connection of the backend's hook.
    :param max_attempts: tries per write or read when the store is unreachable or answers 5xx/429.
    :param retry_base_delay: seconds before the second try; doubles per try up to ``retry_max_delay``.
    """

    #: Schemes this backend serves, and its name in messages.
    schemes: tuple[str, ...] = ()
    service: str = "object store"

    def __init__(
        self,
        output_uri: str,
        *,
        conn_id: str | None,
        client: Any | None = None,
        max_attempts: int = 9,
        retry_base_delay: float = 1.0,
        retry_max_delay: float = 8.0,
        spool_memory_bytes: int = SPOOL_MEMORY_BYTES,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        location = parse_output_uri(output_uri)
        if location.scheme not in self.schemes or location.bucket is None:
            raise InvalidOutputURIError(
                f"output_uri {output_uri!r} is not a {' / '.join(s + '://' for s in self.schemes)} URI"
            )
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.location: OutputLocation = location
        self.bucket: str = location.bucket
        self.prefix = location.path
        self.base_uri = location.uri
        self.root_uri = location.root
        self.conn_id = conn_id
        self.max_attempts = max_attempts
        self.retry_base_delay = retry_base_delay
        self.retry_max_delay = retry_max_delay
        self.spool_memory_bytes = spool_memory_bytes
        self._sleep = sleep
        self._client = client

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_uri!r}, conn_id={self.conn_id!r})"

    # -- what a backend supplies -------------------------------------------------------------------

    @abstractmethod
    def _upload(
        self, name: str, source: ImageSpool, *, content_type: str, metadata: Mapping[str, str]
    ) -> None:
        """Upload ``source`` to object ``name`` of the bucket (replacing it)."""

    @abstractmethod
    def _upload_bytes(self, name: str, body: bytes, *, content_type: str, if_absent: bool) -> bool:
        """Upload ``body``; with ``if_absent`` only when no object is there (False when one is)."""

    @abstractmethod
    def _facts(self, name: str) -> ObjectFacts | None:
        """Size and store-computed MD5 of object ``name``, or None when there is none."""

    @abstractmethod
    def _download(self, bucket: str, name: str) -> bytes | None:
        """The whole object, or None when there is none."""

    @abstractmethod
    def _open(self, bucket: str, name: str) -> IO[bytes]:
        """A binary stream of the object (the caller closes it)."""

    @abstractmethod
    def _list(self, prefix: str) -> list[str]:
        """Names of the objects under ``prefix`` (bucket-relative)."""

    @abstractmethod
    def _delete(self, name: str) -> None:
        """Delete object ``name``; a missing object is not an error."""

    @abstractmethod
    def is_transient(self, exc: BaseException) -> bool:
        """Whether retrying in a few seconds can cure ``exc``."""

    # -- addressing -------------------------------------------------------------------------------

    def full_key(self, key: str) -> str:
        """The object name of a relative ``key`` (prefix included)."""
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri_for(self, key: str) -> str:
        return f"{self.root_uri}/{self.full_key(key)}"

    def key_for(self, uri: str) -> str:
        _, root, name = split_object_uri(uri)
        base = f"{self.prefix}/" if self.prefix else ""
        if root != self.root_uri or not name.startswith(base) or name == base:
            raise InvalidOutputURIError(f"{uri!r} is not under output_uri {self.base_uri!r}")
        return check_key(name[len(base) :])

    def _locate(self, uri_or_key: str) -> tuple[str, str, str]:
        """(bucket, object name, URI) of a key under the base or a URI of this store's kind."""
        if "://" not in uri_or_key:
            name = self.full_key(uri_or_key)
            return self.bucket, name, f"{self.root_uri}/{name}"
        scheme, root, name = split_object_uri(uri_or_key)
        if scheme not in self.schemes:
            raise InvalidOutputURIError(f"{uri_or_key!r} is not a {self.service} URI")
        bucket = root.split("://", 1)[1].split("@", 1)[0]
        return bucket, name, f"{root}/{name}"

    # -- retries ----------------------------------------------------------------------------------

    def _retry(self, what: str, call: Callable[[], T], *, give_up: Callable[[], None] | None = None) -> T:
        """``call`` until it succeeds; transient failures back off as on S3, others raise at once."""
        delay = self.retry_base_delay
        for attempt in range(1, self.max_attempts + 1):
            try:
                return call()
            except (AIHubMixStorageError, ValueError) as exc:
                if not isinstance(exc, StoredObjectMismatchError):
                    raise
                error: BaseException = exc
            except Exception as exc:
                error = exc
            transient = isinstance(error, StoredObjectMismatchError) or self.is_transient(error)
            if not transient or attempt == self.max_attempts:
                if give_up is not None:
                    give_up()
                tries = f"{attempt} attempt{'s' if attempt > 1 else ''}"
                reason = "" if transient else " (not retried)"
                raise AIHubMixStorageError(
                    f"{self.service} {what} failed after {tries}{reason}: {type(error).__name__}: {error}"
                ) from error
            log.warning(
                "%s %s failed (attempt %d of %d), retrying in %.1fs: %s: %s",
                self.service,
                what,
                attempt,
                self.max_attempts,
                delay,
                type(error).__name__,
                error,
            )
            self._sleep(delay)
            delay = min(delay * 2, self.retry_max_delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _delete_quietly(self, name: str) -> None:
        try:
            self._delete(name)
        except Exception:
            log.warning("Could not remove %s/%s after a failed write", self.root_uri, name, exc_info=True)

    # -- writes -----------------------------------------------------------------------------------

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
        check_key(key_stem)
        return put_spooled(
            chunks,
            lambda spool, info, size, sha256: self._store_image(
                spool, key_stem, info, size, sha256, metadata
            ),
            key_stem=key_stem,
            memory=self.spool_memory_bytes,
            expected_size=expected_size,
            max_bytes=max_bytes,
            on_stored=on_stored,
        )

    def put_image_bytes(self, key_stem: str, data: bytes, *, metadata: Mapping[str, str]) -> StoredObject:
        check_key(key_stem)
        writer = HashingWriter(cast("IO[bytes]", NullSink()), what=f"image {key_stem!r}")
        writer.write(data)
        return self._store_image(
            ImageSpool.of_bytes(data), key_stem, writer.image_info(), writer.size, writer.sha256, metadata
        )

    def _store_image(
        self,
        source: ImageSpool,
        key_stem: str,
        info: ImageInfo,
        size: int,
        sha256: str,
        metadata: Mapping[str, str],
    ) -> StoredObject:
        key = f"{key_stem}.{info.extension}"
        name = self.full_key(key)
        uri = f"{self.root_uri}/{name}"
        object_metadata = build_metadata(metadata, sha256=sha256)
        md5 = source.md5()

        def attempt() -> None:
            self._upload(name, source, content_type=info.content_type, metadata=object_metadata)
            self.verify(name, uri, size=size, md5=md5)

        self._retry(f"upload of {uri}", attempt, give_up=lambda: self._delete_quietly(name))
        stored = StoredObject.of_image(uri, key, info, size=size, sha256=sha256, metadata=object_metadata)
        record_asset(
            "output", self, uri, {"content_type": info.content_type, "sha256": sha256, "bytes": size}
        )
        return stored

    def verify(self, name: str, uri: str, *, size: int, md5: bytes) -> None:
        """Compare what the store reports for ``name`` with what was sent; delete and raise on a difference.

        :raises StoredObjectMismatchError: the size or the store's own MD5 differs (or it reports none).
        """
        facts = self._facts(name)
        problem = None
        if facts is None:
            problem = "is missing after upload"
        elif facts.size != size:
            problem = f"holds {facts.size} bytes after upload, expected {size}"
        elif facts.md5 is None:
            problem = "reports no MD5 checksum after upload"
        elif facts.md5 != md5:
            problem = (
                f"reports MD5 {base64.b64encode(facts.md5).decode()} after upload, "
                f"expected {base64.b64encode(md5).decode()} (the stored bytes differ)"
            )
        if problem is not None:
            self._delete_quietly(name)
            raise StoredObjectMismatchError(f"{uri} {problem}")

    def write_json(self, key: str, obj: Any) -> str:
        name = self.full_key(key)
        body = dump_json(obj)
        uri = f"{self.root_uri}/{name}"
        # One upload is atomic on GCS and Azure: readers see the previous document or this one.
        self._retry(
            f"write of {uri}",
            lambda: self._upload_bytes(name, body, content_type=JSON_CONTENT_TYPE, if_absent=False),
        )
        return uri

    def create_json(self, key: str, obj: Any) -> bool:
        """Create ``key`` only if absent, through the store's conditional create.

        "Taken" answers False unless the object there is ``obj`` itself (a retry of this create
        after an answer lost on the way), as on S3.
        """
        name = self.full_key(key)
        body = dump_json(obj)
        uri = f"{self.root_uri}/{name}"
        created = self._retry(
            f"conditional create of {uri}",
            lambda: self._upload_bytes(name, body, content_type=JSON_CONTENT_TYPE, if_absent=True),
        )
        return True if created else bool(self.read_json(key) == json.loads(body))

    def delete(self, key: str) -> None:
        name = self.full_key(key)
        self._retry(f"delete of {self.root_uri}/{name}", lambda: self._delete(name))

    # -- reads ------------------------------------------------------------------------------------

    def read_json(self, key: str) -> Any | None:
        name = self.full_key(key)
        data = self._retry(f"read of {self.root_uri}/{name}", lambda: self._download(self.bucket, name))
        return None if data is None else json.loads(data)

    def exists(self, key: str) -> bool:
        name = self.full_key(key)
        return self._retry(f"lookup of {self.root_uri}/{name}", lambda: self._facts(name) is not None)

    def list_keys(self, prefix: str) -> list[str]:
        listed = self.full_key(prefix).rstrip("/") + "/"
        base = f"{self.prefix}/" if self.prefix else ""
        names = self._retry(f"listing of {self.root_uri}/{listed}", lambda: self._list(listed))
        return sorted(name[len(base) :] for name in names)

    def open_read(self, uri_or_key: str) -> AbstractContextManager[IO[bytes]]:
        bucket, name, uri = self._locate(uri_or_key)
        return self._open_retried(bucket, name, uri)

    @contextlib.contextmanager
    def _open_retried(self, bucket: str, name: str, uri: str) -> Iterator[IO[bytes]]:
        stream = self._retry(f"read of {uri}", lambda: self._open(bucket, name))
        with contextlib.closing(stream):
            yield stream

    def read_bytes(self, uri_or_key: str, *, max_bytes: int | None = None) -> bytes:
        bucket, name, uri = self._locate(uri_or_key)

        def attempt() -> bytes:
            with contextlib.closing(self._open(bucket, name)) as stream:
                data = stream.read() if max_bytes is None else stream.read(max_bytes + 1)
            if max_bytes is not None and len(data) > max_bytes:
                raise ImageTooLargeError(f"{uri} is larger than the limit of {max_bytes} bytes")
            return data

        return self._retry(f"read of {uri}", attempt)


__all__ = ["CloudObjectStore", "ObjectFacts"]
