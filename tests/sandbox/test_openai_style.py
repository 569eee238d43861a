"""``/v1/images/generations`` and ``/v1/images/edits`` (multipart); the Gemini route is in test_gemini.py."""

from __future__ import annotations

import base64

import httpx

from airflow_provider_aihubmix.sandbox import SandboxServer
from tests.sandbox.helpers import b64_image, error_of, open_image


def test_generations_b64(api: httpx.Client) -> None:
    response = api.post(
        "/v1/images/generations",
        json={"model": "FLUX.1-Kontext-pro", "prompt": "a cat", "safety_tolerance": 6},
    )
    assert response.status_code == 200
    body = response.json()
    assert {"created", "data", "usage"} <= set(body)
    (item,) = body["data"]
    assert item["revised_prompt"] == "a cat"
    image = b64_image(item["b64_json"])
    assert image.format == "PNG" and image.size == (1024, 1024)


def test_generations_url_and_n(api: httpx.Client, anon: httpx.Client) -> None:
    body = api.post(
        "/v1/images/generations",
        json={
            "model": "FLUX.1-Kontext-pro",
            "prompt": "x",
            "response_format": "url",
            "n": 2,
            "size": "512x256",
        },
    ).json()
    assert len(body["data"]) == 2
    assert all("b64_json" not in item for item in body["data"])
    assert open_image(anon.get(body["data"][1]["url"]).content).size == (512, 256)


def test_generations_checks(api: httpx.Client) -> None:
    assert error_of(api.post("/v1/images/generations", json={"prompt": "x"}))["code"] == "model_missing"
    assert error_of(api.post("/v1/images/generations", json={"model": "m"}))["code"] == "prompt_missing"
    response = api.post("/v1/images/generations", json={"model": "m", "prompt": "x", "n": 20})
    assert error_of(response)["code"] == "n_not_within_range"


def test_edits_multipart(sandbox: SandboxServer, api: httpx.Client) -> None:
    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    )
    files = [("image[]", ("a.png", png, "image/png")), ("image[]", ("b.png", png, "image/png"))]
    response = api.post(
        "/v1/images/edits", data={"model": "gpt-image-1", "prompt": "blue", "size": "256x256"}, files=files
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert b64_image(body["data"][0]["b64_json"]).size == (256, 256)
    (record,) = sandbox.client.requests(path="/v1/images/edits")
    assert record["billed"] is True
    assert record["form"]["prompt"] == "blue"
    assert [f["filename"] for f in record["form"]["image[]"]] == ["a.png", "b.png"]


def test_edits_without_image(api: httpx.Client) -> None:
    response = api.post(
        "/v1/images/edits", data={"model": "gpt-image-1", "prompt": "blue"}, files={"x": ("", b"")}
    )
    assert response.status_code == 400
    assert error_of(response)["code"] == "image_missing"
