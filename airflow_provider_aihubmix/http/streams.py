"""Open image responses the hook hands out: sync and async twins over one byte budget.

A body cut short of its Content-Length or growing past ``max_bytes`` raises
:class:`AIHubMixDownloadError` (``DownloadTruncatedError`` for a short one): a partial image must
never be stored as if it were whole.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx

from airflow_provider_aihubmix.http import ByteBudget
from airflow_provider_aihubmix.redaction import redact_url

DEFAULT_CHUNK_SIZE = 64 * 1024


class _OpenDownload:
    """What both download twins know about an open image response."""

    def __init__(self, response: httpx.Response, budget: ByteBudget) -> None:
        self._response = response
        self._budget = budget
        self.url = redact_url(response.url)
        self.content_type: str | None = response.headers.get("Content-Type")
        self.content_length: int | None = budget.content_length

    @property
    def bytes_received(self) -> int:
        return self._budget.received


class ImageDownload(_OpenDownload):
    """An open image response. ``iter_bytes`` raises :class:`AIHubMixDownloadError` on a body that is
    cut short of its Content-Length or that grows past ``max_bytes``: a partial image must never be
    stored as if it were whole."""

    def iter_bytes(self, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        try:
            for chunk in self._response.iter_bytes(chunk_size):
                yield self._budget.add(chunk)
        except httpx.TransportError as exc:
            raise self._budget.truncated(exc) from exc
        self._budget.finish(_wire_bytes(self._response, self._budget))

    def read(self) -> bytes:
        return b"".join(self.iter_bytes())


class AsyncImageDownload(_OpenDownload):
    """The async twin of :class:`ImageDownload`."""

    async def aiter_bytes(self, chunk_size: int = DEFAULT_CHUNK_SIZE) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_bytes(chunk_size):
                yield self._budget.add(chunk)
        except httpx.TransportError as exc:
            raise self._budget.truncated(exc) from exc
        self._budget.finish(_wire_bytes(self._response, self._budget))

    async def aread(self) -> bytes:
        return b"".join([chunk async for chunk in self.aiter_bytes()])


def _wire_bytes(response: httpx.Response, budget: ByteBudget) -> int:
    # Content-Length counts encoded bytes; without a content coding they are the bytes we counted.
    if response.headers.get("Content-Encoding", "identity").lower() in ("", "identity"):
        return budget.received
    return response.num_bytes_downloaded


__all__ = ["DEFAULT_CHUNK_SIZE", "AsyncImageDownload", "ImageDownload"]
