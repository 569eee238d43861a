"""The sandbox's Gemini route, checked against Google's published API description over HTTP."""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
import pytest
from PIL import Image

from airflow_provider_aihubmix.sandbox import SandboxServer
from tests.sandbox.helpers import KEY, b64_image

FLASH, PRO, FLASH_3 = "gemini-2.5-flash-image", "gemini-3-pro-image-preview", "gemini-3.1-flash-image-preview"


def _png_b64(size: tuple[int, int] = (16, 16)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def body(prompt: str = "a banana", *images: str, **config: Any) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"text": prompt}]
    parts += [{"inlineData": {"mimeType": "image/png", "data": data}} for data in images]
    payload: dict[str, Any] = {"contents": [{"role": "user", "parts": parts}]}
    if config:
        payload["generationConfig"] = config
    return payload


@pytest.fixture
def gem(sandbox: SandboxServer) -> Any:
    sandbox.client.configure(api_key=KEY)

    def post(model: str, payload: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
        url = f"{sandbox.base_url}/gemini/v1beta/models/{model}:generateContent"
        return httpx.post(url, json=payload, headers={"x-goog-api-key": KEY} if headers is None else headers)

    return post


def google_error(response: httpx.Response, code: int, status: str) -> str:
    assert response.status_code == code
    error = response.json()["error"]
    assert set(error) == {"code", "message", "status"} and (error["code"], error["status"]) == (code, status)
    return str(error["message"])


@pytest.mark.parametrize(
    ("model", "config", "size"),
    [
        (FLASH, {"imageConfig": {"aspectRatio": "16:9"}}, (1024, 576)),
        (PRO, {"imageConfig": {"aspectRatio": "3:4", "imageSize": "2K"}}, (768, 1024)),  # max_side 1024
        (FLASH_3, {"imageConfig": {"aspectRatio": "1:4", "imageSize": "512"}}, (128, 512)),
    ],
)
def test_each_model_answers_an_image_commentary_and_usage(
    gem: Any, sandbox: SandboxServer, model: str, config: dict, size: tuple[int, int]
) -> None:
    response = gem(model, body("a banana", **config))
    assert response.status_code == 200 and response.headers["x-request-id"]
    (candidate,) = response.json()["candidates"]
    assert candidate["finishReason"] == "STOP"
    text, image = candidate["content"]["parts"]
    assert text["text"] and image["inlineData"]["mimeType"] == "image/png"
    assert b64_image(image["inlineData"]["data"]).size == size
    usage = response.json()["usageMetadata"]
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]
    assert {d["modality"] for d in usage["candidatesTokensDetails"]} == {"TEXT", "IMAGE"}
    assert sandbox.client.billed_count("gemini") == 1


def test_image_only_modality_and_seeded_determinism(gem: Any) -> None:
    first = gem(PRO, body("a pear", responseModalities=["IMAGE"], seed=4)).json()
    again = gem(PRO, body("a pear", responseModalities=["IMAGE"], seed=4)).json()
    other = gem(PRO, body("a pear", responseModalities=["IMAGE"], seed=5)).json()
    (part,) = first["candidates"][0]["content"]["parts"]
    assert part == again["candidates"][0]["content"]["parts"][0]
    assert part != other["candidates"][0]["content"]["parts"][0]
    # Without a seed the model varies call by call, like the real one.
    unseeded = [gem(PRO, body("a pear")).json()["candidates"][0]["content"]["parts"][1] for _ in range(2)]
    assert unseeded[0] != unseeded[1]


def test_key_only_from_x_goog_api_key_or_key_query(gem: Any, sandbox: SandboxServer) -> None:
    google_error(gem(FLASH, body(), headers={}), 401, "UNAUTHENTICATED")
    bearer_only = gem(FLASH, body(), headers={"Authorization": f"Bearer {KEY}"})
    assert "x-goog-api-key" in google_error(bearer_only, 401, "UNAUTHENTICATED")
    google_error(gem(FLASH, body(), headers={"x-goog-api-key": "sk-wrong"}), 401, "UNAUTHENTICATED")
    url = f"{sandbox.base_url}/gemini/v1beta/models/{FLASH}:generateContent?key={KEY}"
    assert httpx.post(url, json=body()).status_code == 200  # Google's query form works ...
    assert sandbox.client.requests(path="gemini")[-1]["query"] == f"key={KEY}"  # ... and is logged


@pytest.mark.parametrize(
    ("model", "payload", "fragment"),
    [
        (FLASH, {"contents": []}, "contents is not specified"),
        (FLASH, {**body(), "generation_config": {}}, 'Unknown name "generation_config"'),
        (FLASH, body(aspect_ratio="1:1"), "Unknown name \"aspect_ratio\" at 'generation_config'"),
        (FLASH, body(imageConfig={"size": "1K"}), 'Unknown name "size"'),
        (FLASH, body(imageConfig={"aspectRatio": "8:1"}), "Unsupported aspect ratio '8:1'"),
        (PRO, body(imageConfig={"aspectRatio": "1:8"}), "Unsupported aspect ratio '1:8'"),
        (FLASH, body(imageConfig={"imageSize": "2K"}), "supported: none"),
        (PRO, body(imageConfig={"imageSize": "512"}), "Unsupported image size '512'"),
        (PRO, body(imageConfig={"imageSize": "2k"}), "Unsupported image size '2k'"),  # capital K only
        (FLASH, body("p", *[_png_b64()] * 4), "at most 3 input images"),
        (
            FLASH,
            body("p", base64.b64encode(b"not an image at all").decode()),
            "Unable to process input image",
        ),
        (FLASH, body("p", "%%%"), "inline_data.data"),
        (FLASH, body(responseModalities=["AUDIO"]), "supported values are TEXT and IMAGE"),
        (FLASH, body(seed="7"), "TYPE_INT32"),
        (FLASH, body(temperature=3), "temperature"),
        (
            FLASH,
            {"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": _png_b64()}}]}]},
            "no text",
        ),
    ],
)
def test_invalid_requests_get_googles_400(
    gem: Any, sandbox: SandboxServer, model: str, payload: dict, fragment: str
) -> None:
    assert fragment in google_error(gem(model, payload), 400, "INVALID_ARGUMENT")
    assert sandbox.client.billed_count("gemini") == 0


def test_reference_images_are_accepted_up_to_the_model_limit(gem: Any) -> None:
    assert gem(PRO, body("combine", *[_png_b64()] * 14)).status_code == 200
    assert gem(FLASH, body("combine", *[_png_b64()] * 3)).status_code == 200
    assert "at most 14" in google_error(gem(PRO, body("p", *[_png_b64()] * 15)), 400, "INVALID_ARGUMENT")


def test_unknown_and_text_models(gem: Any) -> None:
    assert gem("gemini-9-ultra-image", body()).status_code == 200  # a new image model passes
    assert "not found" in google_error(gem("gemini-2.5-flash", body()), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("token", "check"),
    [
        (
            "sandbox:block=SAFETY",
            lambda b: b["promptFeedback"]["blockReason"] == "SAFETY" and "candidates" not in b,
        ),
        (
            "sandbox:block=PROHIBITED_CONTENT",
            lambda b: b["promptFeedback"]["blockReason"] == "PROHIBITED_CONTENT",
        ),
        (
            "sandbox:finish=IMAGE_SAFETY",
            lambda b: b["candidates"][0] == {"finishReason": "IMAGE_SAFETY", "index": 0},
        ),
        (
            "sandbox:finish=PROHIBITED_CONTENT",
            lambda b: b["candidates"][0]["finishReason"] == "PROHIBITED_CONTENT",
        ),
        ("sandbox:finish=NO_IMAGE", lambda b: b["candidates"][0]["content"]["parts"][0]["text"]),
        (
            "sandbox:text-only",
            lambda b: (
                b["candidates"][0]["finishReason"] == "STOP"
                and all("inlineData" not in p for p in b["candidates"][0]["content"]["parts"])
            ),
        ),
    ],
)
def test_refusal_shapes_come_with_http_200(gem: Any, token: str, check: Any) -> None:
    response = gem(FLASH, body(f"a poster {token}"))
    assert response.status_code == 200
    payload = response.json()
    assert check(payload), payload
    assert payload["usageMetadata"]["promptTokenCount"] > 0
