"""A prediction sent from the triggerer: the request goes out once, the answer streams to a spool.

A synchronous model answers with the images inline (gpt-image: ~1-3 MB of base64 per image).
A triggerer holds hundreds of such requests at once on one event loop, so the answer is
never gathered in the loop: its body streams, chunk by chunk, into a temporary file that
stays in memory while small and rolls over to disk (written from a thread), and it is
decoded and parsed later in a thread, one answer at a time per thread
(:meth:`PredictionAnswer.parse`).

Retries are the hook's (:mod:`airflow_provider_aihubmix.http`): 429 and 5xx answers (the
gateway did not take the job) are sent again with the connection's backoff, never past the
trigger's wall-clock deadline; a lost or cut-short answer raises
:class:`~airflow_provider_aihubmix.exceptions.AIHubMixPossiblyBilledError`, never a resend.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import httpx

from airflow_provider_aihubmix.exceptions import AIHubMixError, AIHubMixUpstreamError
from airflow_provider_aihubmix.http.auth import GEMINI_PATH_MARKER
from airflow_provider_aihubmix.http.errors import json_or_raise
from airflow_provider_aihubmix.http.retries import AsyncSleep, RetryState
from airflow_provider_aihubmix.responses import gemini, gemini_stream
from airflow_provider_aihubmix.responses.answer_stream import StreamFallback, StreamScanner
from airflow_provider_aihubmix.responses.image_data import inline_images
from airflow_provider_aihubmix.responses.shapes import PredictionResult, parse_prediction

#: Answers up to this size are read into memory at once (error bodies, URL answers).
SMALL_ANSWER_BYTES = 64 * 1024
#: Bytes of one answer kept in memory before the spool moves to a temporary file.
SPOOL_MEMORY_BYTES = 256 * 1024
#: Answers above this size are read with :class:`StreamScanner` (each base64 image decoded in
#: chunks); smaller ones are parsed whole, in memory.
STREAMED_ANSWER_BYTES = 1024 * 1024
#: Bytes gathered from the socket before one write to the spool (from a thread once on disk).
SPOOL_WRITE_BYTES = 256 * 1024


class PredictionAnswer:
    """A final 2xx answer whose body is held in ``body`` (small) or a spool file (large).

    :meth:`parse` is blocking (it reads the spool, decodes JSON and base64): call it from a
    thread. :meth:`close` drops the spool; parsing closes it too.
    """

    def __init__(
        self,
        response: httpx.Response,
        call: RetryState,
        *,
        body: bytes | None = None,
        spool: IO[bytes] | None = None,
    ) -> None:
        self.status_code = response.status_code
        self.headers = response.headers
        self.request = response.request
        self.request_id: str | None = response.headers.get("X-Request-Id")
        self.call = call
        self._body = body
        self._spool = spool

    @property
    def size(self) -> int:
        if self._body is not None:
            return len(self._body)
        return self._spool.tell() if self._spool is not None and not self._spool.closed else 0

    def parse(self) -> PredictionResult:
        """The normalised images; raises the same typed errors as the blocking path would."""
        if GEMINI_PATH_MARKER in self.request.url.path:
            return self._parse_gemini()
        if self._body is None and self._spool is not None and self.size > STREAMED_ANSWER_BYTES:
            streamed = self._parse_streamed()
            if streamed is not None:
                return streamed
        body = self._body
        if body is None and self._spool is not None:
            self._spool.seek(0)
            body = self._spool.read()
        self.close()
        # A Response again, so the one error mapping (error bodies in a 200, non-JSON) applies.
        response = httpx.Response(
            self.status_code, headers=self.headers, content=body or b"", request=self.request
        )
        data = json_or_raise(response, self.call)
        del body, response
        return parse_prediction(data, request_id=self.request_id)

    def _spool_chunks(self) -> Iterator[bytes]:
        if self._body is not None:
            yield self._body
        elif self._spool is not None:
            self._spool.seek(0)
            while block := self._spool.read(SPOOL_WRITE_BYTES):
                yield block

    def _parse_streamed(self) -> PredictionResult | None:
        """A large answer read chunk by chunk (:mod:`~airflow_provider_aihubmix.responses.answer_stream`):
        the skeleton goes through the same error mapping and reader as a whole body, with each
        streamed image's bytes behind its stand-in. ``None`` (the spool kept) when the scanner
        gives up or the answer reads as an error: the caller then reads the whole body and
        raises the error it always did (an unreadable answer saved whole, never a skeleton)."""
        # A Response over the spool, so a Content-Encoding is decoded as the blocking path does.
        response = httpx.Response(
            self.status_code, headers=self.headers, content=self._spool_chunks(), request=self.request
        )
        scanner = StreamScanner()
        try:
            for chunk in response.iter_bytes():
                scanner.feed(chunk)
            skeleton = scanner.finish()
        except StreamFallback:
            return None
        headers = {
            key: value
            for key, value in self.headers.items()
            if key.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        }
        try:
            data = json_or_raise(
                httpx.Response(self.status_code, headers=headers, content=skeleton, request=self.request),
                self.call,
            )
            del skeleton
            with inline_images(scanner.images):
                result = parse_prediction(data, request_id=self.request_id)
        except AIHubMixError:
            # Errors (and an unreadable answer, which is saved) come from the whole body, as before.
            return None
        self.close()
        return result

    def _parse_gemini(self) -> PredictionResult:
        """A Gemini answer read from the spool chunk by chunk: one image's base64 at a time, its
        ``thoughtSignature`` never kept (:mod:`airflow_provider_aihubmix.responses.gemini_stream`)."""

        # A Response over the spool, so a Content-Encoding is decoded as the blocking path does.
        response = httpx.Response(
            self.status_code, headers=self.headers, content=self._spool_chunks(), request=self.request
        )

        def raise_error(skeleton: Any) -> None:
            json_or_raise(
                httpx.Response(
                    self.status_code,
                    headers={
                        "Content-Type": "application/json",
                        **({"X-Request-Id": self.request_id} if self.request_id else {}),
                    },
                    content=json.dumps(skeleton).encode(),
                    request=self.request,
                ),
                self.call,
            )

        try:
            return gemini_stream.read_answer(
                response.iter_bytes(),
                request_id=self.request_id,
                seed=gemini.sent_seed(self.request),
                raise_error=raise_error,
            )
        finally:
            self.close()

    def close(self) -> None:
        self._body = None
        if self._spool is not None:
            self._spool.close()
            self._spool = None


async def send_prediction(
    client: httpx.AsyncClient,
    request: httpx.Request,
    call: RetryState,
    *,
    sleep: AsyncSleep,
    deadline: float | None,
) -> PredictionAnswer:
    """Send ``request`` (a billable POST) until a final answer, and stream that answer to a spool.

    Between attempts it sleeps the policy's delay unless that would pass ``deadline``
    (wall-clock epoch seconds): then the last answer's typed error is raised instead.
    """
    while True:
        try:
            response = await client.send(request, stream=True)
        except httpx.TransportError as exc:
            wait = call.after_exception(exc)  # raises PossiblyBilled once the request was sent
            if deadline is not None and time.time() + wait > deadline:
                raise AIHubMixUpstreamError(
                    f"Could not reach AIHubMix for {call.label} before the deadline: {type(exc).__name__}"
                ) from exc
            await sleep(wait)
            continue
        try:
            answer, delay = await _answer_or_delay(response, call, deadline)
        finally:
            await response.aclose()
        if answer is not None:
            return answer
        await sleep(delay)


async def _answer_or_delay(
    response: httpx.Response, call: RetryState, deadline: float | None
) -> tuple[PredictionAnswer | None, float]:
    """The final answer, or the delay before the next attempt; raises the typed error of a refusal."""
    if is_streamed_answer(response):
        call.after_response(response)  # counts the attempt; a streamed 2xx is final
        return PredictionAnswer(response, call, spool=await _spool_body(response, call)), 0.0
    body = await _read_small(response, call)
    delay = call.after_response(response)
    if delay is None or (deadline is not None and time.time() + delay > deadline):
        if response.status_code >= 400 or delay is not None:
            json_or_raise(response, call)  # raises the typed error (429 / 5xx past the deadline too)
        return PredictionAnswer(response, call, body=body), 0.0
    return None, delay


def is_streamed_answer(response: httpx.Response) -> bool:
    """Whether a streamed ``response`` is a 2xx answer to spool (final, whatever it holds) rather than
    one small enough to read first, so an error carried in a 200 (retryable) can be judged."""
    small = _declared_length(response)
    return response.status_code < 300 and (small is None or small > SMALL_ANSWER_BYTES)


def _declared_length(response: httpx.Response) -> int | None:
    value = response.headers.get("Content-Length")
    return int(value) if value and value.isdigit() else None


async def _read_small(response: httpx.Response, call: RetryState) -> bytes:
    try:
        return await response.aread()
    except httpx.TransportError as exc:
        call.after_exception(exc)  # a 2xx cut short was billed: PossiblyBilled
        raise


async def _spool_body(response: httpx.Response, call: RetryState) -> IO[bytes]:
    """The body in a spool file; the loop only ever holds ``SPOOL_WRITE_BYTES`` of it."""
    # Handed to the caller open: PredictionAnswer closes it.
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115
    pending: list[bytes] = []
    pending_bytes = 0
    size = 0
    with _spooling(spool, call):
        async for chunk in response.aiter_raw():
            pending.append(chunk)
            pending_bytes += len(chunk)
            if pending_bytes >= SPOOL_WRITE_BYTES:
                size += await _flush(spool, pending, size)
                pending, pending_bytes = [], 0
        if pending:
            await _flush(spool, pending, size)
    return spool


def spool_answer(response: httpx.Response, call: RetryState) -> PredictionAnswer | None:
    """The worker's twin of the triggerer's spooling: a streamed 2xx answer's wire bytes written
    to a spool (in memory up to ``SPOOL_MEMORY_BYTES``, then a temporary file), read later by
    :meth:`PredictionAnswer.parse`. The response is read to its end, not closed. ``None`` when
    the response was already read into memory (its raw bytes are gone: parse ``response`` whole).

    :raises httpx.TransportError: the answer was lost mid-way (``call`` records it: possibly billed).
    """
    if hasattr(response, "_content"):
        return None  # already read (a transport answering from memory): no raw bytes to spool
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115
    with _spooling(spool, call):
        for chunk in response.iter_raw(SPOOL_WRITE_BYTES):
            spool.write(chunk)
    return PredictionAnswer(response, call, spool=spool)  # type: ignore[arg-type]


@contextmanager
def _spooling(spool: IO[bytes], call: RetryState) -> Iterator[None]:
    """Around writing an answer to ``spool`` (worker and triggerer alike): on any error the spool
    is closed; a transport error is recorded on ``call`` first (the job was taken and billed)."""
    try:
        yield
    except httpx.TransportError as exc:
        spool.close()
        call.after_exception(exc)  # the job was taken and billed; its answer is lost
        raise
    except BaseException:
        spool.close()
        raise


async def _flush(spool: Any, chunks: list[bytes], written: int) -> int:
    data = b"".join(chunks)
    if written + len(data) <= SPOOL_MEMORY_BYTES:
        spool.write(data)  # still in memory: no I/O
    else:
        await asyncio.to_thread(spool.write, data)  # on (or rolling over to) disk
    return len(data)


__all__ = [
    "PredictionAnswer",
    "is_streamed_answer",
    "send_prediction",
]
