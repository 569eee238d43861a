"""
Image type and size from the first bytes of a file, without PIL.

Vendors label images wrongly (``b64_json`` that is really a JPEG, ``.png`` URLs serving WebP), so
the extension and Content-Type of a stored object come from the magic number, never from a label.
Width and height come from the header so the XCom record carries them without decoding pixels.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from airflow_provider_aihubmix.exceptions import NotAnImageError

#: How much of the start of an image is kept for sniffing. JPEG files may put EXIF/ICC segments of
#: tens of KB before the SOF marker that holds the size; 256 KB covers real-world files.
SNIFF_HEAD_BYTES = 256 * 1024


@dataclass(frozen=True)
class ImageInfo:
    """What the header says: MIME type, the extension to store under, and the size if it is in the head."""

    content_type: str
    extension: str
    width: int | None
    height: int | None


def sniff_image(head: bytes | bytearray | memoryview) -> ImageInfo:
    """
    Identify an image from its first bytes (ideally ``SNIFF_HEAD_BYTES`` of them).

    :raises NotAnImageError: when no known image signature matches.
    """
    data = bytes(head[:SNIFF_HEAD_BYTES])
    info = _identify(data)
    if info is None:
        raise NotAnImageError(f"not an image: unrecognised signature {data[:12].hex(' ')!r}")
    return info


def _identify(data: bytes) -> ImageInfo | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return _with_size("image/png", "png", _png_size(data))
    if data.startswith(b"\xff\xd8\xff"):
        return _with_size("image/jpeg", "jpg", _jpeg_size(data))
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return _with_size("image/gif", "gif", _gif_size(data))
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _with_size("image/webp", "webp", _webp_size(data))
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return _with_size("image/tiff", "tiff", _tiff_size(data))
    if data[4:8] == b"ftyp":
        return _isobmff(data)
    if data[:2] == b"BM" and len(data) >= 18 and _u32le(data, 14) in _BMP_DIB_SIZES:
        return _with_size("image/bmp", "bmp", _bmp_size(data))
    return None


Size = tuple[int, int] | None


def _with_size(content_type: str, extension: str, size: Size) -> ImageInfo:
    # A zero dimension is "not known from the header" (e.g. JPEG with a DNL marker), not a real size.
    if size is None or size[0] <= 0 or size[1] <= 0:
        return ImageInfo(content_type, extension, None, None)
    return ImageInfo(content_type, extension, size[0], size[1])


def _u16be(data: bytes, offset: int) -> int:
    return int(struct.unpack_from(">H", data, offset)[0])


def _u16le(data: bytes, offset: int) -> int:
    return int(struct.unpack_from("<H", data, offset)[0])


def _u32be(data: bytes, offset: int) -> int:
    return int(struct.unpack_from(">I", data, offset)[0])


def _u32le(data: bytes, offset: int) -> int:
    return int(struct.unpack_from("<I", data, offset)[0])


def _png_size(data: bytes) -> Size:
    # Signature (8) + chunk length (4) + "IHDR" (4), then width and height, big-endian.
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    return _u32be(data, 16), _u32be(data, 20)


# Start-of-frame markers carry the size; C4 (DHT), C8 (JPG extension) and CC (DAC) share the range.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field.
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})


def _jpeg_size(data: bytes) -> Size:
    pos = 2
    end = len(data)
    while pos < end:
        if data[pos] != 0xFF:
            return None  # lost sync: corrupt header, size unknown
        while pos < end and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= end:
            return None
        marker = data[pos]
        pos += 1
        if marker in _JPEG_STANDALONE:
            continue
        if marker in (0xD9, 0xDA):  # EOI or start of scan before any frame header
            return None
        if pos + 2 > end:
            return None
        length = _u16be(data, pos)
        if length < 2:
            return None
        if marker in _JPEG_SOF:
            if pos + 7 > end:
                return None
            # length(2) precision(1) height(2) width(2)
            return _u16be(data, pos + 5), _u16be(data, pos + 3)
        pos += length
    return None


def _gif_size(data: bytes) -> Size:
    if len(data) < 10:
        return None
    return _u16le(data, 6), _u16le(data, 8)


def _webp_size(data: bytes) -> Size:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30:
        # Frame tag (3) then the key-frame start code, then 14-bit width and height.
        if data[23:26] != b"\x9d\x01\x2a":
            return None
        return _u16le(data, 26) & 0x3FFF, _u16le(data, 28) & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        if data[20] != 0x2F:
            return None
        bits = _u32le(data, 21)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        # Flags (1) reserved (3), then 24-bit canvas width-1 and height-1.
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    return None


def _tiff_size(data: bytes) -> Size:
    endian = "<" if data[:2] == b"II" else ">"
    try:
        (ifd,) = struct.unpack_from(endian + "I", data, 4)
        (count,) = struct.unpack_from(endian + "H", data, ifd)
        width = height = None
        for i in range(count):
            entry = ifd + 2 + 12 * i
            tag, kind, _n = struct.unpack_from(endian + "HHI", data, entry)
            if tag not in (256, 257):
                continue
            if kind == 3:  # SHORT
                (value,) = struct.unpack_from(endian + "H", data, entry + 8)
            elif kind == 4:  # LONG
                (value,) = struct.unpack_from(endian + "I", data, entry + 8)
            else:
                continue
            if tag == 256:
                width = int(value)
            else:
                height = int(value)
    except struct.error:  # IFD beyond the head
        return None
    if width is None or height is None:
        return None
    return width, height


_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"})
_HEIF_BRANDS = frozenset({b"mif1", b"msf1"})


def _isobmff(data: bytes) -> ImageInfo | None:
    box_size = _u32be(data, 0)
    if box_size < 16 or box_size > 4096:
        return None
    brands = {data[8:12]} | {data[i : i + 4] for i in range(16, min(box_size, len(data)) - 3, 4)}
    if brands & _AVIF_BRANDS:
        return _with_size("image/avif", "avif", _ispe_size(data))
    if brands & _HEIC_BRANDS:
        return _with_size("image/heic", "heic", _ispe_size(data))
    if brands & _HEIF_BRANDS:
        return _with_size("image/heif", "heif", _ispe_size(data))
    return None  # an MP4 or another ISO-BMFF file that is not a still image


def _ispe_size(data: bytes) -> Size:
    # The primary image's "ispe" box is the largest one: others describe tiles, alpha or thumbnails.
    best: Size = None
    pos = data.find(b"ispe")
    while pos != -1 and pos + 16 <= len(data):
        width, height = _u32be(data, pos + 8), _u32be(data, pos + 12)
        if best is None or width * height > best[0] * best[1]:
            best = (width, height)
        pos = data.find(b"ispe", pos + 4)
    return best


_BMP_DIB_SIZES = frozenset({12, 40, 52, 56, 64, 108, 124})


def _bmp_size(data: bytes) -> Size:
    if len(data) < 26:
        return None
    if _u32le(data, 14) == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
        return _u16le(data, 18), _u16le(data, 20)
    width, height = struct.unpack_from("<ii", data, 18)
    return abs(int(width)), abs(int(height))  # negative height means top-down rows


__all__ = ["SNIFF_HEAD_BYTES", "ImageInfo", "sniff_image"]
