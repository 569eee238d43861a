"""The S3 store's building blocks that need no server: spool, reader, error classes, checksums."""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError
from PIL import Image

from airflow_provider_aihubmix.storage import IncompleteImageError, NotAnImageError
from airflow_provider_aihubmix.storage.s3 import ImageSpool, S3ObjectStore, is_transient
from airflow_provider_aihubmix.storage.s3_upload import UploadResult, head_confirms


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject"
    )


class Wrapped(Exception):
    pass


def _raise_wrapped(inner: BaseException) -> Wrapped:
    try:
        raise Wrapped("upload failed") from inner
    except Wrapped as err:
        return err


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), True),
        (ConnectionClosedError(endpoint_url="http://127.0.0.1:1"), True),
        (client_error("SlowDown", 503), True),
        (client_error("InternalError", 500), True),
        (client_error("Whatever", 502), True),
        (client_error("TooManyRequests", 429), True),
        (client_error("BadDigest", 400), True),  # the body was corrupted on the way: send it again
        (client_error("AccessDenied", 403), False),
        (client_error("NoSuchBucket", 404), False),
        (ValueError("bad"), False),
        (_raise_wrapped(client_error("ServiceUnavailable", 503)), True),
        (_raise_wrapped(client_error("AccessDenied", 403)), False),
    ],
)
def test_transient_errors_are_told_apart(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient


def test_a_write_is_confirmed_only_by_the_checksum_sent() -> None:
    single = UploadResult(sent="abc=", echoed="abc=", full_sha256="abc=")
    assert single.confirmed
    assert not UploadResult(sent="abc=", echoed=None, full_sha256="abc=").confirmed
    assert not UploadResult(sent="abc=", echoed="xyz=", full_sha256="abc=").confirmed
    multipart = UploadResult(sent="cmp=-3", echoed=None, full_sha256="full=")
    # A HEAD may report the composite, the composite without its "-<parts>", or the full SHA-256.
    for reported in ("cmp=-3", "cmp=", "full="):
        assert head_confirms({"ContentLength": 10, "ChecksumSHA256": reported}, multipart, 10) is None
    assert head_confirms({"ContentLength": 10}, multipart, 10) is None  # a store without checksums
    assert "expected 10" in str(head_confirms({"ContentLength": 9}, multipart, 10))
    assert "reports SHA-256 other=" in str(
        head_confirms({"ContentLength": 10, "ChecksumSHA256": "other="}, multipart, 10)
    )


def test_spool_stays_in_memory_below_the_limit() -> None:
    with ImageSpool(max_memory=100) as spool:
        spool.write(b"a" * 60)
        spool.write(b"b" * 40)
        spool.finish()
        assert spool.path is None
        assert spool.reader().read() == b"a" * 60 + b"b" * 40


def test_spool_rolls_over_to_a_named_file_and_removes_it() -> None:
    with ImageSpool(max_memory=100) as spool:
        spool.write(b"a" * 60)
        spool.write(b"b" * 60)
        spool.write(memoryview(b"c" * 10))
        spool.finish()
        assert spool.path is not None
        path = spool.path
        assert Path(path).read_bytes() == b"a" * 60 + b"b" * 60 + b"c" * 10
    assert not os.path.exists(path)


def test_memory_reader_behaves_like_a_file() -> None:
    data = bytes(range(256)) * 4
    reader = ImageSpool.of_bytes(data).reader()
    assert reader.read(10) == data[:10]
    assert reader.tell() == 10
    reader.seek(0, io.SEEK_END)
    assert reader.tell() == len(data)
    assert reader.read() == b""
    reader.seek(-6, io.SEEK_END)
    assert reader.read(100) == data[-6:]
    reader.seek(3)
    buffer = bytearray(5)
    assert reader.readinto(buffer) == 5
    assert bytes(buffer) == data[3:8]
    assert reader.seekable() and reader.readable()


def png() -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise((64, 64), 50).convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


class _NoClient:
    """Fails the test if the store gets as far as talking to S3."""

    def __getattr__(self, name: str) -> None:
        raise AssertionError(f"S3 must not be called ({name})")


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_failed_or_truncated_streams_never_reach_s3_and_leave_no_spool(private_tmp: Path) -> None:
    store = S3ObjectStore("s3://bucket/prefix", client=_NoClient(), spool_memory_bytes=1024)
    data = png()

    def broken() -> Iterator[bytes]:
        yield data[:4096]
        raise ConnectionResetError("gone")

    with pytest.raises(ConnectionResetError):
        store.put_image("k/image-000", broken(), metadata={})
    with pytest.raises(IncompleteImageError):
        store.put_image("k/image-000", [data[:-1]], metadata={}, expected_size=len(data))
    with pytest.raises(NotAnImageError):
        store.put_image("k/image-000", [b"<html>" * 1000], metadata={})
    assert list(private_tmp.iterdir()) == []


def test_uris_keys_and_console_links() -> None:
    store = S3ObjectStore("s3://bucket/out/", client=_NoClient())
    assert store.base_uri == "s3://bucket/out"
    assert store.uri_for("a/b.png") == "s3://bucket/out/a/b.png"
    assert store.key_for("s3://bucket/out/a/b.png") == "a/b.png"
    assert store.link_for("s3://bucket/out/run_id=x:y+z/b.png") == (
        "https://s3.console.aws.amazon.com/s3/object/bucket?prefix=out%2Frun_id%3Dx%3Ay%2Bz%2Fb.png"
    )
    for elsewhere in ("s3://other/out/a.png", "s3://bucket/outside.png", "s3://bucket/out/"):
        with pytest.raises(ValueError, match="not under"):
            store.key_for(elsewhere)
    root = S3ObjectStore("s3://bucket", client=_NoClient())
    assert root.uri_for("a.png") == "s3://bucket/a.png"
    assert root.key_for("s3://bucket/a.png") == "a.png"
