"""Thumbnails: a small WebP beside each stored image, for the gallery's grid (issue 25).

``image-003.png`` gets ``image-003.thumb.webp`` in the same prefix, its longest side
:data:`THUMBNAIL_SIDE` px. The purchase path makes it right after the image is stored and
records it in the image's manifest record (``thumbnail``: uri, sha256, bytes, width, height);
a thumbnail that cannot be made is logged and left out -- it never fails a purchase. The
gallery makes the missing thumbnail of an older run once, on first view, and keeps it.

Cost (measured by ``benchmarks/bench_thumbnails.py``): decoding dominates; Pillow's
``draft`` lets a JPEG decode at 1/8 scale, a PNG is decoded whole (a 2048x2048 PNG
takes ~0.1-0.2 s on one core of this machine) and its pixels are held while it is scaled
(width x height x 3-4 bytes: 16.8 MB for 2048x2048 RGBA), on top of the image being stored.
``[aihubmix] store_thumbnails = False`` leaves that to the gallery's first view.
"""

from __future__ import annotations

import io
import logging
import re
from typing import IO, Any

from airflow_provider_aihubmix.storage.base import ObjectStore, StoredObject

log = logging.getLogger(__name__)

#: Longest side of a thumbnail, in pixels.
THUMBNAIL_SIDE = 320
#: WebP quality (Pillow's scale, 0-100): small files, good enough for a contact sheet.
THUMBNAIL_QUALITY = 75
#: Images larger than this many pixels are not thumbnailed (Pillow's own bomb limit is ~179 Mpx).
MAX_SOURCE_PIXELS = 64_000_000
_IMAGE_KEY = re.compile(r"^(?P<stem>.*/image-[0-9]{3,6})\.(?:png|jpg|jpeg|webp|gif)$")


def thumbnail_key(image_key: str) -> str:
    """Key of the thumbnail of ``image_key``: ``./image-003.png`` -> ``./image-003.thumb.webp``.

    :raises ValueError: when ``image_key`` is not an engine image key.
    """
    match = _IMAGE_KEY.match(image_key)
    if match is None:
        raise ValueError(f"{image_key!r} is not an image key")
    return f"{match['stem']}.thumb.webp"


def thumbnail_name(image_name: str) -> str:
    """The thumbnail's file name for image file name ``image_name``."""
    return thumbnail_key(f"x/{image_name}")[2:]


def store_thumbnails() -> bool:
    """``[aihubmix] store_thumbnails`` (default True): whether the purchase path makes each image's
    thumbnail as it stores it. False leaves it to the gallery's first view of the image (made
    once, then kept), for workers that cannot spare the decoded pixels while storing."""
    from airflow.configuration import conf

    return conf.getboolean("aihubmix", "store_thumbnails", fallback=True)


def make_thumbnail(data: bytes | IO[bytes], side: int = THUMBNAIL_SIDE) -> bytes:
    """WebP bytes of ``data`` (an image, or a binary file holding one) scaled so its longest side
    is at most ``side`` px. A seekable file is read as Pillow needs it, never whole.

    :raises OSError | ValueError: when Pillow cannot decode the image (or it is too large).
    """
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as image:
        if image.width * image.height > MAX_SOURCE_PIXELS:
            raise ValueError(f"{image.width}x{image.height} is too large to thumbnail")
        image.draft("RGB", (side, side))  # JPEG: decode at a reduced scale; others: no-op
        image.seek(0)
        # Scale first, in place (the box is square, so a turn keeps it inside), then turn by the EXIF
        # orientation: exif_transpose copies its image -- the full decoded pixels, were it first.
        image.thumbnail((side, side), Image.Resampling.BICUBIC, reducing_gap=2.0)
        frame = ImageOps.exif_transpose(image)
        if frame.mode not in ("RGB", "RGBA"):
            frame = frame.convert("RGBA" if "transparency" in frame.info or "A" in frame.mode else "RGB")
        out = io.BytesIO()
        frame.save(out, "WEBP", quality=THUMBNAIL_QUALITY, method=4)
    return out.getvalue()


def store_thumbnail(store: ObjectStore, image_key: str, data: bytes | IO[bytes]) -> StoredObject:
    """Make and store the thumbnail of ``data`` (the image at ``image_key``) beside it."""
    thumb = make_thumbnail(data)
    stem = thumbnail_key(image_key).removesuffix(".webp")
    return store.put_image_bytes(stem, thumb, metadata={"thumbnail-of": image_key.rpartition("/")[2]})


def thumbnail_record(stored: StoredObject) -> dict[str, Any]:
    """The manifest's ``thumbnail`` entry of an image record."""
    return {
        "uri": stored.uri,
        "sha256": stored.sha256,
        "bytes": stored.bytes,
        "width": stored.width,
        "height": stored.height,
    }


def try_thumbnail(
    store: ObjectStore, image: StoredObject, data: bytes | IO[bytes] | None
) -> dict[str, Any] | None:
    """The purchase path's thumbnail: made from ``data`` (the image's bytes, or a seekable reader of
    them), else from the stored image opened as a file (a read back),
    stored, recorded -- or None, also when ``[aihubmix] store_thumbnails`` is off.

    Never raises: a thumbnail is a convenience, the image it shows is what was paid for.
    """
    try:
        if not store_thumbnails():
            return None
        if data is not None:
            return thumbnail_record(store_thumbnail(store, image.key, data))
        with store.open_read(image.key) as stored:
            return thumbnail_record(store_thumbnail(store, image.key, stored))
    except Exception as err:  # any failure: logged, the image still counts
        log.warning("No thumbnail for %s (the image is stored and counts): %s", image.uri, err)
        return None


__all__ = [
    "THUMBNAIL_SIDE",
    "make_thumbnail",
    "store_thumbnail",
    "store_thumbnails",
    "thumbnail_key",
    "thumbnail_name",
    "thumbnail_record",
    "try_thumbnail",
]
