"""Size parsing, rendering and the huge-PNG padding, without HTTP."""

from __future__ import annotations

import asyncio
import io

import pytest

from airflow_provider_aihubmix.sandbox.images import (
    ImageCache,
    SizeError,
    huge_png_length,
    huge_png_stream,
    render,
    resolve_size,
)


@pytest.mark.parametrize(
    ("size", "aspect", "max_side", "expected"),
    [
        (None, None, 1024, (1024, 1024)),
        ("auto", None, 1024, (1024, 1024)),
        ("1K", None, 0, (1024, 1024)),
        ("2k", None, 0, (2048, 2048)),
        ("4K", None, 0, (4096, 4096)),
        ("4K", None, 1024, (1024, 1024)),
        ("1024x1024", None, 1024, (1024, 1024)),
        ("1024*576", None, 1024, (1024, 576)),
        ("768 x 512", None, 1024, (768, 512)),
        (None, "16:9", 1024, (1024, 576)),
        ("2K", "16:9", 0, (2048, 1152)),
        (None, "2x1", 1024, (1024, 512)),
        (None, "2:3", 1024, (683, 1024)),
        ("1536x1024", "1:1", 512, (512, 341)),  # an explicit size wins over the ratio
    ],
)
def test_resolve_size(size: str | None, aspect: str | None, max_side: int, expected: tuple[int, int]) -> None:
    assert resolve_size(size, aspect, max_side=max_side) == expected


@pytest.mark.parametrize(
    ("size", "aspect"), [("big", None), ("8x8", None), (None, "wide"), (None, "0:1"), (5, None)]
)
def test_resolve_size_rejects(size: object, aspect: str | None) -> None:
    with pytest.raises(SizeError):
        resolve_size(size, aspect)


@pytest.mark.parametrize(("fmt", "pil"), [("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WEBP")])
def test_render_format_size_and_determinism(fmt: str, pil: str) -> None:
    from PIL import Image

    data = render(40, 24, fmt, 123, 0)
    image = Image.open(io.BytesIO(data))
    assert (image.format, image.size) == (pil, (40, 24))
    assert render(40, 24, fmt, 123, 0) == data
    assert render(40, 24, fmt, 123, 1) != data


def test_cache_is_bounded_in_bytes() -> None:
    cache = ImageCache(max_bytes=10)
    cache.put((1, 1, "png", 1, 0), b"12345")
    cache.put((1, 1, "png", 2, 0), b"12345")
    cache.get((1, 1, "png", 1, 0))  # most recently used survives
    cache.put((1, 1, "png", 3, 0), b"123")
    assert cache.get((1, 1, "png", 2, 0)) is None
    assert cache.get((1, 1, "png", 1, 0)) == b"12345"
    assert len(cache) == 2


@pytest.mark.parametrize(
    "extra",
    [0, 5, 11, 12, 13, 1024 * 1024 + 12, 1024 * 1024 + 12 + 7, 2 * (1024 * 1024 + 12), 3 * 1024 * 1024 + 99],
)
def test_huge_png_exact_length_and_decodable(extra: int) -> None:
    from PIL import Image

    base = render(8, 8, "png", 1, 0)
    total = len(base) + extra

    async def collect() -> bytes:
        return b"".join([chunk async for chunk in huge_png_stream(base, total)])

    data = asyncio.run(collect())
    assert len(data) == huge_png_length(base, total)
    assert len(data) == (total if extra >= 12 else len(base))
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.size == (8, 8)
