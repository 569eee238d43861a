"""The s3:// store against a real S3 API (moto server on loopback), through the AWS connection."""

from __future__ import annotations

import hashlib
import io
import logging
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from airflow_provider_aihubmix.storage import (
    AIHubMixStorageError,
    ImageTooLargeError,
    IncompleteImageError,
    NotAnImageError,
    open_store,
    read_uri_bytes,
    task_prefix,
)
from airflow_provider_aihubmix.storage.s3 import S3ObjectStore
from tests.fixtures.s3 import OutageProxy, S3Bucket, S3Integrity, aws_connection_json, make_s3_client

PREFIX = task_prefix("marketing", "scheduled__2024-05-01T00:00:00+00:00", "generate", 2)
# Every body the server receives from then on: botocore may resend a refused body itself (how often
# depends on its version), which would use up a small count before the store gives up.
EVERY_BODY = 1_000


def make_image(fmt: str = "PNG", size: tuple[int, int] = (96, 64)) -> bytes:
    image = Image.effect_noise(size, 60).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def chunked(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def s3_store(bucket: S3Bucket, **options: Any) -> S3ObjectStore:
    store = open_store(bucket.uri, aws_conn_id="aws_default", **options)
    assert isinstance(store, S3ObjectStore)
    return store


def test_put_image_stream_sets_type_metadata_and_checksum(s3_bucket: S3Bucket) -> None:
    store = s3_store(s3_bucket)
    data = make_image("PNG", (96, 64))
    stored = store.put_image(
        f"{PREFIX}/image-000", chunked(data), metadata={"model": "flux-2-pro"}, expected_size=len(data)
    )
    key = f"images/{PREFIX}/image-000.png"
    assert stored.uri == f"s3://{s3_bucket.name}/{key}"
    assert stored.key == f"{PREFIX}/image-000.png"
    assert (stored.content_type, stored.width, stored.height) == ("image/png", 96, 64)
    head = s3_bucket.client.head_object(Bucket=s3_bucket.name, Key=key)
    assert head["ContentType"] == "image/png"
    assert head["ContentLength"] == len(data)
    assert head["Metadata"] == {"model": "flux-2-pro", "sha256": hashlib.sha256(data).hexdigest()}
    body = s3_bucket.client.get_object(Bucket=s3_bucket.name, Key=key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == stored.sha256


def test_put_image_bytes_uses_the_sniffed_type(s3_bucket: S3Bucket) -> None:
    store = s3_store(s3_bucket)
    data = make_image("JPEG")
    stored = store.put_image_bytes(
        f"{PREFIX}/image-001", data, metadata={"model": "gpt-image-1", "note": "café"}
    )
    head = s3_bucket.client.head_object(Bucket=s3_bucket.name, Key=f"images/{stored.key}")
    assert stored.key.endswith("image-001.jpg")
    assert head["ContentType"] == "image/jpeg"
    assert head["Metadata"]["note"] == "caf%C3%A9"  # S3 metadata is ASCII: non-ASCII is percent-encoded
    assert store.read_bytes(stored.uri) == data


def test_large_image_goes_multipart_from_the_spool(s3_bucket: S3Bucket) -> None:
    # Small RAM spool so the file rolls over to disk; > 8 MB so the upload is multipart.
    store = s3_store(s3_bucket, spool_memory_bytes=1024 * 1024)
    data = make_image("PNG", (32, 32)) + bytes(range(256)) * (9 * 4096)
    stored = store.put_image(f"{PREFIX}/image-000", chunked(data, 1024 * 1024), metadata={})
    head = s3_bucket.client.head_object(Bucket=s3_bucket.name, Key=f"images/{stored.key}")
    assert "-" in head["ETag"]  # a multipart upload's ETag is "<md5>-<parts>"
    assert head["ContentLength"] == len(data) > 8 * 1024 * 1024
    assert hashlib.sha256(store.read_bytes(stored.key)).hexdigest() == hashlib.sha256(data).hexdigest()


def test_truncated_or_non_image_stream_stores_nothing(s3_bucket: S3Bucket) -> None:
    store = s3_store(s3_bucket)
    data = make_image()
    with pytest.raises(IncompleteImageError, match="truncated"):
        store.put_image(f"{PREFIX}/image-000", chunked(data[:-100]), metadata={}, expected_size=len(data))
    with pytest.raises(NotAnImageError):
        store.put_image(f"{PREFIX}/image-000", [b"<html>expired</html>"], metadata={})
    assert s3_bucket.list_keys() == []


def test_manifest_round_trip_exists_and_delete(s3_bucket: S3Bucket) -> None:
    store = s3_store(s3_bucket)
    key = f"{PREFIX}/manifest.json"
    assert store.read_json(key) is None
    assert not store.exists(key)
    document = {
        "fingerprint": "abc",
        "records": [{"index": 0, "uri": "s3://b/k.png"}],
        "prompt": "🌅 sunrise",
    }
    uri = store.write_json(key, document)
    assert uri == f"s3://{s3_bucket.name}/images/{key}"
    assert store.read_json(key) == document
    assert store.exists(key)
    head = s3_bucket.client.head_object(Bucket=s3_bucket.name, Key=f"images/{key}")
    assert head["ContentType"].startswith("application/json")
    store.delete(key)
    assert store.read_json(key) is None


def test_read_uri_bytes_and_open_read_of_s3_objects(s3_bucket: S3Bucket) -> None:
    store = s3_store(s3_bucket)
    data = make_image("WEBP")
    stored = store.put_image_bytes(f"{PREFIX}/image-000", data, metadata={})
    assert read_uri_bytes(stored.uri, aws_conn_id="aws_default") == (data, "image/webp")
    with store.open_read(stored.uri) as stream:
        assert stream.read() == data
    with pytest.raises(ImageTooLargeError):
        read_uri_bytes(stored.uri, aws_conn_id="aws_default", max_bytes=len(data) - 1)
    s3_bucket.client.put_object(Bucket=s3_bucket.name, Key="notes.txt", Body=b"plain text")
    with pytest.raises(NotAnImageError):
        read_uri_bytes(f"s3://{s3_bucket.name}/notes.txt", aws_conn_id="aws_default")


def test_links_and_keys(s3_bucket: S3Bucket) -> None:
    store = s3_store(s3_bucket)
    stored = store.put_image_bytes(f"{PREFIX}/image-000", make_image(), metadata={})
    assert store.key_for(stored.uri) == stored.key
    link = store.link_for(stored.uri)
    assert link.startswith(f"https://s3.console.aws.amazon.com/s3/object/{s3_bucket.name}?prefix=images%2F")
    assert "%3A" in link and ":" not in link.split("?", 1)[1]
    presigning = s3_store(s3_bucket, presigned_link_expires=300)
    with urllib.request.urlopen(presigning.link_for(stored.uri), timeout=10) as response:
        assert hashlib.sha256(response.read()).hexdigest() == stored.sha256


def test_lineage_records_the_s3_object(s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.compat import install_hook_lineage_collector

    collector = install_hook_lineage_collector(monkeypatch)
    store = s3_store(s3_bucket)
    stored = store.put_image_bytes(f"{PREFIX}/image-000", make_image(), metadata={})
    read_uri_bytes(stored.uri, aws_conn_id="aws_default")
    assert [i.asset.uri for i in collector.collected_assets.outputs] == [stored.uri]
    assert collector.collected_assets.outputs[0].context is store
    assert [i.asset.uri for i in collector.collected_assets.inputs] == [stored.uri]


# -- outages --------------------------------------------------------------------------------------


@pytest.fixture
def via_proxy(s3_bucket: S3Bucket, outage_proxy: OutageProxy, monkeypatch: pytest.MonkeyPatch) -> OutageProxy:
    # One botocore attempt per call, so each of the store's attempts is exactly one connection.
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT",
        aws_connection_json(outage_proxy.endpoint_url, config_kwargs={"retries": {"total_max_attempts": 1}}),
    )
    return outage_proxy


def test_upload_survives_a_short_outage(s3_bucket: S3Bucket, via_proxy: OutageProxy) -> None:
    sleeps: list[float] = []
    store = s3_store(s3_bucket, max_attempts=4, retry_base_delay=0.01, sleep=sleeps.append)
    data = make_image()
    via_proxy.drop_next(2)
    stored = store.put_image(f"{PREFIX}/image-000", chunked(data), metadata={"model": "m"})
    assert via_proxy.dropped == 2
    assert sleeps == [0.01, 0.02]  # two retries with doubling backoff
    body = s3_bucket.client.get_object(Bucket=s3_bucket.name, Key=f"images/{stored.key}")["Body"].read()
    assert body == data


def test_outage_past_the_budget_fails_clearly_and_leaves_no_object(
    s3_bucket: S3Bucket, via_proxy: OutageProxy
) -> None:
    sleeps: list[float] = []
    store = s3_store(s3_bucket, max_attempts=3, retry_base_delay=0.01, sleep=sleeps.append)
    via_proxy.down = True
    with pytest.raises(
        AIHubMixStorageError, match=r"S3 upload of s3://.*image-000\.png failed after 3 attempts"
    ):
        store.put_image(f"{PREFIX}/image-000", chunked(make_image()), metadata={})
    assert len(sleeps) == 2
    assert via_proxy.dropped >= 3
    assert s3_bucket.list_keys() == []  # checked directly, not through the proxy


def test_manifest_write_is_retried_too(s3_bucket: S3Bucket, via_proxy: OutageProxy) -> None:
    store = s3_store(s3_bucket, max_attempts=3, retry_base_delay=0.0)
    via_proxy.drop_next(1)
    store.write_json(f"{PREFIX}/manifest.json", {"ok": True})
    assert via_proxy.dropped == 1
    assert store.read_json(f"{PREFIX}/manifest.json") == {"ok": True}


def test_permanent_errors_are_not_retried(moto_server: Any, s3_bucket: S3Bucket) -> None:
    sleeps: list[float] = []
    store = open_store("s3://bucket-that-does-not-exist/x", aws_conn_id="aws_default", sleep=sleeps.append)
    with pytest.raises(AIHubMixStorageError, match=r"failed after 1 attempt \(not retried\): NoSuchBucket"):
        store.put_image_bytes("image-000", make_image(), metadata={})
    assert sleeps == []


class _CountingClient:
    """A real client that counts its calls by operation, and can alter the checksum S3 echoes."""

    def __init__(self, client: Any, *, false_echoes: int = 0) -> None:
        self._client = client
        self.calls: dict[str, int] = {}
        self.false_echoes = false_echoes

    def put_object(self, **kwargs: Any) -> dict[str, Any]:
        self.calls["put_object"] = self.calls.get("put_object", 0) + 1
        response = dict(self._client.put_object(**kwargs))
        if self.false_echoes > 0 and "ChecksumSHA256" in response:
            self.false_echoes -= 1
            response["ChecksumSHA256"] = "A" * 43 + "="
        return response

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return attribute(*args, **kwargs)

        return counted


def test_a_write_s3_confirmed_needs_no_head(s3_bucket: S3Bucket, s3_integrity: S3Integrity) -> None:
    client = _CountingClient(s3_bucket.client)
    store = S3ObjectStore(s3_bucket.uri, client=client)
    data = make_image()
    stored = store.put_image(f"{PREFIX}/image-000", chunked(data), metadata={})
    assert client.calls == {"put_object": 1}  # S3 checked the SHA-256 sent and echoed it: no HEAD
    assert store.read_bytes(stored.key) == data


def test_a_corrupted_upload_is_refused_by_s3_retried_and_never_left(
    s3_bucket: S3Bucket, s3_integrity: S3Integrity
) -> None:
    """The server receives other bytes than were sent (same size): S3 refuses them (BadDigest)
    against the SHA-256 sent with them; the store sends again, and gives up leaving nothing."""
    store = S3ObjectStore(s3_bucket.uri, client=s3_bucket.client, max_attempts=3, retry_base_delay=0.0)
    data = make_image()
    s3_integrity.corrupt_next(1)
    stored = store.put_image_bytes(f"{PREFIX}/image-000", data, metadata={})
    assert s3_integrity.corrupted == 1
    assert store.read_bytes(stored.key) == data

    s3_integrity.corrupt_next(EVERY_BODY)
    with pytest.raises(AIHubMixStorageError, match=r"after 3 attempts: BadDigest"):
        store.put_image_bytes(f"{PREFIX}/image-001", data, metadata={})
    assert s3_bucket.list_keys() == [f"images/{stored.key}"]


def test_a_corrupted_part_of_a_multipart_upload_is_refused_too(
    s3_bucket: S3Bucket, s3_integrity: S3Integrity
) -> None:
    store = S3ObjectStore(
        s3_bucket.uri,
        client=s3_bucket.client,
        max_attempts=2,
        retry_base_delay=0.0,
        spool_memory_bytes=1 << 20,
    )
    data = make_image("PNG", (32, 32)) + bytes(range(256)) * (9 * 4096)  # 2 parts
    s3_integrity.corrupt_next(1)
    stored = store.put_image(f"{PREFIX}/image-000", chunked(data, 1 << 20), metadata={})
    assert s3_integrity.corrupted == 1
    assert hashlib.sha256(store.read_bytes(stored.key)).hexdigest() == hashlib.sha256(data).hexdigest()
    s3_integrity.corrupt_next(EVERY_BODY)
    with pytest.raises(AIHubMixStorageError, match=r"after 2 attempts: BadDigest"):
        store.put_image_bytes(f"{PREFIX}/image-001", data, metadata={})
    assert s3_bucket.list_keys() == [f"images/{stored.key}"]
    assert s3_bucket.client.list_multipart_uploads(Bucket=s3_bucket.name).get("Uploads", []) == []


def test_a_store_that_does_not_confirm_gets_a_head(s3_bucket: S3Bucket, s3_integrity: S3Integrity) -> None:
    """An S3-compatible store that neither checks nor echoes checksums: the store reads the size
    back (HEAD) and refuses a write whose stored bytes fall short, then cleans up."""
    s3_integrity.verify = s3_integrity.echo = False
    client = _CountingClient(s3_bucket.client)
    store = S3ObjectStore(s3_bucket.uri, client=client, max_attempts=3, retry_base_delay=0.0)
    data = make_image()
    s3_integrity.corrupt_next(1, "truncate")
    stored = store.put_image_bytes(f"{PREFIX}/image-000", data, metadata={})
    assert client.calls["put_object"] == client.calls["head_object"] == 2  # caught once, then stored
    assert store.read_bytes(stored.key) == data

    s3_integrity.corrupt_next(EVERY_BODY, "truncate")
    with pytest.raises(AIHubMixStorageError, match="bytes after upload, expected"):
        store.put_image_bytes(f"{PREFIX}/image-001", data, metadata={})
    assert s3_bucket.list_keys() == [f"images/{stored.key}"]


def test_a_checksum_echoed_wrong_fails_the_write(s3_bucket: S3Bucket, s3_integrity: S3Integrity) -> None:
    client = _CountingClient(s3_bucket.client, false_echoes=1)
    store = S3ObjectStore(s3_bucket.uri, client=client, max_attempts=3, retry_base_delay=0.0)
    data = make_image()
    stored = store.put_image_bytes(f"{PREFIX}/image-000", data, metadata={})
    assert client.calls["put_object"] == 2 and "head_object" not in client.calls
    client.false_echoes = 10
    with pytest.raises(AIHubMixStorageError, match=r"reports SHA-256 A+= after upload"):
        store.put_image_bytes(f"{PREFIX}/image-001", data, metadata={})
    assert s3_bucket.list_keys() == [f"images/{stored.key}"]


def test_a_store_that_refuses_checksum_headers_gets_content_md5_and_a_head(
    s3_bucket: S3Bucket, s3_integrity: S3Integrity, moto_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Some S3-compatible stores refuse x-amz-checksum-* headers (400 InvalidArgument); their users
    run boto3 with request_checksum_calculation=when_required. The store finds that out on the first
    write, sends it again with Content-MD5 (which such a store still checks), reads it back (HEAD),
    and sends no checksum headers again; corruption is still refused, single PUT and multipart."""
    s3_integrity.refuse, s3_integrity.echo = True, False
    client = _CountingClient(
        make_s3_client(moto_server.endpoint_url, request_checksum_calculation="when_required")
    )
    store = S3ObjectStore(
        s3_bucket.uri, client=client, max_attempts=3, retry_base_delay=0.0, spool_memory_bytes=1 << 20
    )
    data = make_image()
    with caplog.at_level(logging.WARNING):
        first = store.put_image_bytes(f"{PREFIX}/image-000", data, metadata={})
    assert s3_integrity.refused == 1 and not store.sends_checksums
    assert "refused the checksum headers" in caplog.text
    assert client.calls == {"put_object": 2, "head_object": 1}
    second = store.put_image(f"{PREFIX}/image-001", chunked(data), metadata={})
    assert s3_integrity.refused == 1 and client.calls == {"put_object": 3, "head_object": 2}
    for stored in (first, second):
        assert store.read_bytes(stored.key) == data

    # Content-MD5 still makes the store refuse a corrupted body (BadDigest), retried as a whole.
    s3_integrity.corrupt_next(1)
    third = store.put_image_bytes(f"{PREFIX}/image-002", data, metadata={})
    assert s3_integrity.corrupted == 1 and store.read_bytes(third.key) == data
    big = make_image("PNG", (32, 32)) + bytes(range(256)) * (9 * 4096)  # 2 parts, each with its MD5
    s3_integrity.corrupt_next(1)
    multipart = store.put_image(f"{PREFIX}/image-003", chunked(big, 1 << 20), metadata={})
    assert s3_integrity.corrupted == 2 and s3_integrity.refused == 1
    assert hashlib.sha256(store.read_bytes(multipart.key)).hexdigest() == hashlib.sha256(big).hexdigest()


def test_a_refusal_that_is_not_about_checksums_is_raised_and_keeps_them(s3_bucket: S3Bucket) -> None:
    """An InvalidArgument the same write without checksum headers gets too is the write's own error."""
    from botocore.exceptions import ClientError

    class Refusing(_CountingClient):
        def put_object(self, **kwargs: Any) -> dict[str, Any]:
            self.calls["put_object"] = self.calls.get("put_object", 0) + 1
            error = {"Code": "InvalidArgument", "Message": "Invalid argument."}
            raise ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}, "PutObject")

    client = Refusing(s3_bucket.client)
    store = S3ObjectStore(s3_bucket.uri, client=client, max_attempts=2, retry_base_delay=0.0)
    with pytest.raises(AIHubMixStorageError, match="InvalidArgument"):
        store.put_image_bytes(f"{PREFIX}/image-000", make_image(), metadata={})
    assert client.calls == {"put_object": 2, "delete_object": 1}  # with, then without; not retried
    assert store.sends_checksums
