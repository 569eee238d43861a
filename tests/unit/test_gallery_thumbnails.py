"""Thumbnails (issue 25): made when an image is stored, recorded in the manifest, never fatal."""

from __future__ import annotations

import hashlib
import io
import logging
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from airflow_provider_aihubmix.engine.run import GenerationRun, TaskIdentity
from airflow_provider_aihubmix.operators.images import AIHubMixImagenOperator
from airflow_provider_aihubmix.responses.shapes import GeneratedImage, PredictionResult
from airflow_provider_aihubmix.storage import LocalObjectStore
from airflow_provider_aihubmix.storage import thumbnails as thumbs
from airflow_provider_aihubmix.storage.thumbnails import (
    THUMBNAIL_SIDE,
    make_thumbnail,
    thumbnail_key,
    thumbnail_name,
)


def png(width: int, height: int, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), (255, 0, 0, 100) if mode == "RGBA" else "red").save(out, "PNG")
    return out.getvalue()


def test_a_thumbnail_sits_beside_its_image_as_webp() -> None:
    assert thumbnail_key("p/q/image-003.png") == "p/q/image-003.thumb.webp"
    assert thumbnail_name("image-0042.jpeg") == "image-0042.thumb.webp"
    with pytest.raises(ValueError):
        thumbnail_key("p/manifest.json")


@pytest.mark.parametrize(("size", "expected"), [((2048, 1024), (320, 160)), ((100, 60), (100, 60))])
def test_the_longest_side_is_at_most_320_px(size: tuple[int, int], expected: tuple[int, int]) -> None:
    with Image.open(io.BytesIO(make_thumbnail(png(*size)))) as image:
        assert image.format == "WEBP" and image.size == expected
    assert THUMBNAIL_SIDE == 320


def test_a_transparent_or_palette_image_keeps_its_alpha() -> None:
    with Image.open(io.BytesIO(make_thumbnail(png(400, 400, "RGBA")))) as image:
        assert image.mode == "RGBA"
    with Image.open(io.BytesIO(make_thumbnail(png(400, 400, "P")))) as image:
        assert image.size == (320, 320)


def run_for(tmp_path: Path) -> GenerationRun:
    operator = AIHubMixImagenOperator(task_id="gen", prompt="a fox", model="imagen-4.0-generate-001", n=2)
    return GenerationRun(
        hook=None,  # type: ignore[arg-type] # storing inline images never calls the API
        store=LocalObjectStore((tmp_path / "out").as_uri()),
        spec=operator.resolve_spec(),
        params=operator.request_params(),
        extra_input=operator.extra_input,
        identity=TaskIdentity("dag", "manual__1", "gen", -1, 1),
        aws_conn_id=None,
    )


def test_storing_an_image_stores_its_thumbnail_and_the_manifest_records_its_sha256(tmp_path: Path) -> None:
    run = run_for(tmp_path)
    images = [GeneratedImage(data=png(1024, 768)) for _ in range(2)]
    records = run.store_result(run.new_manifest(), PredictionResult(images=images))
    manifest = run.load_manifest()
    assert manifest is not None and set(manifest.thumbnails) == {"0", "1"}
    for record in records:
        assert "thumbnail" not in record  # the XCom contract is unchanged
        entry: dict[str, Any] = manifest.thumbnails[str(record["index"])]
        data = run.store.read_bytes(entry["uri"])
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["bytes"]
        assert (entry["width"], entry["height"]) == (320, 240)
        assert run.store.key_for(entry["uri"]) == thumbnail_key(run.store.key_for(record["uri"]))


def test_a_thumbnail_that_cannot_be_made_is_logged_and_the_images_still_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(data: bytes, side: int = 320) -> bytes:
        raise OSError("decoder exploded")

    monkeypatch.setattr(thumbs, "make_thumbnail", broken)
    run = run_for(tmp_path)
    with caplog.at_level(logging.WARNING):
        records = run.store_result(
            run.new_manifest(), PredictionResult(images=[GeneratedImage(data=png(64, 64))])
        )
    manifest = run.load_manifest()
    assert manifest is not None and manifest.status.value == "complete" and len(records) == 1
    assert manifest.thumbnails == {} and manifest.actual_cost_usd is not None
    assert "No thumbnail for" in caplog.text and "decoder exploded" in caplog.text


def test_store_thumbnails_off_leaves_them_to_the_gallery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__AIHUBMIX__STORE_THUMBNAILS", "False")
    run = run_for(tmp_path)
    records = run.store_result(
        run.new_manifest(), PredictionResult(images=[GeneratedImage(data=png(64, 64))])
    )
    manifest = run.load_manifest()
    assert manifest is not None and manifest.thumbnails == {} and len(records) == 1
    assert not run.store.exists(thumbnail_key(run.store.key_for(records[0]["uri"])))


def test_a_stored_image_is_thumbnailed_from_its_file_not_read_back_whole(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path.as_uri())
    stored = store.put_image_bytes("p/image-000", png(640, 480), metadata={})

    def no_whole_reads(*args: Any, **kwargs: Any) -> bytes:
        raise AssertionError("read_bytes: the image was read back whole")

    store.read_bytes = no_whole_reads  # type: ignore[method-assign]
    record = thumbs.try_thumbnail(store, stored, None)
    assert record is not None and (record["width"], record["height"]) == (320, 240)
    with Image.open(io.BytesIO((tmp_path / thumbnail_key(stored.key)).read_bytes())) as thumb:
        assert thumb.format == "WEBP" and thumb.size == (320, 240)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_the_exif_orientation_is_applied_to_the_scaled_thumbnail(fmt: str) -> None:
    image = Image.new("RGB", (800, 400), "red")
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display": a phone photo held upright
    out = io.BytesIO()
    image.save(out, fmt, exif=exif.tobytes())
    with Image.open(io.BytesIO(make_thumbnail(out.getvalue()))) as thumb:
        assert thumb.size == (160, 320)


class _Download:
    def __init__(self, data: bytes) -> None:
        self.data, self.content_length = data, len(data)

    def iter_bytes(self) -> Any:
        yield from (self.data[i : i + 4096] for i in range(0, len(self.data), 4096))


class _DownloadingHook:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream_download(self, url: str, *, max_bytes: int | None = None) -> Any:
        import contextlib

        return contextlib.nullcontext(_Download(self.data))


def test_a_downloaded_image_is_thumbnailed_from_what_the_store_just_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A URL image streams into the store; its thumbnail is made from the bytes the store still
    holds (put_image's on_stored), never by reading the object back (a GET on a cloud store)."""
    run = run_for(tmp_path)
    run.hook = _DownloadingHook(png(800, 600))  # type: ignore[assignment]

    def no_read_back(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the stored image was read back for its thumbnail")

    monkeypatch.setattr(run.store, "open_read", no_read_back)
    monkeypatch.setattr(run.store, "read_bytes", no_read_back)
    records = run.store_result(
        run.new_manifest(), PredictionResult(images=[GeneratedImage(url="https://cdn.example/x.png")])
    )
    manifest = run.load_manifest()
    assert manifest is not None and len(records) == 1
    assert (manifest.thumbnails["0"]["width"], manifest.thumbnails["0"]["height"]) == (320, 240)
