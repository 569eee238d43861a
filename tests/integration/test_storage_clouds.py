"""The gs:// and Azure Blob stores against real emulators (fake-gcs-server, Azurite), through the
Google and Azure providers' connections, as production reaches them."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from airflow_provider_aihubmix.storage import (
    AIHubMixStorageError,
    IncompleteImageError,
    open_store,
    read_uri_bytes,
    task_prefix,
)
from airflow_provider_aihubmix.storage.azure import AzureBlobObjectStore
from airflow_provider_aihubmix.storage.cloud import CloudObjectStore
from airflow_provider_aihubmix.storage.gcs import GCSObjectStore
from airflow_provider_aihubmix.storage.spool import ImageSpool
from tests.integration.test_storage_s3 import chunked, make_image

PREFIX = task_prefix("marketing", "scheduled__2024-05-01T00:00:00+00:00", "generate", 0)


@pytest.fixture(params=["gcs", "azure"])
def cloud(request: pytest.FixtureRequest) -> Any:
    """A fresh bucket (GCS) or container (Azure) on its emulator."""
    return request.getfixturevalue("gcs_bucket" if request.param == "gcs" else "azure_container")


def store_of(cloud: Any, **options: Any) -> CloudObjectStore:
    # output_conn_id left at its default (aws_default) means the cloud's own default connection.
    store = open_store(cloud.uri, aws_conn_id="aws_default", sleep=lambda _s: None, **options)
    assert isinstance(store, (GCSObjectStore, AzureBlobObjectStore))
    assert store.conn_id == cloud.conn_id
    return store


def test_image_manifest_and_reference_round_trip(cloud: Any) -> None:
    store = store_of(cloud)
    data = make_image("PNG", (96, 64))
    stored = store.put_image(
        f"{PREFIX}/image-000", chunked(data), metadata={"model": "imagen-4.0"}, expected_size=len(data)
    )
    scheme = cloud.uri.split("://", 1)[0]
    assert stored.uri == f"{scheme}://{cloud.name}/images/{PREFIX}/image-000.png"
    assert (stored.content_type, stored.width, stored.height, stored.bytes) == (
        "image/png",
        96,
        64,
        len(data),
    )
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert store.key_for(stored.uri) == stored.key
    assert store.read_bytes(stored.uri) == data
    with store.open_read(stored.key) as stream:
        assert stream.read() == data
    # A reference image (an upstream record as an edit input) read from the same URI.
    assert read_uri_bytes(stored.uri, aws_conn_id="aws_default") == (data, "image/png")

    assert store.read_json(f"{PREFIX}/manifest.json") is None
    uri = store.write_json(f"{PREFIX}/manifest.json", {"status": "paid", "n": 1})
    store.write_json(f"{PREFIX}/manifest.json", {"status": "stored", "n": 1})
    assert uri == f"{scheme}://{cloud.name}/images/{PREFIX}/manifest.json"
    assert store.read_json(f"{PREFIX}/manifest.json") == {"status": "stored", "n": 1}
    assert store.exists(stored.key) and not store.exists(f"{PREFIX}/image-001.png")
    assert store.list_keys(PREFIX.split("/")[0]) == [stored.key, f"{PREFIX}/manifest.json"]
    store.delete(stored.key)
    store.delete(stored.key)  # missing is not an error
    assert cloud.list_keys() == [f"images/{PREFIX}/manifest.json"]


def test_create_json_is_conditional(cloud: Any) -> None:
    store = store_of(cloud)
    assert store.create_json("ledger/000001.json", {"by": "a"}) is True
    assert store.create_json("ledger/000001.json", {"by": "b"}) is False
    # A retry of one's own create whose answer was lost: the document there is ours.
    assert store.create_json("ledger/000001.json", {"by": "a"}) is True
    assert store.read_json("ledger/000001.json") == {"by": "a"}


def test_corrupted_write_is_caught_not_recorded(cloud: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bytes that differ in store (same size, one byte flipped) fail the write loudly, after the
    retry budget, and leave nothing under the key."""
    store = store_of(cloud, max_attempts=3)
    data = make_image("PNG", (64, 64))
    upload = type(store)._upload
    calls = []

    def corrupting_upload(self: CloudObjectStore, name: str, source: ImageSpool, **kwargs: Any) -> None:
        calls.append(name)
        body = bytearray(source.reader().read())
        body[-100] ^= 0xFF
        upload(self, name, ImageSpool.of_bytes(bytes(body)), **kwargs)

    monkeypatch.setattr(type(store), "_upload", corrupting_upload)
    with pytest.raises(AIHubMixStorageError, match=r"after 3 attempts.*the stored bytes differ"):
        store.put_image_bytes(f"{PREFIX}/image-000", data, metadata={})
    assert len(calls) == 3
    assert cloud.list_keys() == []


def test_short_stream_stores_nothing(cloud: Any) -> None:
    store = store_of(cloud)
    data = make_image("PNG")
    with pytest.raises(IncompleteImageError):
        store.put_image(f"{PREFIX}/image-000", chunked(data[:-10]), metadata={}, expected_size=len(data))
    assert cloud.list_keys() == []


def test_unreachable_store_is_retried_then_fails(cloud: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection refused is transient: the whole budget is spent (no sleeping here), then one
    error naming the service; a 4xx (no such bucket) is not retried."""
    slept: list[float] = []
    store = open_store(cloud.uri, aws_conn_id="aws_default", sleep=slept.append)
    real_facts = type(store)._facts

    def refused(self: CloudObjectStore, name: str) -> Any:
        raise ConnectionRefusedError("connection refused")

    monkeypatch.setattr(type(store), "_facts", refused)
    with pytest.raises(AIHubMixStorageError, match="after 9 attempts"):
        store.exists("x.json")
    assert slept == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0, 8.0]  # the S3 store's budget
    monkeypatch.setattr(type(store), "_facts", real_facts)
    scheme = cloud.uri.split("://", 1)[0]
    missing = open_store(f"{scheme}://no-such-bucket-{cloud.name[-8:]}/x", aws_conn_id="aws_default")
    with pytest.raises(AIHubMixStorageError, match=r"\(not retried\)"):
        missing.write_json("a.json", {})


def test_an_image_spooled_to_disk_is_stored_whole(cloud: Any) -> None:
    """An image larger than the spool's memory goes to a temporary file before its upload: the
    upload, the MD5 it is verified with and the caller's reader all read it from there."""
    store = store_of(cloud, spool_memory_bytes=1 << 20)
    data = make_image("PNG", (32, 32)) + bytes(range(256)) * (12 * 1024)  # 3 MiB
    seen: list[bytes] = []
    stored = store.put_image(
        f"{PREFIX}/image-000",
        chunked(data),
        metadata={},
        expected_size=len(data),
        on_stored=lambda _stored, reader: seen.append(reader.read()),
    )
    assert stored.bytes == len(data) and stored.sha256 == hashlib.sha256(data).hexdigest()
    assert store.read_bytes(stored.key) == data
    assert seen == [data]
