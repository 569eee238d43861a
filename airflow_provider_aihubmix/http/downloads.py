"""Download accounting: size caps, truncation and the errors for a failed image download."""

from __future__ import annotations

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
