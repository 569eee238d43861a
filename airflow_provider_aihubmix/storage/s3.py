"""
``s3://`` store through the amazon provider's AWS connection.

boto3 and the amazon provider are imported only when an S3 store is used, so importing the
operators stays cheap. Uploads come from a spooled file (at most ``SPOOL_MEMORY_BYTES`` in RAM), in
8 MB parts two at a time when large, so memory stays bounded whatever the image size; each carries
its SHA-256 for S3 to verify (``s3_upload``), and each write is retried as a whole when S3 is briefly
unreachable.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from functools import cached_property
from typing import IO, Any, TypeVar, cast
from urllib.parse import quote

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
from airflow_provider_aihubmix.storage.s3_errors import describe, is_missing, is_transient, refuses_checksums
from airflow_provider_aihubmix.storage.s3_upload import UploadResult, head_confirms, upload
from airflow_provider_aihubmix.storage.sniff import ImageInfo
from airflow_provider_aihubmix.storage.spool import ImageSpool, NullSink, put_spooled
from airflow_provider_aihubmix.storage.uris import parse_output_uri, split_s3_uri

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Part size and single-PUT threshold for uploads: a larger image goes multipart.
TRANSFER_CHUNK_BYTES = 8 * 1024 * 1024
#: Parallel part uploads; each holds one part in memory (an upload's peak: ~16 MB).
TRANSFER_CONCURRENCY = 2


class S3ObjectStore(ObjectStore):
    """
    Objects in an S3 bucket under a key prefix, written through the AWS connection ``aws_conn_id``.

    :param output_uri: ``s3://bucket/prefix``.
    :param aws_conn_id: AWS connection (None: boto3's default credential chain).
    :param client: a ready boto3 S3 client, instead of one from the connection.
    :param max_attempts: tries per write or read when S3 is unreachable or answers 5xx/429.
    :param retry_base_delay: seconds before the second try; doubles per try up to ``retry_max_delay``.
        The defaults ride out about a minute of outage: once an image is bought, waiting for S3
        to come back beats failing a task whose answer cannot then be recorded.
    :param presigned_link_expires: if set, ``link_for`` returns a presigned GET URL valid this many
        seconds instead of an S3 console link.
    """

    def __init__(
        self,
        output_uri: str,
        *,
        aws_conn_id: str | None = "aws_default",
        client: Any | None = None,
        max_attempts: int = 9,
        retry_base_delay: float = 1.0,
        retry_max_delay: float = 8.0,
        presigned_link_expires: int | None = None,
        spool_memory_bytes: int = SPOOL_MEMORY_BYTES,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        location = parse_output_uri(output_uri)
        if location.scheme != "s3" or location.bucket is None:
            raise InvalidOutputURIError(f"output_uri {output_uri!r} is not an s3:// URI")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.bucket = location.bucket
        self.prefix = location.path
        self.base_uri = location.uri
        self.aws_conn_id = aws_conn_id
        self.max_attempts = max_attempts
        self.retry_base_delay = retry_base_delay
        self.retry_max_delay = retry_max_delay
        self.presigned_link_expires = presigned_link_expires
        self.spool_memory_bytes = spool_memory_bytes
        self._sleep = sleep
        # Off once the store refused the checksum headers and took the same write without them.
        self.sends_checksums = True
        if client is not None:
            self.__dict__["client"] = client

    def __repr__(self) -> str:
        return f"S3ObjectStore({self.base_uri!r}, aws_conn_id={self.aws_conn_id!r})"

    @cached_property
    def client(self) -> Any:
        """boto3 S3 client from the amazon provider's S3Hook (endpoint, region, credentials, config)."""
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=self.aws_conn_id).get_conn()

    # -- addressing -------------------------------------------------------------------------------

    def full_key(self, key: str) -> str:
        """The S3 key of a relative ``key`` (prefix included)."""
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri_for(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.full_key(key)}"

    def key_for(self, uri: str) -> str:
        bucket, key = split_s3_uri(uri)
        base = f"{self.prefix}/" if self.prefix else ""
        if bucket != self.bucket or not key.startswith(base) or key == base:
            raise InvalidOutputURIError(f"{uri!r} is not under output_uri {self.base_uri!r}")
        return check_key(key[len(base) :])

    def _locate(self, uri_or_key: str) -> tuple[str, str]:
        if "://" in uri_or_key:
            return split_s3_uri(uri_or_key)
        return self.bucket, self.full_key(uri_or_key)

    # -- retries ----------------------------------------------------------------------------------

    def _retry(self, what: str, call: Callable[[], T], *, give_up: Callable[[], None] | None = None) -> T:
        """
        Run ``call`` until it succeeds, retrying transient failures with exponential backoff.

        Non-transient failures (access denied, no such bucket) raise at once; ``give_up`` runs before
        the final error so nothing half-written stays behind.
        """
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
            transient = is_transient(error)
            if not transient or attempt == self.max_attempts:
                if give_up is not None:
                    give_up()
                tries = f"{attempt} attempt{'s' if attempt > 1 else ''}"
                reason = "" if transient else " (not retried)"
                raise AIHubMixStorageError(
                    f"S3 {what} failed after {tries}{reason}: {describe(error)}"
                ) from error
            log.warning(
                "S3 %s failed (attempt %d of %d), retrying in %.1fs: %s",
                what,
                attempt,
                self.max_attempts,
                delay,
                describe(error),
            )
            self._sleep(delay)
            delay = min(delay * 2, self.retry_max_delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _delete_quietly(self, bucket: str, key: str) -> None:
        try:
            self.client.delete_object(Bucket=bucket, Key=key)
        except Exception:
            log.warning("Could not remove s3://%s/%s after a failed write", bucket, key, exc_info=True)

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
            lambda spool, info, size, sha256: self._upload_image(
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
        return self._upload_image(
            ImageSpool.of_bytes(data), key_stem, writer.image_info(), writer.size, writer.sha256, metadata
        )

    def _upload_image(
        self,
        source: ImageSpool,
        key_stem: str,
        info: ImageInfo,
        size: int,
        sha256: str,
        metadata: Mapping[str, str],
    ) -> StoredObject:
        key = f"{key_stem}.{info.extension}"
        s3_key = self.full_key(key)
        uri = f"s3://{self.bucket}/{s3_key}"
        object_metadata = build_metadata(metadata, sha256=sha256)
        extra = {"ContentType": info.content_type, "Metadata": object_metadata}

        def attempt() -> None:
            # S3 verifies the SHA-256 sent with the bytes and refuses a corrupted body (BadDigest,
            # retried); an answer that carries our checksum back confirms the write. A store that
            # answers without one (older S3-compatible stores ignore the header) gets a HEAD.
            result = self._send(source, s3_key, size=size, sha256=sha256, extra=extra)
            if result.confirmed:
                return
            if result.echoed is not None:
                problem = f"reports SHA-256 {result.echoed} after upload, expected {result.sent}"
            else:
                head = self.client.head_object(Bucket=self.bucket, Key=s3_key, ChecksumMode="ENABLED")
                problem = head_confirms(head, result, size) or ""
            if problem:
                self._delete_quietly(self.bucket, s3_key)
                raise StoredObjectMismatchError(f"{uri} {problem}")

        self._retry(f"upload of {uri}", attempt, give_up=lambda: self._delete_quietly(self.bucket, s3_key))
        stored = StoredObject.of_image(uri, key, info, size=size, sha256=sha256, metadata=object_metadata)
        lineage_extra = {"content_type": info.content_type, "sha256": sha256, "bytes": size}
        record_asset("output", self, uri, lineage_extra)
        return stored

    def _send(
        self, source: ImageSpool, s3_key: str, *, size: int, sha256: str, extra: Mapping[str, Any]
    ) -> UploadResult:
        """One upload (``s3_upload.upload``); sent once more without checksum headers when the store
        refused them (detected, not configured), and a store that took it so gets no more of them."""

        def send(checksum: bool) -> UploadResult:
            return upload(
                self.client,
                self.bucket,
                s3_key,
                source,
                size=size,
                sha256_hex=sha256,
                extra=extra,
                part_bytes=TRANSFER_CHUNK_BYTES,
                concurrency=TRANSFER_CONCURRENCY,
                checksum=checksum,
            )

        if not self.sends_checksums:
            return send(False)
        try:
            return send(True)
        except Exception as err:
            if not refuses_checksums(err):
                raise
            result = send(False)
            log.warning(
                "s3://%s refused the checksum headers (%s) and took the write with Content-MD5: its "
                "writes are verified with Content-MD5 and a HEAD from now on",
                self.bucket,
                err,
            )
            self.sends_checksums = False
            return result

    def write_json(self, key: str, obj: Any) -> str:
        s3_key = self.full_key(key)
        body = dump_json(obj)
        uri = f"s3://{self.bucket}/{s3_key}"

        # A single PUT is atomic on S3: readers see the previous manifest or this one.
        def attempt() -> None:
            self.client.put_object(
                Bucket=self.bucket, Key=s3_key, Body=body, ContentType="application/json; charset=utf-8"
            )

        self._retry(f"write of {uri}", attempt)
        return uri

    def create_json(self, key: str, obj: Any) -> bool:
        """Create ``key`` only if absent: a conditional PUT (``If-None-Match: *``, honoured by AWS S3
        since August 2024, MinIO and moto; every botocore this provider supports sends it).

        412 (the key exists) answers False, unless the object there is ``obj`` itself: a retry of
        this create after an answer lost on the way. 409 (a concurrent conditional write in
        progress) is retried like a transient failure.
        """
        s3_key = self.full_key(key)
        body = dump_json(obj)
        uri = f"s3://{self.bucket}/{s3_key}"

        def attempt() -> bool:
            from botocore.exceptions import ClientError

            try:
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=s3_key,
                    Body=body,
                    ContentType="application/json; charset=utf-8",
                    IfNoneMatch="*",
                )
            except ClientError as exc:
                status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if status == 412 or code == "PreconditionFailed":
                    return False
                if status == 409 or code == "ConditionalRequestConflict":
                    raise StoredObjectMismatchError(f"{uri}: concurrent conditional write") from exc
                raise
            return True

        if self._retry(f"conditional create of {uri}", attempt):
            return True
        return bool(self.read_json(key) == json.loads(body))

    def delete(self, key: str) -> None:
        s3_key = self.full_key(key)
        self._retry(
            f"delete of s3://{self.bucket}/{s3_key}",
            lambda: self.client.delete_object(Bucket=self.bucket, Key=s3_key),
        )

    # -- reads ------------------------------------------------------------------------------------

    def read_json(self, key: str) -> Any | None:
        s3_key = self.full_key(key)

        def attempt() -> bytes | None:
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=s3_key)
            except Exception as exc:
                if is_missing(exc):
                    return None
                raise
            with contextlib.closing(response["Body"]) as body:
                return cast("bytes", body.read())

        data = self._retry(f"read of s3://{self.bucket}/{s3_key}", attempt)
        return None if data is None else json.loads(data)

    def exists(self, key: str) -> bool:
        s3_key = self.full_key(key)

        def attempt() -> bool:
            try:
                self.client.head_object(Bucket=self.bucket, Key=s3_key)
            except Exception as exc:
                if is_missing(exc):
                    return False
                raise
            return True

        return self._retry(f"lookup of s3://{self.bucket}/{s3_key}", attempt)

    def list_keys(self, prefix: str) -> list[str]:
        s3_prefix = self.full_key(prefix).rstrip("/") + "/"
        base = f"{self.prefix}/" if self.prefix else ""

        def attempt() -> list[str]:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=s3_prefix
            )
            return [item["Key"][len(base) :] for page in pages for item in page.get("Contents", [])]

        return sorted(self._retry(f"listing of s3://{self.bucket}/{s3_prefix}", attempt))

    def open_read(self, uri_or_key: str) -> AbstractContextManager[IO[bytes]]:
        bucket, key = self._locate(uri_or_key)
        return self._open_body(bucket, key)

    @contextlib.contextmanager
    def _open_body(self, bucket: str, key: str) -> Iterator[IO[bytes]]:
        response = self._retry(
            f"read of s3://{bucket}/{key}", lambda: self.client.get_object(Bucket=bucket, Key=key)
        )
        with contextlib.closing(response["Body"]) as body:
            yield cast("IO[bytes]", body)

    def read_bytes(self, uri_or_key: str, *, max_bytes: int | None = None) -> bytes:
        bucket, key = self._locate(uri_or_key)
        uri = f"s3://{bucket}/{key}"

        # The whole GET is one attempt: a connection dropped mid-body is retried from the start.
        def attempt() -> bytes:
            response = self.client.get_object(Bucket=bucket, Key=key)
            with contextlib.closing(response["Body"]) as body:
                length = response.get("ContentLength")
                if max_bytes is not None and length is not None and int(length) > max_bytes:
                    raise ImageTooLargeError(f"{uri} is {length} bytes, over the limit of {max_bytes}")
                data = cast("bytes", body.read() if max_bytes is None else body.read(max_bytes + 1))
            if max_bytes is not None and len(data) > max_bytes:
                raise ImageTooLargeError(f"{uri} is larger than the limit of {max_bytes} bytes")
            return data

        return self._retry(f"read of {uri}", attempt)

    def presigned_url(self, key: str, expires_s: int) -> str:
        """A GET URL for the object at ``key`` that S3 honours for ``expires_s`` seconds (SigV4),
        signed with the store's credentials; S3 refuses it (403) once expired."""
        return cast(
            "str",
            self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": self.full_key(check_key(key))},
                ExpiresIn=expires_s,
            ),
        )

    def link_for(self, uri: str) -> str:
        bucket, key = split_s3_uri(uri)
        if self.presigned_link_expires:
            return cast(
                "str",
                self.client.generate_presigned_url(
                    "get_object",
                    Params={"Bucket": bucket, "Key": key},
                    ExpiresIn=self.presigned_link_expires,
                ),
            )
        return f"https://s3.console.aws.amazon.com/s3/object/{bucket}?prefix={quote(key, safe='')}"


__all__ = ["ImageSpool", "S3ObjectStore", "is_transient"]
