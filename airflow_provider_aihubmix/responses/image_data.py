"""Inline image data: base64 (with or without a ``data:`` URI) decoded once, and MIME labels.

AIHubMix's families put an image in an answer as standard or url-safe base64, padded or not,
wrapped or not, sometimes behind a ``data:image/...;base64,`` prefix (OpenAI ``b64_json``,
AIHubMix ``bytesBase64``, Gemini ``inlineData.data``). :func:`decode_base64_image` reads every
one of them and refuses text that is not base64; :func:`normalise_mime` folds the labels
(``png``, ``PNG``, ``image/png``) the answers carry.
"""

from __future__ import annotations

import base64
import binascii
import re
import sys
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from airflow_provider_aihubmix.exceptions import AIHubMixResponseError

#: Stand-ins for images a streamed reader already decoded (``responses.answer_stream``).
_INLINE: ContextVar[Mapping[str, bytes] | None] = ContextVar("aihubmix_inline_images", default=None)


@contextmanager
def inline_images(images: Mapping[str, bytes]) -> Iterator[None]:
    """Within the block, :func:`decode_base64_image` returns ``images[stand_in]`` for a stand-in
    (bare or behind its ``data:`` header) instead of decoding its text."""
    token = _INLINE.set(images)
    try:
        yield
    finally:
        _INLINE.reset(token)


def normalise_mime(value: Any) -> str | None:
    """``png`` / ``PNG`` / ``image/png`` -> ``image/png``; ``None`` when nothing usable."""
    if not isinstance(value, str) or not value.strip():
        return None
    mime = value.strip().lower()
    if "/" in mime:
        return mime
    if mime in ("jpg", "jpeg"):
        return "image/jpeg"
    if mime.isalnum():
        return f"image/{mime}"
    return None


def decode_base64_image(value: str) -> tuple[bytes, str | None]:
    """Decode a base64 image once, tolerating a ``data:`` URI prefix, whitespace, url-safe alphabet
    and missing padding. Returns the bytes and the MIME type a ``data:`` prefix carried.

    Raises :class:`AIHubMixResponseError` when the text is not base64: a silent garbage image would
    only fail later in storage, far from the cause.
    """
    mime: str | None = None
    text = value.strip()
    if text.startswith("data:"):
        header, sep, text = text.partition(",")
        if not sep:
            raise AIHubMixResponseError("An image data: URI has no ',' separating header and data")
        mime = normalise_mime(header[5:].split(";", 1)[0]) if header[5:] else None
        if ";base64" not in header:
            return urllib.parse.unquote_to_bytes(text), mime
    streamed = (_INLINE.get() or {}).get(text)
    if streamed is not None:
        return streamed, mime
    try:
        # The usual case, clean standard base64, decoded straight from the str: b64decode would
        # first copy it to bytes, and the repairs below copy it again (each copy 1.33x the image).
        data = _strict_b64decode(text)
    except (binascii.Error, ValueError):
        pass
    else:
        if data:
            return data, mime
    text = re.sub(r"\s+", "", text)
    if "-" in text or "_" in text:
        text = text.replace("-", "+").replace("_", "/")
    text = text.rstrip("=")
    text += "=" * (-len(text) % 4)
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AIHubMixResponseError(
            f"An image in the response is not valid base64 ({len(value)} characters)"
        ) from exc
    if not data:
        raise AIHubMixResponseError("An image in the response decoded to zero bytes")
    return data, mime


def _strict_b64decode(text: str) -> bytes:
    """Clean standard base64 only (padding included); raises ``binascii.Error`` otherwise."""
    if sys.version_info >= (3, 11):
        return binascii.a2b_base64(text, strict_mode=True)
    # Python 3.10 has no strict_mode: validate=True refuses characters outside the alphabet
    # (it copies the str to bytes first, which 3.11+ avoids).
    return base64.b64decode(text, validate=True)


__all__ = ["decode_base64_image", "inline_images", "normalise_mime"]
