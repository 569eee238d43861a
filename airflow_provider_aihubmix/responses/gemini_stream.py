"""A Gemini answer read as it arrives: images decoded one at a time, ``thoughtSignature`` never kept.

Gemini 3 image answers carry, beside the image part, a ``thoughtSignature`` of about 1.5 M base64
characters (an opaque token for multi-turn chats, of no use to a task that stores images), and
``:streamGenerateContent`` answers with a JSON **array** of ``GenerateContentResponse`` chunks
(AIHubMix's own users call Gemini image models that way). Reading either with ``json.loads``
would hold the whole body -- every image's base64 and the signature -- and then copy it into
Python strings.

:class:`AnswerScanner` reads the body chunk by chunk instead. It keeps a *skeleton* of the JSON --
every small value as sent -- and treats two kinds of strings on their own:

* ``inlineData.data`` (or ``inline_data.data``): the base64 of one image, gathered and decoded
  when its string ends; the skeleton holds a placeholder. Only one image's base64 is ever held.
* ``thoughtSignature`` (or ``thought_signature``): skipped as it streams by, never stored (the
  skeleton holds ``null``), so it cannot reach a manifest, a log line, XCom or lineage.

:func:`read_answer` merges the chunks of a streamed answer into one ``GenerateContentResponse``
(parts in order, adjacent commentary text joined, the last ``finishReason`` and
``usageMetadata``) and reads it with :func:`airflow_provider_aihubmix.responses.gemini.parse_answer`,
so a plain ``generateContent`` answer and a streamed one give the same images and errors.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from airflow_provider_aihubmix.exceptions import AIHubMixResponseError
from airflow_provider_aihubmix.responses import json_frames
from airflow_provider_aihubmix.responses.gemini import INLINE_PLACEHOLDER, parse_answer
from airflow_provider_aihubmix.responses.image_data import decode_base64_image
from airflow_provider_aihubmix.responses.shapes import PredictionResult

#: Placeholder prefix an image's base64 is replaced with in the skeleton (index after the colon).
PLACEHOLDER = INLINE_PLACEHOLDER
_IMAGE_PARENTS = frozenset({b"inlineData", b"inline_data"})
_SKIPPED_KEYS = frozenset({b"thoughtSignature", b"thought_signature"})
_STRING_STOP = re.compile(rb'["\\]')
_WHITESPACE = frozenset(b" \t\r\n")
# Escapes that may appear inside a base64 string: "\/" is "/", line breaks are noise.
_B64_ESCAPES = {ord("/"): b"/", ord("n"): b"", ord("r"): b"", ord("t"): b"", ord("\\"): b""}


class AnswerScanner:
    """Feed the answer's bytes with :meth:`feed`; :meth:`finish` returns the skeleton and images.

    ``skipped_chars`` counts the characters of the strings skipped (the signatures), for tests
    and benchmarks; ``largest_image_b64`` is the longest base64 text held at once.
    """

    def __init__(self) -> None:
        self._skeleton = bytearray()
        self._stack: list[json_frames.JsonFrame] = []
        self._mode: str | None = None  # inside a string: "key", "keep", "image" or "skip"
        self._escape = False
        self._key = bytearray()
        self._image = bytearray()
        self.images: list[bytes] = []
        self.skipped_chars = 0
        self.largest_image_b64 = 0

    # -- feeding ----------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        pos, end = 0, len(data)
        while pos < end:
            if self._mode is not None:
                pos = self._in_string(data, pos, end)
                continue
            byte = data[pos]
            pos += 1
            if byte in _WHITESPACE:
                continue
            if byte == 0x22:  # '"'
                self._open_string()
                continue
            json_frames.step(self._stack, byte)
            self._skeleton.append(byte)

    def _open_string(self) -> None:
        top = self._stack[-1] if self._stack else None
        if top is not None and top.is_object and top.expecting_key:
            self._mode = "key"
            self._key.clear()
            self._skeleton.append(0x22)
            return
        key = top.key if top is not None and top.is_object else None
        parent = self._stack[-2] if len(self._stack) >= 2 else None
        if key == b"data" and parent is not None and parent.is_object and parent.key in _IMAGE_PARENTS:
            self._mode = "image"
            self._image.clear()
        elif key in _SKIPPED_KEYS:
            self._mode = "skip"
        else:
            self._mode = "keep"
            self._skeleton.append(0x22)

    def _in_string(self, data: bytes, pos: int, end: int) -> int:
        mode = self._mode
        if self._escape:
            self._escape = False
            self._escaped(data[pos])
            return pos + 1
        match = _STRING_STOP.search(data, pos)
        stop = match.start() if match else end
        segment = data[pos:stop]
        if mode == "image":
            self._image += segment
        elif mode == "skip":
            self.skipped_chars += len(segment)
        else:
            self._skeleton += segment
            if mode == "key":
                self._key += segment
        if match is None:
            return end
        if data[stop] == 0x5C:  # '\\'
            self._escape = True
            if mode in ("keep", "key"):
                self._skeleton.append(0x5C)
            return stop + 1
        self._close_string()
        return stop + 1

    def _escaped(self, byte: int) -> None:
        if self._mode == "image":
            self._image += _B64_ESCAPES.get(byte, b"")
        elif self._mode == "skip":
            self.skipped_chars += 1
        else:
            self._skeleton.append(byte)
            if self._mode == "key":
                self._key += bytes((0x5C, byte))

    def _close_string(self) -> None:
        mode, self._mode = self._mode, None
        if mode == "key":
            self._skeleton.append(0x22)
            self._stack[-1].key = bytes(self._key)
        elif mode == "keep":
            self._skeleton.append(0x22)
        elif mode == "skip":
            self._skeleton += b"null"
        elif mode == "image":
            self.largest_image_b64 = max(self.largest_image_b64, len(self._image))
            try:  # clean base64 decodes straight from the buffer: no str copy of the image
                data = base64.b64decode(self._image, validate=True)
                if not data:
                    raise ValueError("empty")
            except (binascii.Error, ValueError):
                data, _ = decode_base64_image(self._image.decode("ascii", "replace"))
            self._image = bytearray()  # drop this image's base64 before the next one arrives
            self._skeleton += json.dumps(f"{PLACEHOLDER}{len(self.images)}").encode()
            self.images.append(data)

    def finish(self) -> Any:
        """The skeleton as JSON data; raises ``ValueError`` if the body was cut short or not JSON."""
        if self._mode is not None or self._stack:
            raise ValueError("the answer ended inside a JSON value")
        return json.loads(bytes(self._skeleton)) if self._skeleton else None


def merge_chunks(value: Any) -> Any:
    """One ``GenerateContentResponse`` from a streamed answer's chunks (a plain answer unchanged).

    An ``error`` object in any chunk is returned as it is, for the caller's error mapping.
    """
    if not isinstance(value, list):
        return value
    parts: list[dict[str, Any]] = []
    finish: str | None = None
    usage: Any = None
    feedback: Any = None
    extra: dict[str, Any] = {}
    for chunk in value:
        if not isinstance(chunk, Mapping):
            continue
        if chunk.get("error"):
            return dict(chunk)
        feedback = feedback or chunk.get("promptFeedback")
        usage = chunk.get("usageMetadata") or usage
        for key in ("modelVersion", "responseId"):
            if chunk.get(key):
                extra[key] = chunk[key]
        for candidate in chunk.get("candidates") or []:
            if not isinstance(candidate, Mapping):
                continue
            finish = candidate.get("finishReason") or finish
            content = candidate.get("content")
            for part in content.get("parts") or [] if isinstance(content, Mapping) else []:
                if isinstance(part, Mapping):
                    _append_part(parts, dict(part))
    merged: dict[str, Any] = dict(extra)
    if parts or finish:
        merged["candidates"] = [{"content": {"role": "model", "parts": parts}, "finishReason": finish or ""}]
    if feedback:
        merged["promptFeedback"] = feedback
    if usage:
        merged["usageMetadata"] = usage
    return merged


def _append_part(parts: list[dict[str, Any]], part: dict[str, Any]) -> None:
    """Text streams in fragments: adjacent text parts of one kind (thought or not) are one text."""
    previous = parts[-1] if parts else None
    if (
        previous is not None
        and set(part) <= {"text", "thought"}
        and set(previous) <= {"text", "thought"}
        and isinstance(part.get("text"), str)
        and isinstance(previous.get("text"), str)
        and bool(part.get("thought")) == bool(previous.get("thought"))
    ):
        previous["text"] += part["text"]
        return
    parts.append(part)


def read_answer(
    chunks: Iterable[bytes],
    *,
    request_id: str | None = None,
    seed: int | None = None,
    raise_error: Callable[[Any], None] | None = None,
) -> PredictionResult:
    """Images, commentary and usage of a Gemini answer (plain or streamed), read from its bytes.

    ``raise_error`` is given the skeleton of an answer carrying an ``error`` object (no signature
    or image data left in it) and raises the mapped error.

    :raises AIHubMixResponseError: the body is not JSON or ends mid-value.
    :raises AIHubMixRefusalError, AIHubMixTextOnlyError, AIHubMixError: as ``parse_answer``.
    """
    scanner = AnswerScanner()
    try:
        for chunk in chunks:
            scanner.feed(chunk)
        value = scanner.finish()
    except ValueError as exc:
        raise AIHubMixResponseError(
            f"The Gemini answer is not complete JSON ({exc})", request_id=request_id
        ) from None
    merged = merge_chunks(value)
    if isinstance(merged, Mapping) and merged.get("error") and raise_error is not None:
        raise_error(merged)
    images = scanner.images
    return parse_answer(merged, request_id=request_id, seed=seed, inline_images=images)


__all__ = ["PLACEHOLDER", "AnswerScanner", "merge_chunks", "read_answer"]
