"""The Gemini answer scanner: plain and streamed answers, one image's base64 at a time, no signature."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest
from PIL import Image

from airflow_provider_aihubmix.exceptions import (
    AIHubMixRefusalError,
    AIHubMixResponseError,
    AIHubMixTextOnlyError,
)
from airflow_provider_aihubmix.responses.gemini import parse_answer
from airflow_provider_aihubmix.responses.gemini_stream import AnswerScanner, merge_chunks, read_answer

MARKER = "SIGNATUREMARKERxyz"


def _png(colour: str) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), colour).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _image_part(b64: str, signature: str | None = None) -> dict[str, Any]:
    part: dict[str, Any] = {"inlineData": {"mimeType": "image/png", "data": b64}}
    if signature is not None:
        part["thoughtSignature"] = signature
    return part


def _streamed(signature: str) -> list[dict[str, Any]]:
    return [
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "Thinking", "thought": True}]}}]},
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "Here is "}]}}]},
        {"candidates": [{"content": {"role": "model", "parts": [{"text": 'your "poster"'}]}}]},
        {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [_image_part(_png("red"), signature)]},
                    "finishReason": "STOP",
                }
            ],
            "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 1120, "totalTokenCount": 1127},
        },
    ]


def _feed(raw: bytes, size: int) -> tuple[AnswerScanner, Any]:
    scanner = AnswerScanner()
    for start in range(0, len(raw), size):
        scanner.feed(raw[start : start + size])
    return scanner, scanner.finish()


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 100_000])
def test_every_chunking_reads_the_same_answer(size: int) -> None:
    body = _streamed(MARKER + "A" * 500)
    raw = json.dumps(body).encode()
    scanner, skeleton = _feed(raw, size)
    assert len(scanner.images) == 1 and scanner.images[0].startswith(b"\x89PNG")
    assert MARKER not in json.dumps(skeleton)
    assert scanner.skipped_chars == len(MARKER) + 500
    result = parse_answer(merge_chunks(skeleton), inline_images=scanner.images)
    assert [i.data for i in result.images] == scanner.images
    assert result.images[0].commentary == 'Here is your "poster"'
    assert result.usage == body[-1]["usageMetadata"]


def test_a_multi_megabyte_signature_is_skipped_and_only_one_image_is_held() -> None:
    signature = MARKER + "Q" * 3_000_000
    images = [_png(c) for c in ("red", "green", "blue")]
    body = [{"candidates": [{"content": {"parts": [_image_part(b64, signature)]}}]} for b64 in images]
    raw = json.dumps(body).encode()
    scanner = AnswerScanner()
    for start in range(0, len(raw), 65_536):
        scanner.feed(raw[start : start + 65_536])
    result = parse_answer(merge_chunks(scanner.finish()), inline_images=scanner.images)
    assert [base64.b64encode(i.data).decode() for i in result.images] == images
    assert scanner.largest_image_b64 == max(len(b) for b in images)
    assert scanner.skipped_chars == 3 * len(signature)


def test_a_plain_answer_and_escaped_base64() -> None:
    b64 = _png("white")
    raw = json.dumps({"candidates": [{"content": {"parts": [_image_part(b64, MARKER)]}}]}).encode()
    raw = raw.replace(b"/", b"\\/")  # JSON may escape every slash
    result = read_answer([raw])
    assert base64.b64encode(result.images[0].data).decode() == b64


def test_refusals_and_text_only_answers_read_as_the_plain_ones() -> None:
    blocked = [{"promptFeedback": {"blockReason": "SAFETY"}}]
    with pytest.raises(AIHubMixRefusalError, match="SAFETY"):
        read_answer([json.dumps(blocked).encode()])
    text_only = [
        {"candidates": [{"content": {"parts": [{"text": "No "}]}}]},
        {"candidates": [{"content": {"parts": [{"text": "image today"}]}, "finishReason": "STOP"}]},
    ]
    with pytest.raises(AIHubMixTextOnlyError, match="No image today"):
        read_answer([json.dumps(text_only).encode()])


def test_an_error_body_goes_to_the_error_mapping_without_its_signature() -> None:
    seen: list[Any] = []

    def raise_error(skeleton: Any) -> None:
        seen.append(skeleton)
        raise RuntimeError("mapped")

    body = [{"error": {"code": 429, "message": "slow down", "thoughtSignature": MARKER}}]
    with pytest.raises(RuntimeError, match="mapped"):
        read_answer([json.dumps(body).encode()], raise_error=raise_error)
    assert seen == [{"error": {"code": 429, "message": "slow down", "thoughtSignature": None}}]


@pytest.mark.parametrize("raw", [b"[{", b'{"candidates": [', b"not json", b'{"a": "unterminated'])
def test_a_cut_or_foreign_body_is_a_response_error(raw: bytes) -> None:
    with pytest.raises(AIHubMixResponseError):
        read_answer([raw])
