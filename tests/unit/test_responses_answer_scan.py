"""The last-resort reading of an answer: images, task ids and safety verdicts wherever they are."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from airflow_provider_aihubmix.catalog.models import CATALOG
from airflow_provider_aihubmix.exceptions import AIHubMixModerationError, AIHubMixUnreadableAnswerError
from airflow_provider_aihubmix.pricing.cost import estimate_request
from airflow_provider_aihubmix.responses.answer_scan import looks_like_image_b64, safety_verdicts, scan
from airflow_provider_aihubmix.responses.shapes import parse_prediction


def _png_b64() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


PNG = _png_b64()


def test_links_that_are_not_images_are_not_taken_for_images() -> None:
    body = {
        "polling_url": "https://api.bfl.ai/v1/get_result?id=1",
        "docs": "https://docs.example/terms.png",
        "webhook_url": "https://hooks.example/x",
        "detail": {"help": "https://help.example/why"},
    }
    assert scan(body).urls == []


def test_images_under_unfamiliar_keys_are_found() -> None:
    body = {"payload": {"artifacts": [{"signedLink": "https://cdn.example/a?sig=1"}, {"blob": PNG}]}}
    found = scan(body)
    assert found.urls == ["https://cdn.example/a?sig=1"] and found.inline == [PNG]
    assert "payload.artifacts[0].signedLink" in found.paths


def test_base64_counts_only_when_it_decodes_to_an_image_signature() -> None:
    assert looks_like_image_b64(PNG)
    assert looks_like_image_b64("data:image/png;base64," + PNG)
    assert not looks_like_image_b64(base64.b64encode(b"just some text " * 20).decode())


@pytest.mark.parametrize(
    ("body", "verdict"),
    [
        ({"data": [{"url": None, "is_image_safe": False}]}, "is_image_safe: false"),
        ({"predictions": [{"raiFilteredReason": "filtered"}]}, "raiFilteredReason"),
        ({"candidates": [{"finishReason": "IMAGE_SAFETY"}]}, "finishReason: IMAGE_SAFETY"),
        ({"promptFeedback": {"blockReason": "SAFETY"}}, "blockReason: SAFETY"),
        ({"id": "t", "status": "Request Moderated"}, "status: Request Moderated"),
        ({"nsfw_content_detected": [False, True]}, "nsfw_content_detected: true"),
        (
            {"data": [{"error": {"code": "OutputImageSensitiveContentDetected"}}]},
            "code: OutputImageSensitive",
        ),
    ],
)
def test_safety_verdicts_are_found_and_reported_as_refusals(body: dict, verdict: str) -> None:
    assert any(found.startswith(verdict) for found in safety_verdicts(body))
    with pytest.raises(AIHubMixModerationError, match="safety refusal"):
        parse_prediction(body)


def test_a_verdict_beside_delivered_images_is_kept_as_withheld() -> None:
    body = {
        "data": [
            {"url": "https://cdn.example/1.png"},
            {"error": {"code": "OutputImageSensitiveContentDetected"}},
        ]
    }
    result = parse_prediction(body)
    assert [image.url for image in result.images] == ["https://cdn.example/1.png"]
    assert result.withheld == ["code: OutputImageSensitiveContentDetected"]


def test_task_ids_wherever_they_are() -> None:
    assert parse_prediction({"id": "abc", "status": "Pending"}).task.task_id == "abc"  # type: ignore[union-attr]
    assert parse_prediction({"data": {"job": {"taskID": "t-9"}}}).task.task_id == "t-9"  # type: ignore[union-attr]
    # An id beside a finished status is not a task to wait for.
    with pytest.raises(AIHubMixUnreadableAnswerError):
        parse_prediction({"id": "chatcmpl-1", "status": "completed"})


def test_non_http_image_urls_are_kept_so_the_download_guard_names_them() -> None:
    result = parse_prediction({"output": [{"url": "file:///etc/passwd"}]})
    assert [image.url for image in result.images] == ["file:///etc/passwd"]


def test_an_unreadable_answer_carries_its_body_for_saving() -> None:
    with pytest.raises(AIHubMixUnreadableAnswerError) as info:
        parse_prediction({"created": 1, "data": []}, request_id="req-1")
    assert info.value.body == {"created": 1, "data": []} and info.value.request_id == "req-1"


def test_imagen_without_a_count_is_estimated_at_the_upstream_default_of_four() -> None:
    spec = CATALOG["google/imagen-4.0-generate-001"]
    assert spec.default_n == 4
    assert estimate_request(spec, {"prompt": "p"}).images == 4
    assert estimate_request(spec, {"prompt": "p", "sampleCount": 1, "numberOfImages": 1}).images == 1
