"""Image downloads: size caps, truncation, the errors for a failed download, and the open
responses the hook hands out (sync and async twins over one byte budget).

A body cut short of its Content-Length or growing past ``max_bytes`` raises
:class:`AIHubMixDownloadError` (``DownloadTruncatedError`` for a short one): a partial image must
never be stored as if it were whole."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx

from airflow_provider_aihubmix.exceptions import AIHubMixDownloadError, DownloadTruncatedError
from airflow_provider_aihubmix.redaction import redact_url


def download_error_for_status(response: httpx.Response, url: str, attempts: int) -> AIHubMixDownloadError:
    shown = redact_url(url)
    status = response.status_code
    if status in (403, 404, 410):
        return AIHubMixDownloadError(
            f"Image URL {shown} is expired or missing (signed URLs expire: AIHubMix task results after "
            "~10 minutes, Seedream after 24 h)",
            status_code=status,
        )
    retried = f" after {attempts} attempts" if attempts > 1 else ""
    return AIHubMixDownloadError(f"Image download {shown} failed{retried}", status_code=status)


@dataclass
class ByteBudget:
    """Counts a download's bytes; refuses more than ``max_bytes`` and fewer than Content-Length."""

    url: str
    content_length: int | None
    max_bytes: int | None
    received: int = 0

    def __post_init__(self) -> None:
        if (
            self.max_bytes is not None
            and self.content_length is not None
            and self.content_length > self.max_bytes
        ):
            raise AIHubMixDownloadError(
                f"Image {redact_url(self.url)} is {self.content_length} bytes, over the limit of "
                f"{self.max_bytes} bytes"
            )

    def add(self, chunk: bytes) -> bytes:
        self.received += len(chunk)
        if self.max_bytes is not None and self.received > self.max_bytes:
            raise AIHubMixDownloadError(
                f"Image {redact_url(self.url)} exceeds the limit of {self.max_bytes} bytes"
            )
        return chunk

    def finish(self, raw_bytes: int) -> None:
        """``raw_bytes`` is what came over the wire (``Content-Length`` counts encoded bytes)."""
        if self.content_length is not None and raw_bytes != self.content_length:
            raise DownloadTruncatedError(
                f"Image {redact_url(self.url)} was truncated: received {raw_bytes} of "
                f"{self.content_length} bytes"
            )

    def truncated(self, exc: Exception) -> DownloadTruncatedError:
        expected = f" of {self.content_length}" if self.content_length is not None else ""
        error = DownloadTruncatedError(
            f"Image {redact_url(self.url)} was truncated: the connection ended after {self.received}"
            f"{expected} bytes ({type(exc).__name__})"
        )
        error.__cause__ = exc
        return error


def content_length_of(response: httpx.Response) -> int | None:
    value = response.headers.get("Content-Length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


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


__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "AsyncImageDownload",
    "ByteBudget",
    "ImageDownload",
    "content_length_of",
    "download_error_for_status",
]
