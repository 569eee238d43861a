"""Any prediction answer read as it arrives: each large base64 image decoded in chunks, never whole.

An OpenAI-style answer (``{"data":[{"b64_json": "..."}]}``, ``output.b64_json[].bytesBase64``,
``output.images[]``, ...) carries each image as one JSON string of base64 text, 1.33x the image.
``json.loads`` holds the whole body, then the string, then the decoded bytes: about 4x the image
at the peak (benchmark 3). :class:`StreamScanner` reads the body chunk by chunk instead and keeps a
*skeleton*: every value as sent, except a string that grows past :data:`LONG_STRING_CHARS` and
whose head looks like an image (``data:image/...;base64,`` or base64 of a known image signature,
as :func:`~airflow_provider_aihubmix.responses.answer_scan.looks_like_image_b64` judges). Such a
string is decoded 4 characters at a time as its chunks stream by (whitespace, JSON ``\\/`` and
line-break escapes dropped, url-safe alphabet folded, padding only at the end -- the rules of
:func:`~airflow_provider_aihubmix.responses.image_data.decode_base64_image`), and the skeleton holds
a short *stand-in*: the base64 of the image's first 48 bytes (so sniffing reads the same head),
a marker and an index, behind the original ``data:`` header if it had one.

The skeleton is then read by the one tolerant reader
(:func:`~airflow_provider_aihubmix.responses.shapes.parse_prediction`, every shape and the
last-resort scan) inside :func:`~airflow_provider_aihubmix.responses.image_data.inline_images`,
where ``decode_base64_image`` returns a stand-in's decoded bytes: the same images as the whole-body
path. Any text the chunked decoder refuses (not base64, cut short, a stray escape) makes
:meth:`StreamScanner.feed` raise :class:`StreamFallback`; the caller then reads the body the old
way, so a corrupted or truncated image is refused with the same error as before.

Peak memory: the decoded images (1x) plus one read chunk and the skeleton.

Why not ijson (yajl2_c): it yields each string value whole, so a base64 image is held as text
(1.33x) while yajl's buffer grows -- 2.66x the image measured (``benchmarks/bench_memory.py``,
BENCHMARKS.md 3), against the 1.5x this reader exists for; no well-kept parser streams inside one
JSON string.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
import uuid

from airflow_provider_aihubmix.responses import json_frames
from airflow_provider_aihubmix.responses.answer_scan import looks_like_image_b64

#: A string longer than this (in JSON characters) is judged by its head and, if an image, streamed.
LONG_STRING_CHARS = 64 * 1024
#: Marker inside a stand-in (base64 alphabet, so the stand-in still reads as a bare base64 blob).
STAND_IN_MARK = "AIHUBMIXINLINE"
_STRING_STOP = re.compile(rb'["\\]')
_WHITESPACE = frozenset(b" \t\r\n")
_B64_BODY = re.compile(rb"[A-Za-z0-9+/]*")
_B64_DROP = re.compile(rb"[ \t\r\n]+")
_URLSAFE = bytes.maketrans(b"-_", b"+/")
# Escapes that may appear inside a base64 string: "\/" is "/", line breaks are noise.
_B64_ESCAPES = {ord("/"): b"/", ord("n"): b"", ord("r"): b"", ord("t"): b""}


class StreamFallback(Exception):
    """The answer cannot be read in chunks (not JSON, or an image string the chunked decoder
    refuses): read the whole body the old way, which raises the error the user should see."""


class _Base64Sink:
    """Decodes base64 text fed in pieces into a growing buffer; raises :class:`StreamFallback`."""

    def __init__(self) -> None:
        self._pending = bytearray()
        self._out = io.BytesIO()
        self._padding = 0

    def feed(self, text: bytes) -> None:
        text = _B64_DROP.sub(b"", text).translate(_URLSAFE)
        if not text:
            return
        if self._padding:
            if text.strip(b"="):
                raise StreamFallback("base64 text after padding")
            self._padding += len(text)
            return
        body = text.rstrip(b"=")
        self._padding = len(text) - len(body)
        if not _B64_BODY.fullmatch(body):
            raise StreamFallback("not base64")
        self._pending += body
        whole = len(self._pending) - len(self._pending) % 4
        if whole >= 4096 or self._padding:
            self._out.write(binascii.a2b_base64(bytes(self._pending[:whole])))
            del self._pending[:whole]

    def finish(self) -> bytes:
        whole = len(self._pending) - len(self._pending) % 4
        try:
            self._out.write(binascii.a2b_base64(bytes(self._pending[:whole])))
            rest = bytes(self._pending[whole:])
            if rest:
                self._out.write(base64.b64decode(rest + b"=" * (-len(rest) % 4), validate=True))
        except (binascii.Error, ValueError) as exc:
            raise StreamFallback(f"base64 ends badly ({exc})") from None
        data = self._out.getvalue()
        if not data:
            raise StreamFallback("empty image")
        return data


class StreamScanner:
    """Feed the answer's bytes with :meth:`feed`; :meth:`finish` returns the skeleton bytes.

    ``images`` maps each stand-in (the text after any ``data:`` header) to its decoded bytes.
    """

    def __init__(self) -> None:
        self._skeleton = bytearray()
        self._stack: list[json_frames.JsonFrame] = []
        self._mode: str | None = None  # inside a string: "key", "keep" or "image"
        self._escape = False
        self._start = 0  # where the current string's text starts in the skeleton
        self._sink: _Base64Sink | None = None
        self._prefix = b""
        self._token = uuid.uuid4().hex
        self.images: dict[str, bytes] = {}

    def feed(self, data: bytes) -> None:
        """Read the next piece of the body. :raises StreamFallback: see the module docstring."""
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
                top = self._stack[-1] if self._stack else None
                self._mode = "key" if top is not None and top.is_object and top.expecting_key else "keep"
                self._skeleton.append(0x22)
                self._start = len(self._skeleton)
                continue
            self._structure(byte)
            self._skeleton.append(byte)

    def _structure(self, byte: int) -> None:
        try:
            json_frames.step(self._stack, byte)
        except ValueError as exc:
            raise StreamFallback(str(exc)) from None

    def _in_string(self, data: bytes, pos: int, end: int) -> int:
        if self._escape:
            self._escape = False
            if self._sink is not None:
                if data[pos] not in _B64_ESCAPES:
                    raise StreamFallback("an escape inside base64")
                self._sink.feed(_B64_ESCAPES[data[pos]])
            else:
                self._skeleton.append(data[pos])
            return pos + 1
        match = _STRING_STOP.search(data, pos)
        stop = match.start() if match else end
        if self._sink is not None:
            self._sink.feed(data[pos:stop])
        else:
            self._skeleton += data[pos:stop]
            if self._mode == "keep" and len(self._skeleton) - self._start > LONG_STRING_CHARS:
                self._judge()
        if match is None:
            return end
        if data[stop] == 0x5C:  # '\\'
            self._escape = True
            if self._sink is None:
                self._skeleton.append(0x5C)
            return stop + 1
        self._close_string()
        return stop + 1

    def _judge(self) -> None:
        """A long string: stream it into a decoder if its head is an image's, else keep it."""
        self._mode = "long"  # judged once, whatever the verdict
        raw = bytes(self._skeleton[self._start :])
        try:
            text = json.loads(b'"' + raw + b'"')
        except ValueError:
            return  # ends mid-escape: kept as text (rare; base64 seldom carries escapes)
        if not isinstance(text, str) or not looks_like_image_b64(text):
            return
        prefix = ""
        body = text
        if text.startswith("data:"):
            header, sep, body = text.partition(",")
            if not sep or ";base64" not in header:
                return
            prefix = header + sep
        del self._skeleton[self._start :]
        self._prefix = prefix.encode()
        self._sink = _Base64Sink()
        self._sink.feed(body.encode("ascii", "replace"))

    def _close_string(self) -> None:
        mode, self._mode = self._mode, None
        if mode == "key":
            self._stack[-1].expecting_key = False
        if self._sink is not None:
            data = self._sink.finish()
            self._sink = None
            head = base64.b64encode(data[:48]).decode("ascii")
            stand_in = f"{head}{STAND_IN_MARK}{self._token}{len(self.images):08d}"
            stand_in += "A" * max(0, 104 - len(stand_in))
            self.images[stand_in] = data
            self._skeleton += self._prefix + stand_in.encode("ascii")
        self._skeleton.append(0x22)

    def finish(self) -> bytes:
        """The skeleton: JSON text. :raises StreamFallback: the body ended inside a value."""
        if self._mode is not None or self._stack:
            raise StreamFallback("the answer ended inside a JSON value")
        return bytes(self._skeleton)


__all__ = ["LONG_STRING_CHARS", "STAND_IN_MARK", "StreamFallback", "StreamScanner"]
