"""Issue 28 in the sandbox: gpt-image-2, Seedream 5.0 lite, new models of known providers, the
model lists, the streamed Gemini answer with its thoughtSignature, and the balance."""

from __future__ import annotations

import httpx
import pytest

from airflow_provider_aihubmix.sandbox import SandboxServer
from tests.sandbox.helpers import KEY, b64_image, predict


def test_gpt_image_2_answers_base64_and_image_token_usage(api: httpx.Client) -> None:
    body = predict(api, "openai/gpt-image-2", prompt="a poster", size="1024x1024", quality="high").json()
    assert body["output"]["urls"] == []
    item = body["output"]["b64_json"][0]
    assert b64_image(item["bytesBase64"]).size == (1024, 1024)
    assert body["usage"]["output_tokens_details"]["image_tokens"] == body["usage"]["output_tokens"]


def test_seedream_5_lite_answers_signed_urls_and_refuses_1k(api: httpx.Client) -> None:
    body = predict(
        api, "doubao/doubao-seedream-5.0-lite", prompt="a poster", size="3K", tools=[{"type": "web_search"}]
    ).json()
    assert body["output"][0]["url"].count("Signature=") == 1
    response = predict(api, "doubao/doubao-seedream-5.0-lite", prompt="a poster", size="1K")
    assert response.status_code == 400


def test_a_new_model_of_a_known_provider_answers_in_its_family_shape(api: httpx.Client) -> None:
    body = predict(api, "openai/gpt-image-3", prompt="a poster").json()
    assert "bytesBase64" in body["output"]["b64_json"][0]


def test_model_lists_serve_what_the_catalog_lacks(api: httpx.Client, sandbox: SandboxServer) -> None:
    ids = {item["id"] for item in api.get("/v1/models").json()["data"]}
    assert {"gpt-image-2", "doubao-seedream-5.0-lite", "wan2.7-image-pro", "gpt-4o-mini"} <= ids
    public = httpx.get(f"{sandbox.base_url}/api/v1/models", params={"type": "image_generation"}).json()
    assert public["success"] is True
    assert {item["types"] for item in public["data"]} == {"image_generation"}
    sandbox.client.configure(extra_models=["acme/brand-new-image"])
    ids = {item["id"] for item in api.get("/v1/models").json()["data"]}
    assert "brand-new-image" in ids and "wan2.7-image-pro" not in ids


def _gemini(sandbox: SandboxServer, model: str, method: str) -> httpx.Response:
    return httpx.post(
        f"{sandbox.base_url}/gemini/v1beta/models/{model}:{method}",
        headers={"x-goog-api-key": KEY},
        json={"contents": [{"role": "user", "parts": [{"text": "a cat"}]}]},
        timeout=30,
    )


def test_streamed_gemini_answer_is_an_array_with_a_signature_beside_the_image(sandbox: SandboxServer) -> None:
    sandbox.client.configure(thought_signature_chars=2_000_000, thought_signature_marker="MarkerXYZ")
    chunks = _gemini(sandbox, "gemini-3-pro-image-preview", "streamGenerateContent").json()
    assert isinstance(chunks, list) and len(chunks) >= 2
    image_parts = [
        part
        for chunk in chunks
        for part in chunk["candidates"][0]["content"]["parts"]
        if "inlineData" in part
    ]
    assert len(image_parts) == 1
    assert len(image_parts[0]["thoughtSignature"]) == 2_000_000
    assert image_parts[0]["thoughtSignature"].startswith("MarkerXYZ")
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP" and chunks[-1]["usageMetadata"]
    plain = _gemini(sandbox, "gemini-2.5-flash-image", "generateContent").json()
    assert all("thoughtSignature" not in p for p in plain["candidates"][0]["content"]["parts"])


@pytest.mark.parametrize("path", ["/dashboard/billing/remain", "/v1/dashboard/billing/remain"])
def test_remain_reports_the_remaining_balance_as_public_clients_read_it(
    sandbox: SandboxServer, api: httpx.Client, path: str
) -> None:
    sandbox.client.configure(balance_usd=10.0)
    assert api.get(path).json()["total_usage"] == 10.0
    predict(api, "google/imagen-4.0-generate-001", prompt="x", numberOfImages=1)
    assert api.get(path).json()["total_usage"] == pytest.approx(9.96)
