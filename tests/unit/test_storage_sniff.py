"""Image type and size come from the bytes: real files written by Pillow, plus hand-made edge cases."""

from __future__ import annotations

import io
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, features

from airflow_provider_aihubmix.exceptions import AIHubMixDownloadError
from airflow_provider_aihubmix.storage import SNIFF_HEAD_BYTES, NotAnImageError, sniff_image


def encode(fmt: str, size: tuple[int, int], mode: str = "RGB", **save: object) -> bytes:
    image = Image.new(mode, size, color=(200, 30, 90, 128)[: len(mode)] if mode != "P" else 3)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save)
    return buffer.getvalue()


CASES = [
    ("PNG", "RGB", {}, "image/png", "png"),
    ("PNG", "RGBA", {}, "image/png", "png"),
    ("PNG", "P", {}, "image/png", "png"),
    ("JPEG", "RGB", {}, "image/jpeg", "jpg"),
    ("JPEG", "RGB", {"progressive": True}, "image/jpeg", "jpg"),
    ("JPEG", "L", {}, "image/jpeg", "jpg"),
    ("GIF", "P", {}, "image/gif", "gif"),
    ("WEBP", "RGB", {"quality": 80}, "image/webp", "webp"),  # VP8
    ("WEBP", "RGB", {"lossless": True}, "image/webp", "webp"),  # VP8L
    ("WEBP", "RGBA", {"quality": 80}, "image/webp", "webp"),  # VP8X (alpha)
    ("WEBP", "RGB", {"exif": b"Exif\x00\x00" + b"\x00" * 32}, "image/webp", "webp"),  # VP8X (exif)
    ("BMP", "RGB", {}, "image/bmp", "bmp"),
    ("TIFF", "RGB", {}, "image/tiff", "tiff"),
]
if features.check("avif"):
    CASES.append(("AVIF", "RGB", {}, "image/avif", "avif"))


@pytest.mark.parametrize(("fmt", "mode", "save", "content_type", "extension"), CASES)
@pytest.mark.parametrize("size", [(37, 23), (1, 1), (1025, 3), (640, 480)])
def test_sniffs_type_and_size_of_real_images(
    fmt: str, mode: str, save: dict[str, object], content_type: str, extension: str, size: tuple[int, int]
) -> None:
    data = encode(fmt, size, mode, **save)
    info = sniff_image(data)
    assert (info.content_type, info.extension) == (content_type, extension)
    assert (info.width, info.height) == size


def test_webp_chunk_variants_are_all_covered() -> None:
    chunks = {
        encode("WEBP", (9, 9), mode, **save)[12:16] for _, mode, save, ct, _ in CASES if ct == "image/webp"
    }
    assert chunks == {b"VP8 ", b"VP8L", b"VP8X"}


def test_jpeg_size_found_after_large_metadata_segments() -> None:
    # ICC profiles and EXIF blocks of tens of KB precede the frame header in camera files.
    data = encode("JPEG", (300, 200), icc_profile=b"\x00" * 150_000)
    assert data.index(b"\xff\xc0") > 150_000
    info = sniff_image(data[:SNIFF_HEAD_BYTES])
    assert (info.width, info.height) == (300, 200)


def test_jpeg_with_frame_header_beyond_head_has_unknown_size() -> None:
    data = encode("JPEG", (300, 200), icc_profile=b"\x00" * (SNIFF_HEAD_BYTES + 10_000))
    info = sniff_image(data)
    assert info.content_type == "image/jpeg"
    assert (info.width, info.height) == (None, None)


def test_jpeg_fill_bytes_before_a_marker_are_skipped() -> None:
    data = encode("JPEG", (31, 17))
    padded = data[:2] + b"\xff\xff\xff" + data[2:]
    info = sniff_image(padded)
    assert (info.width, info.height) == (31, 17)


def test_big_endian_tiff() -> None:
    # Pillow writes little-endian TIFF; build a minimal big-endian header by hand.
    entries = [(256, 3, 1, 513), (257, 4, 1, 70_000)]
    ifd = struct.pack(">H", len(entries))
    for tag, kind, count, value in entries:
        packed = struct.pack(">H", value) + b"\x00\x00" if kind == 3 else struct.pack(">I", value)
        ifd += struct.pack(">HHI", tag, kind, count) + packed
    data = b"MM\x00*" + struct.pack(">I", 8) + ifd + b"\x00\x00\x00\x00"
    info = sniff_image(data)
    assert (info.content_type, info.width, info.height) == ("image/tiff", 513, 70_000)


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _ispe(width: int, height: int) -> bytes:
    return _box(b"ispe", b"\x00\x00\x00\x00" + struct.pack(">II", width, height))


@pytest.mark.parametrize(
    ("brands", "content_type", "extension"),
    [
        ((b"heic", b"mif1"), "image/heic", "heic"),
        ((b"mif1", b"heic"), "image/heic", "heic"),
        ((b"avif", b"mif1"), "image/avif", "avif"),
        ((b"mif1", b"miaf"), "image/heif", "heif"),
    ],
)
def test_heif_family_from_ftyp_brands(brands: tuple[bytes, ...], content_type: str, extension: str) -> None:
    ftyp = _box(b"ftyp", brands[0] + b"\x00\x00\x00\x00" + b"".join(brands))
    # A thumbnail's ispe first, then the primary image's: the largest one is the image's size.
    meta = _box(b"meta", b"\x00\x00\x00\x00" + _ispe(320, 240) + _ispe(4032, 3024))
    info = sniff_image(ftyp + meta)
    assert (info.content_type, info.extension, info.width, info.height) == (
        content_type,
        extension,
        4032,
        3024,
    )


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"<!DOCTYPE html><html><body>Access denied</body></html>",
        b'{"error": {"message": "expired"}}',
        b"RIFF\x10\x00\x00\x00WAVEfmt ",  # RIFF but audio
        _box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2mp41"),  # an MP4 video
        b"BM" + b"\x00" * 40,  # "BM" without a valid DIB header
        b"\x89PNG",  # a signature cut short is not enough to call it an image
    ],
)
def test_not_an_image(data: bytes) -> None:
    with pytest.raises(NotAnImageError, match="not an image") as err:
        sniff_image(data)
    # Operators treat it like any other bad download.
    assert isinstance(err.value, AIHubMixDownloadError)


def test_header_cut_before_the_size_gives_type_without_size() -> None:
    info = sniff_image(encode("PNG", (10, 10))[:16])
    assert (info.content_type, info.width, info.height) == ("image/png", None, None)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_never_crash_the_sniffer(data: bytes) -> None:
    try:
        info = sniff_image(data)
    except NotAnImageError:
        return
    assert info.width is None or info.width > 0
    assert info.height is None or info.height > 0


@settings(max_examples=150, deadline=None)
@given(
    prefix=st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"RIFF\x00\x00\x00\x00WEBP"]),
    tail=st.binary(max_size=300),
)
def test_corrupt_headers_after_a_valid_signature_never_crash(prefix: bytes, tail: bytes) -> None:
    info = sniff_image(prefix + tail)
    assert info.content_type.startswith("image/")
