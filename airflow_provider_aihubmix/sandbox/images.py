"""Real, deterministic images: the size and format asked for, a picture derived from a seed.

The picture is a two-colour gradient with a disc, colours hashed from (seed, index):
cheap to draw, different per index, byte-identical for the same seed and prompt.
Pillow is imported inside the functions so importing the sandbox stays fast.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import zlib
from collections import OrderedDict
from collections.abc import AsyncIterator

FORMATS = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp"}
FORMAT_BY_EXTENSION = {"png": "png", "jpg": "jpeg", "jpeg": "jpeg", "webp": "webp"}

_NAMED_SIDES = {"1k": 1024, "2k": 2048, "3k": 3072, "4k": 4096}  # 3K: Seedream 5.0 lite (Ark)
_SIZE_RE = re.compile(r"^\s*(\d{1,5})\s*[x*\u00d7X]\s*(\d{1,5})\s*$")
_RATIO_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*[:xX/]\s*(\d+(?:\.\d+)?)\s*$")
HONEST_LIMIT = 8192  # the largest side drawn when max_side is 0


class SizeError(ValueError):
    """The size or aspect ratio is not one the API takes."""


def parse_ratio(value: str) -> float:
    match = _RATIO_RE.match(value)
    if not match or float(match.group(2)) == 0 or float(match.group(1)) == 0:
        raise SizeError(f"aspect ratio {value!r} is not like '16:9' or '2x1'")
    return float(match.group(1)) / float(match.group(2))


def resolve_size(size: object, aspect_ratio: object = None, *, max_side: int = 1024) -> tuple[int, int]:
    """Width and height for ``size`` (``1K``/``2K``/``3K``/``4K``/``auto``/``WxH``/``W*H``) and a ratio.

    A named size gives the long side, the aspect ratio the short one; an explicit
    ``WxH`` wins over the ratio. The result is scaled down (aspect kept) to ``max_side``.
    """
    long_side = 1024
    exact: tuple[int, int] | None = None
    if size is not None and size != "":
        if not isinstance(size, str):
            raise SizeError(f"size {size!r} is not a string")
        key = size.strip().lower()
        if key in _NAMED_SIDES:
            long_side = _NAMED_SIDES[key]
        elif key != "auto":
            match = _SIZE_RE.match(key)
            if not match:
                raise SizeError(f"size {size!r} is not supported")
            exact = (int(match.group(1)), int(match.group(2)))
    if exact is not None:
        width, height = exact
    elif aspect_ratio:
        ratio = parse_ratio(str(aspect_ratio))
        if ratio >= 1:
            width, height = long_side, max(1, round(long_side / ratio))
        else:
            width, height = max(1, round(long_side * ratio)), long_side
    else:
        width = height = long_side
    if not (16 <= width <= 16384 and 16 <= height <= 16384):
        raise SizeError(f"size {width}x{height} is out of range")
    limit = max_side if max_side > 0 else HONEST_LIMIT
    if max(width, height) > limit:
        scale = limit / max(width, height)
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
    return width, height


def image_seed(prompt: str, seed: object = None, extra: bytes = b"") -> int:
    """A 63-bit seed from the prompt, the caller's seed (if any) and e.g. input-image bytes.

    Without a seed the prompt alone decides, so repeated calls return the same bytes
    (the real API would vary; determinism keeps tests reproducible and the cache warm).
    """
    digest = hashlib.blake2b(f"{seed!r}|{prompt}".encode() + extra, digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def render(width: int, height: int, fmt: str, seed: int, index: int) -> bytes:
    """Encode one image; CPU-bound (run it off the event loop when not cached)."""
    from PIL import Image, ImageDraw, ImageOps

    digest = hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=12).digest()
    top, bottom, disc = digest[0:3], digest[3:6], digest[6:9]
    gradient = Image.linear_gradient("L").resize((width, height), Image.Resampling.BILINEAR)
    img = ImageOps.colorize(gradient, tuple(top), tuple(bottom))
    # A disc whose place and colour also come from the hash: indexes differ visibly.
    cx, cy = digest[9] / 255 * width, digest[10] / 255 * height
    radius = max(1.0, (0.15 + digest[11] / 255 * 0.2) * min(width, height))
    ImageDraw.Draw(img).ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=tuple(disc))
    out = io.BytesIO()
    if fmt == "png":
        img.save(out, format="PNG", compress_level=1)
    elif fmt == "jpeg":
        img.save(out, format="JPEG", quality=85)
    elif fmt == "webp":
        img.save(out, format="WEBP", quality=80, method=0)
    else:
        raise ValueError(f"unknown image format {fmt!r}")
    return out.getvalue()


ImageKey = tuple[int, int, str, int, int]  # (width, height, format, seed, index)


class ImageCache:
    """LRU of encoded images by (w, h, format, seed, index), bounded in bytes."""

    def __init__(self, max_bytes: int = 128 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[ImageKey, bytes] = OrderedDict()
        self._size = 0

    def get(self, key: ImageKey) -> bytes | None:
        data = self._items.get(key)
        if data is not None:
            self._items.move_to_end(key)
        return data

    def put(self, key: ImageKey, data: bytes) -> None:
        if key in self._items or len(data) > self.max_bytes:
            return
        self._items[key] = data
        self._size += len(data)
        while self._size > self.max_bytes:
            _, old = self._items.popitem(last=False)
            self._size -= len(old)

    def __len__(self) -> int:
        return len(self._items)


# --- "huge" images -----------------------------------------------------------------------
# A valid PNG padded to any byte size with private ancillary chunks ("sbFl": ancillary,
# private, safe to copy) that decoders skip. The padding chunk is built once and sent
# many times, so a 256 MB body costs no more memory than one 1 MiB chunk.

_FILL_TYPE = b"sbFl"
_FILL_DATA = 1024 * 1024
_FULL = _FILL_DATA + 12
_full_chunk: bytes | None = None
_IHDR_END = 8 + 25  # PNG signature + IHDR chunk


def _fill_chunk(data_len: int) -> bytes:
    zeros = bytes(data_len)
    crc = zlib.crc32(_FILL_TYPE + zeros) & 0xFFFFFFFF
    return struct.pack(">I", data_len) + _FILL_TYPE + zeros + struct.pack(">I", crc)


def _padding_plan(fill: int) -> tuple[int, int | None]:
    """(number of full chunks, data length of one last chunk or None) adding exactly ``fill`` bytes."""
    if fill < 12:
        return 0, None
    full, rest = divmod(fill, _FULL)
    if rest == 0:
        return full, None
    if rest >= 12:
        return full, rest - 12
    return full - 1, _FULL + rest - 12  # too small for a chunk: grow the last full one


def huge_png_length(base_png: bytes, total: int) -> int:
    """The exact length :func:`huge_png_stream` will send (``total`` unless ``total`` is tiny)."""
    return total if total - len(base_png) >= 12 else len(base_png)


async def huge_png_stream(base_png: bytes, total: int) -> AsyncIterator[bytes]:
    global _full_chunk
    full, last = _padding_plan(total - len(base_png))
    yield base_png[:_IHDR_END]
    if full:
        if _full_chunk is None:
            _full_chunk = _fill_chunk(_FILL_DATA)
        for _ in range(full):
            yield _full_chunk
    if last is not None:
        yield _fill_chunk(last)
    yield base_png[_IHDR_END:]


def padded_png(base_png: bytes, total: int) -> bytes:
    """``base_png`` padded to ``total`` bytes like :func:`huge_png_stream`, in memory (small sizes)."""
    full, last = _padding_plan(total - len(base_png))
    parts = [base_png[:_IHDR_END], *(_fill_chunk(_FILL_DATA) for _ in range(full))]
    if last is not None:
        parts.append(_fill_chunk(last))
    parts.append(base_png[_IHDR_END:])
    return b"".join(parts)
