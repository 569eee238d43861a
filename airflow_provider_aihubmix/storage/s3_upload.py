"""
Uploads to S3 that S3 itself verifies: the image's SHA-256 travels with its bytes.

A single PUT carries ``x-amz-checksum-sha256`` (``ChecksumSHA256``); each part of a multipart
upload carries its own, and the upload is created with ``ChecksumAlgorithm=SHA256``. S3 computes
the checksum of what it received and refuses the write (``400 BadDigest``) when it differs, so a
body corrupted on the way is never stored. When S3 accepted it, its answer carries the checksum
back (``ChecksumSHA256``; for a multipart upload the *composite* one, the SHA-256 of the parts'
binary digests followed by ``-<parts>``). Source: the Amazon S3 User Guide, "Checking object
integrity" (using supported checksum algorithms; checksums of multipart uploads).

Older S3-compatible stores ignore the checksum headers and answer without one: those writes are
not confirmed, and the store checks them with a ``HEAD`` instead (:func:`head_confirms`). Some
refuse the headers outright (``400 InvalidArgument``, ``501 NotImplemented``): a write refused
that way is sent again with ``Content-MD5`` instead (``checksum=False``), which every S3-compatible
store verifies (``400 BadDigest``), then checked with the ``HEAD`` (``s3_errors.refuses_checksums``).
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, cast

from airflow_provider_aihubmix.storage.spool import ImageSpool

log = logging.getLogger(__name__)

#: S3's smallest part size (all but the last part).
MIN_PART_BYTES = 5 * 1024 * 1024
#: S3's largest number of parts in one upload.
MAX_PARTS = 10_000


def b64(digest: bytes) -> str:
    """A binary digest as S3 writes checksums: standard base64."""
    return base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True)
class UploadResult:
    """
    What an upload sent and what the store said back.

    :param sent: the checksum the store was asked to verify: the object's base64 SHA-256, or for
        a multipart upload the composite ``<base64>-<parts>``; None when the upload went without
        checksum headers (a store that refuses them: ``Content-MD5`` only).
    :param echoed: the ``ChecksumSHA256`` of the store's answer; None when it sent none (a store
        that does not verify checksums).
    :param full_sha256: the object's own base64 SHA-256 (equal to ``sent`` for a single PUT).
    """

    sent: str | None
    echoed: str | None
    full_sha256: str

    @property
    def confirmed(self) -> bool:
        """Whether the store's answer carries the checksum we sent: it verified the bytes."""
        return self.sent is not None and self.echoed == self.sent

    def matches(self, reported: str) -> bool:
        """Whether a checksum the store reports (``HEAD``) is this object's, full or composite.

        Some stores drop the ``-<parts>`` suffix of a composite checksum; the digest part decides.
        """
        if reported == self.full_sha256:
            return True
        return self.sent is not None and reported.split("-", 1)[0] == self.sent.split("-", 1)[0]


def head_confirms(head: Mapping[str, Any], result: UploadResult, size: int) -> str | None:
    """Why a ``HEAD`` (asked with ``ChecksumMode=ENABLED``) does not confirm the upload, or None.

    The size must match; a checksum, when the store reports one, must be this object's.
    """
    if int(head["ContentLength"]) != size:
        return f"holds {head['ContentLength']} bytes after upload, expected {size}"
    reported = head.get("ChecksumSHA256")
    if reported and not result.matches(str(reported)):
        return f"reports SHA-256 {reported} after upload, expected {result.sent}"
    return None


def put_single(
    client: Any,
    bucket: str,
    key: str,
    source: ImageSpool,
    *,
    size: int,
    sha256_hex: str,
    extra: Mapping[str, Any],
    checksum: bool = True,
) -> UploadResult:
    """One ``PutObject`` of the spooled image with its SHA-256 for S3 to verify (``checksum``), or
    with its ``Content-MD5`` for a store that refuses checksum headers."""
    sha256 = b64(bytes.fromhex(sha256_hex))
    integrity = (
        {"ChecksumAlgorithm": "SHA256", "ChecksumSHA256": sha256}
        if checksum
        else {"ContentMD5": b64(source.md5())}
    )
    with source.reader() as body:
        response = client.put_object(
            Bucket=bucket, Key=key, Body=body, ContentLength=size, **integrity, **extra
        )
    if not checksum:
        return UploadResult(sent=None, echoed=None, full_sha256=sha256)
    return UploadResult(sent=sha256, echoed=response.get("ChecksumSHA256"), full_sha256=sha256)


def put_multipart(
    client: Any,
    bucket: str,
    key: str,
    source: ImageSpool,
    *,
    size: int,
    sha256_hex: str,
    extra: Mapping[str, Any],
    part_bytes: int,
    concurrency: int,
    checksum: bool = True,
) -> UploadResult:
    """
    A multipart upload, each part with its SHA-256 (or its ``Content-MD5`` when not ``checksum``),
    ``concurrency`` parts in flight.

    Each part is read from the spool when its turn comes, so at most ``concurrency`` parts are in
    memory. Any failure aborts the upload (S3 then keeps no parts) and raises.
    """
    part_bytes = max(part_bytes, MIN_PART_BYTES, -(-size // MAX_PARTS))
    offsets = list(range(0, size, part_bytes))
    algorithm = {"ChecksumAlgorithm": "SHA256"} if checksum else {}
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key, **algorithm, **extra)["UploadId"]

    def send(number: int) -> tuple[dict[str, Any], bytes]:
        data = _read_part(source, offsets[number - 1], min(part_bytes, size - offsets[number - 1]))
        digest = hashlib.sha256(data).digest()
        integrity = (
            {**algorithm, "ChecksumSHA256": b64(digest)}
            if checksum
            else {"ContentMD5": b64(hashlib.md5(data, usedforsecurity=False).digest())}
        )
        response = client.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data, **integrity
        )
        part = {"PartNumber": number, "ETag": response["ETag"]}
        return ({**part, "ChecksumSHA256": b64(digest)} if checksum else part), digest

    try:
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="aihubmix-s3-part") as pool:
            sent_parts = list(pool.map(send, range(1, len(offsets) + 1)))
        response = client.complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": [part for part, _ in sent_parts]},
        )
    except BaseException:
        try:
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        except Exception:
            log.warning("Could not abort the multipart upload to s3://%s/%s", bucket, key, exc_info=True)
        raise
    if not checksum:
        return UploadResult(sent=None, echoed=None, full_sha256=b64(bytes.fromhex(sha256_hex)))
    composite = hashlib.sha256(b"".join(digest for _, digest in sent_parts)).digest()
    return UploadResult(
        sent=f"{b64(composite)}-{len(sent_parts)}",
        echoed=response.get("ChecksumSHA256"),
        full_sha256=b64(bytes.fromhex(sha256_hex)),
    )


def upload(
    client: Any,
    bucket: str,
    key: str,
    source: ImageSpool,
    *,
    size: int,
    sha256_hex: str,
    extra: Mapping[str, Any],
    part_bytes: int,
    concurrency: int,
    checksum: bool = True,
) -> UploadResult:
    """:func:`put_single` up to ``part_bytes``, :func:`put_multipart` above."""
    if size <= part_bytes:
        return put_single(
            client, bucket, key, source, size=size, sha256_hex=sha256_hex, extra=extra, checksum=checksum
        )
    return put_multipart(
        client,
        bucket,
        key,
        source,
        size=size,
        sha256_hex=sha256_hex,
        extra=extra,
        part_bytes=part_bytes,
        concurrency=concurrency,
        checksum=checksum,
    )


def _read_part(source: ImageSpool, offset: int, length: int) -> bytes:
    with source.reader() as reader:  # one reader per part: parts are read from threads
        reader.seek(offset)
        return cast("bytes", reader.read(length))


__all__ = [
    "UploadResult",
    "b64",
    "head_confirms",
    "put_multipart",
    "put_single",
    "upload",
]
