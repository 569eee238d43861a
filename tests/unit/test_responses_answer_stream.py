"""The streamed reader (responses.answer_stream + PredictionAnswer) gives what the whole-body one did."""

from __future__ import annotations

import base64
import json
import os
import tempfile
from typing import Any

import httpx
import pytest

from airflow_provider_aihubmix.exceptions import (
    AIHubMixError,
    AIHubMixResponseError,
    AIHubMixUnreadableAnswerError,
)
from airflow_provider_aihubmix.http.retries import RetryPolicy, RetryState
from airflow_provider_aihubmix.http.sends import STREAMED_ANSWER_BYTES, PredictionAnswer, spool_answer
from airflow_provider_aihubmix.responses.answer_stream import (
    LONG_STRING_CHARS,
    StreamFallback,
    StreamScanner,
)
from airflow_provider_aihubmix.responses.image_data import inline_images
from airflow_provider_aihubmix.responses.shapes import PredictionResult, parse_prediction

# Large enough to be streamed (base64 past LONG_STRING_CHARS); PNG and JPEG signatures so sniffing
# and the last-resort scan see images.
IMG = b"\x89PNG\r\n\x1a\n" + os.urandom(200_000)
IMG2 = b"\xff\xd8\xff\xe0" + os.urandom(150_001)
B64 = base64.b64encode(IMG).decode()
B64_2 = base64.b64encode(IMG2).decode()
URLSAFE_UNPADDED = base64.urlsafe_b64encode(IMG2).decode().rstrip("=")
WRAPPED = "\n".join(B64[i : i + 76] for i in range(0, len(B64), 76))
USAGE = {"input_tokens": 12, "output_tokens": 4160, "total_tokens": 4172}

# Every inline-image shape of api-fidelity.md's answer table (and test_responses_shapes.py's).
SHAPES: dict[str, Any] = {
    "openai-predictions": {
        "output": {"b64_json": [{"bytesBase64": B64, "mimeType": "png"}], "urls": []},
        "usage": USAGE,
    },
    "output-list": {"output": [{"b64_json": B64}, {"b64_json": B64_2}]},
    "output-images": {
        "output": {"images": [B64, {"b64_json": B64_2}, {"url": "https://x/a.png"}], "created": 1}
    },
    "generations": {"created": 1, "data": [{"b64_json": B64, "revised_prompt": "a red cat"}], "usage": USAGE},
    "generations-bare": {"data": [B64, B64_2]},
    "data-uri": {"data": [{"b64_json": f"data:image/jpeg;base64,{B64_2}"}]},
    "wrapped-escaped": {"data": [{"b64_json": WRAPPED}]},  # "\n" escapes; every "/" sent as "\/"
    "urlsafe-unpadded": {"data": [{"b64_json": URLSAFE_UNPADDED}]},
    "gemini-candidates": {
        "candidates": [
            {"content": {"parts": [{"text": "here"}, {"inlineData": {"mimeType": "image/png", "data": B64}}]}}
        ]
    },
    "last-resort-scan": {"result": {"payload": {"blob": B64}, "note": "done"}},
    "seeds": {"data": [{"b64_json": B64}, {"b64_json": B64_2}], "seeds": [7, 8]},
    "long-text-kept": {"data": [{"b64_json": B64, "revised_prompt": "word " * (LONG_STRING_CHARS // 4)}]},
}


def _body(shape: str) -> bytes:
    text = json.dumps(SHAPES[shape])
    return (text.replace("/", "\\/") if shape == "wrapped-escaped" else text).encode()


def _streamed(body: bytes, chunk: int) -> PredictionResult:
    scanner = StreamScanner()
    for start in range(0, len(body), chunk):
        scanner.feed(body[start : start + chunk])
    data = json.loads(scanner.finish())
    with inline_images(scanner.images):
        return parse_prediction(data, request_id="r")


@pytest.mark.parametrize("chunk", [1 << 20, 4099, 3])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_streamed_reader_is_byte_identical(shape: str, chunk: int) -> None:
    if chunk == 3 and shape not in ("generations", "wrapped-escaped", "data-uri"):
        pytest.skip("3-byte chunks on three shapes are enough (slow in pure Python)")
    body = _body(shape)
    old = parse_prediction(json.loads(body), request_id="r")
    new = _streamed(body, chunk)
    assert new.model_dump() == old.model_dump()
    assert old.images and all(image.data in (IMG, IMG2) for image in old.images if image.url is None)


def test_images_are_replaced_by_short_stand_ins_in_the_skeleton() -> None:
    scanner = StreamScanner()
    scanner.feed(json.dumps(SHAPES["output-list"]).encode())
    skeleton = scanner.finish()
    assert len(skeleton) < 1000
    assert sorted(scanner.images.values(), key=len) == [IMG2, IMG]


@pytest.mark.parametrize(
    "bad",
    [
        B64[:-3] + "!" + B64[-2:],  # corrupted at the end
        B64[: LONG_STRING_CHARS + 5] + "@@" + B64[LONG_STRING_CHARS + 7 :],  # corrupted mid-stream
        B64[:-1] + "A=B",  # text after padding
        B64[: len(B64) - 3 - (len(B64) - 3) % 4 + 1],  # a lone trailing character (truncated)
    ],
)
def test_corrupted_base64_falls_back_and_raises_the_same_error(bad: str) -> None:
    body = json.dumps({"data": [{"b64_json": bad}]}).encode()
    with pytest.raises(AIHubMixResponseError) as old:
        parse_prediction(json.loads(body))
    with pytest.raises(StreamFallback):
        _streamed(body, 4099)
    with pytest.raises(type(old.value)) as new:
        _answer(body).parse()
    assert str(new.value) == str(old.value)


def test_truncated_body_falls_back_to_the_same_error() -> None:
    body = json.dumps(SHAPES["generations"]).encode()[: -len(B64) // 2]
    with pytest.raises(StreamFallback):
        _streamed(body, 4099)
    with pytest.raises(AIHubMixResponseError) as new:
        _answer(body).parse()
    with pytest.raises(type(new.value)) as old:
        _whole(body).parse()
    assert str(new.value) == str(old.value)


_REQUEST = httpx.Request("POST", "https://aihubmix.com/v1/images/generations")


def _call() -> RetryState:
    return RetryState(method="POST", url=str(_REQUEST.url), policy=RetryPolicy(), billable=True)


def _answer(body: bytes, headers: dict[str, str] | None = None) -> PredictionAnswer:
    """A spooled answer as the triggerer holds one, padded past STREAMED_ANSWER_BYTES."""
    spool = tempfile.SpooledTemporaryFile(max_size=1 << 16)  # noqa: SIM115 - the answer closes it
    spool.write(body)
    response = httpx.Response(200, headers={"X-Request-Id": "r", **(headers or {})}, request=_REQUEST)
    return PredictionAnswer(response, _call(), spool=spool)  # type: ignore[arg-type]


def _whole(body: bytes) -> PredictionAnswer:
    """The same answer held whole (the in-memory path small answers take)."""
    response = httpx.Response(200, headers={"X-Request-Id": "r"}, content=body, request=_REQUEST)
    return PredictionAnswer(response, _call(), body=body)


def _padded(shape: Any) -> bytes:
    body = json.dumps(shape).encode()
    return body[:-1] + b"," + json.dumps({"pad": "x" * STREAMED_ANSWER_BYTES})[1:].encode()


@pytest.mark.parametrize("shape", ["openai-predictions", "generations", "data-uri", "last-resort-scan"])
def test_spooled_answer_streamed_equals_the_whole_body_path(shape: str) -> None:
    body = _padded(SHAPES[shape])
    assert len(body) > STREAMED_ANSWER_BYTES
    assert _answer(body).parse().model_dump() == _whole(body).parse().model_dump()


def test_spooled_gzip_answer_is_decoded_before_scanning() -> None:
    import gzip

    body = _padded(SHAPES["generations"])
    result = _answer(gzip.compress(body), {"Content-Encoding": "gzip"}).parse()
    assert [image.data for image in result.images] == [IMG]


def test_unreadable_and_error_answers_come_from_the_whole_body() -> None:
    body = _padded({"nothing": "here", "blob": "z" * (LONG_STRING_CHARS + 10)})
    with pytest.raises(AIHubMixUnreadableAnswerError) as caught:
        _answer(body).parse()
    assert caught.value.body == json.loads(body)  # saved as sent, never a skeleton with stand-ins
    error = _padded({"error": {"message": "quota exceeded", "code": "insufficient_quota"}, "b": B64})
    with pytest.raises(AIHubMixError) as new:
        _answer(error).parse()
    with pytest.raises(type(new.value)) as old:
        _whole(error).parse()
    assert str(new.value) == str(old.value)


def test_worker_spools_a_streamed_answer_and_reads_it_the_same() -> None:
    body = _padded(SHAPES["output-images"])
    stream = httpx.ByteStream(body)
    response = httpx.Response(200, headers={"X-Request-Id": "r"}, stream=stream, request=_REQUEST)
    answer = spool_answer(response, _call())
    assert answer is not None and answer.size == len(body)
    assert answer.parse().model_dump() == _whole(body).parse().model_dump()
    read = httpx.Response(200, content=body, request=_REQUEST)
    assert spool_answer(read, _call()) is None  # already in memory: the caller parses it whole
