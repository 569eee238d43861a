"""The file:// store: atomic, verified writes that leave nothing behind on failure."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from airflow_provider_aihubmix.storage import (
    SNIFF_HEAD_BYTES,
    ImageTooLargeError,
    IncompleteImageError,
    InvalidOutputURIError,
    LocalObjectStore,
    NotAnImageError,
    open_store,
    read_uri_bytes,
    task_prefix,
)
from airflow_provider_aihubmix.storage.uris import path_to_file_uri

PREFIX = task_prefix("dag", "manual__2024-01-01T00:00:00+00:00", "generate", -1)


def make_image(fmt: str = "PNG", size: tuple[int, int] = (64, 48), noise: bool = False) -> bytes:
    image = Image.effect_noise(size, 80).convert("RGB") if noise else Image.new("RGB", size, (10, 200, 30))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def chunked(data: bytes, size: int = 1000) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def all_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    result = open_store(path_to_file_uri(str(tmp_path / "out")))
    assert isinstance(result, LocalObjectStore)
    return result


def test_put_image_streams_and_describes_the_image(store: LocalObjectStore, tmp_path: Path) -> None:
    data = make_image("PNG", (64, 48), noise=True)
    stored = store.put_image(f"{PREFIX}/image-000", chunked(data), metadata={"model": "m"})
    path = tmp_path / "out" / Path(*PREFIX.split("/")) / "image-000.png"
    assert path.read_bytes() == data
    assert stored.key == f"{PREFIX}/image-000.png"
    assert stored.uri == path_to_file_uri(str(path))
    assert stored.content_type == "image/png"
    assert (stored.bytes, stored.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert (stored.width, stored.height) == (64, 48)
    assert stored.metadata == {"model": "m", "sha256": stored.sha256}
    assert all_files(tmp_path / "out") == [f"{os.path.join(*PREFIX.split('/'))}/image-000.png"]


def test_extension_follows_the_bytes_not_the_caller(store: LocalObjectStore) -> None:
    data = make_image("WEBP")
    stored = store.put_image_bytes(f"{PREFIX}/image-001", data, metadata={"content-type": "image/png"})
    assert stored.key.endswith("image-001.webp")
    assert stored.content_type == "image/webp"
    assert store.read_bytes(stored.uri) == data


def test_failure_mid_stream_leaves_no_file(store: LocalObjectStore, tmp_path: Path) -> None:
    data = make_image(noise=True)

    def broken() -> Iterator[bytes]:
        yield data[:2000]
        raise ConnectionResetError("peer went away")

    with pytest.raises(ConnectionResetError):
        store.put_image(f"{PREFIX}/image-000", broken(), metadata={})
    assert all_files(tmp_path / "out") == []


def test_truncated_stream_is_refused_and_nothing_stored(store: LocalObjectStore, tmp_path: Path) -> None:
    data = make_image(noise=True)
    with pytest.raises(IncompleteImageError, match=f"received {len(data) - 10} of {len(data)}"):
        store.put_image(f"{PREFIX}/image-000", chunked(data[:-10]), metadata={}, expected_size=len(data))
    with pytest.raises(IncompleteImageError, match="announced"):
        store.put_image(f"{PREFIX}/image-000", chunked(data), metadata={}, expected_size=len(data) - 1)
    assert all_files(tmp_path / "out") == []


def test_a_failed_retry_keeps_the_previous_complete_object(store: LocalObjectStore) -> None:
    first = store.put_image_bytes(f"{PREFIX}/image-000", make_image(), metadata={})
    data = make_image(noise=True)
    with pytest.raises(IncompleteImageError):
        store.put_image(f"{PREFIX}/image-000", chunked(data[:-1]), metadata={}, expected_size=len(data))
    assert hashlib.sha256(store.read_bytes(first.key)).hexdigest() == first.sha256
    second = store.put_image(f"{PREFIX}/image-000", chunked(data), metadata={}, expected_size=len(data))
    assert second.key == first.key
    assert store.read_bytes(second.key) == data


def test_non_image_is_refused_after_the_head_without_reading_the_rest(
    store: LocalObjectStore, tmp_path: Path
) -> None:
    consumed = 0

    def html_page() -> Iterator[bytes]:
        nonlocal consumed
        for _ in range(1000):  # 64 MB if read to the end
            consumed += 65536
            yield b"<html>" + b"x" * 65530

    with pytest.raises(NotAnImageError, match="not an image"):
        store.put_image(f"{PREFIX}/image-000", html_page(), metadata={})
    assert consumed <= SNIFF_HEAD_BYTES + 65536
    assert all_files(tmp_path / "out") == []


def test_max_bytes_stops_the_stream(store: LocalObjectStore, tmp_path: Path) -> None:
    data = make_image(noise=True)
    with pytest.raises(ImageTooLargeError, match="limit"):
        store.put_image(f"{PREFIX}/image-000", chunked(data), metadata={}, max_bytes=len(data) - 1)
    assert all_files(tmp_path / "out") == []


def test_keys_cannot_escape_the_base_directory(store: LocalObjectStore, tmp_path: Path) -> None:
    for bad in ("../escape", "a/../../escape", "/etc/escape"):
        with pytest.raises(InvalidOutputURIError):
            store.put_image_bytes(bad, make_image(), metadata={})
        with pytest.raises(InvalidOutputURIError):
            store.write_json(bad, {})
    assert all_files(tmp_path) == []


def test_manifest_round_trip_and_atomic_replace(
    store: LocalObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = f"{PREFIX}/manifest.json"
    assert store.read_json(key) is None
    assert not store.exists(key)
    document: dict[str, Any] = {
        "status": "complete",
        "records": [{"uri": "s3://b/k.png", "width": 3}],
        "é": 1,
    }
    uri = store.write_json(key, document)
    assert uri == store.uri_for(key)
    assert store.read_json(key) == document
    assert store.exists(key)

    # A failure before the rename keeps the old manifest and leaves no temporary file.
    def failing_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        store.write_json(key, {"status": "new"})
    monkeypatch.undo()
    with pytest.raises(TypeError):
        store.write_json(key, {"not json": object()})
    assert store.read_json(key) == document
    assert all_files(tmp_path / "out") == [os.path.join(*PREFIX.split("/"), "manifest.json")]

    store.delete(key)
    store.delete(key)  # missing is fine
    assert store.read_json(key) is None


def test_open_read_key_for_and_link(store: LocalObjectStore) -> None:
    data = make_image("GIF")
    stored = store.put_image_bytes(f"{PREFIX}/image-000", data, metadata={})
    assert store.key_for(stored.uri) == stored.key
    with store.open_read(stored.uri) as stream:
        assert stream.read() == data
    with store.open_read(stored.key) as stream:
        assert stream.read(6) == data[:6]
    assert store.link_for(stored.uri) == os.path.join(store.base_dir, *stored.key.split("/"))
    with pytest.raises(ImageTooLargeError):
        store.read_bytes(stored.key, max_bytes=len(data) - 1)
    assert store.read_bytes(stored.key, max_bytes=len(data)) == data
    with pytest.raises(InvalidOutputURIError, match="not under"):
        store.key_for("file:///somewhere/else.png")


def test_base_dir_with_spaces_round_trips(tmp_path: Path) -> None:
    store = open_store(path_to_file_uri(str(tmp_path / "my images")))
    stored = store.put_image_bytes("a/image-000", make_image(), metadata={})
    assert "%20" in stored.uri
    assert (tmp_path / "my images" / "a" / "image-000.png").is_file()
    assert store.key_for(stored.uri) == "a/image-000.png"


def test_read_uri_bytes_from_path_and_file_uri(tmp_path: Path) -> None:
    data = make_image("JPEG")
    path = tmp_path / "ref.bin"  # the name says nothing: the bytes decide
    path.write_bytes(data)
    assert read_uri_bytes(str(path), aws_conn_id=None) == (data, "image/jpeg")
    assert read_uri_bytes(path_to_file_uri(str(path)), aws_conn_id=None) == (data, "image/jpeg")
    with pytest.raises(ImageTooLargeError):
        read_uri_bytes(str(path), aws_conn_id=None, max_bytes=100)


def test_read_uri_bytes_never_returns_a_non_image(tmp_path: Path) -> None:
    secret = tmp_path / "config.ini"
    secret.write_text("[core]\npassword = hunter2\n")
    with pytest.raises(NotAnImageError) as err:
        read_uri_bytes(str(secret), aws_conn_id=None)
    assert "hunter2" not in str(err.value)
    with pytest.raises(InvalidOutputURIError, match="only s3://"):
        read_uri_bytes("ftp://host/x.png", aws_conn_id=None)


def test_lineage_records_outputs_and_inputs(store: LocalObjectStore, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.compat import install_hook_lineage_collector

    collector = install_hook_lineage_collector(monkeypatch)
    stored = store.put_image_bytes(f"{PREFIX}/image-000", make_image(), metadata={})
    read_uri_bytes(stored.uri, aws_conn_id=None)
    collected = collector.collected_assets
    assert [info.asset.uri for info in collected.outputs] == [stored.uri]
    assert collected.outputs[0].context is store
    assert collected.outputs[0].asset.extra["sha256"] == stored.sha256
    assert [info.asset.uri for info in collected.inputs] == [stored.uri]


def test_lineage_failure_never_breaks_storage(
    store: LocalObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.compat import install_hook_lineage_collector

    def broken() -> Any:
        raise RuntimeError("collector exploded")

    install_hook_lineage_collector(monkeypatch, factory=broken)
    stored = store.put_image_bytes(f"{PREFIX}/image-000", make_image(), metadata={})
    assert store.exists(stored.key)


def test_importing_storage_loads_neither_boto3_nor_pil() -> None:
    # Airflow's own provider discovery imports each provider's get_provider_info module;
    # what must not load is the S3 code path (the amazon provider's aws package, boto3).
    code = (
        "import sys, airflow_provider_aihubmix.storage as s; "
        "heavy = ('boto3', 'botocore', 'PIL', 'airflow.providers.amazon.aws'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"
