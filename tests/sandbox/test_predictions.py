"""Predictions: each family's documented answer shape, the API's input checks, sizes, formats, seeds."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from airflow_provider_aihubmix.sandbox import SandboxServer
from tests.sandbox.helpers import b64_image, error_of, open_image, predict


def _download(anon: httpx.Client, url: str) -> Any:
    response = anon.get(url)
    assert response.status_code == 200, response.text
    return open_image(response.content)


def test_openai_shape_and_default_jpeg(api: httpx.Client) -> None:
    body = predict(api, "openai/gpt-image-1.5", prompt="a deer", size="1024x1024", n=2, quality="high").json()
    assert set(body) == {"output", "usage"}
    assert body["output"]["urls"] == []
    items = body["output"]["b64_json"]
    assert len(items) == 2
    assert all(item["mimeType"] == "jpeg" for item in items)
    image = b64_image(items[0]["bytesBase64"])
    assert image.format == "JPEG" and image.size == (1024, 1024)
    usage = body["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert usage["output_tokens"] == 2 * 4160  # two high-quality 1024x1024 images


@pytest.mark.parametrize(("fmt", "pil"), [("png", "PNG"), ("webp", "WEBP"), ("jpeg", "JPEG")])
def test_openai_output_format(api: httpx.Client, fmt: str, pil: str) -> None:
    body = predict(api, "openai/gpt-image-1-mini", prompt="x", output_format=fmt, size="1536x1024").json()
    item = body["output"]["b64_json"][0]
    assert item["mimeType"] == fmt
    image = b64_image(item["bytesBase64"])
    assert image.format == pil
    assert image.size == (1024, 683)  # 1536x1024 scaled to max_side 1024, aspect kept


def test_inline_images_padded_to_a_size_for_benchmarks(api: httpx.Client, sandbox: SandboxServer) -> None:
    sandbox.client.configure(inline_image_bytes=786432)
    body = predict(api, "openai/gpt-image-1-mini", prompt="x", output_format="png").json()
    data = body["output"]["b64_json"][0]["bytesBase64"]
    assert len(base64.b64decode(data)) == 786432 and len(data) == 1048576
    assert b64_image(data).format == "PNG"  # still a valid image
    jpeg = predict(api, "openai/gpt-image-1-mini", prompt="x", output_format="jpeg").json()
    assert len(jpeg["output"]["b64_json"][0]["bytesBase64"]) < 100_000  # PNG only


def test_seedream_url_and_base64(api: httpx.Client, anon: httpx.Client) -> None:
    body = predict(api, "doubao/doubao-seedream-4-0", prompt="x", size="2K", response_format="url").json()
    assert isinstance(body["output"], list) and len(body["output"]) == 1
    image = _download(anon, body["output"][0]["url"])
    assert image.size == (1024, 1024) and image.format == "PNG"
    body = predict(api, "doubao/doubao-seedream-4-0", prompt="x", response_format="base64_json").json()
    assert "url" not in body["output"][0]
    assert b64_image(body["output"][0]["b64_json"]).format == "PNG"


def test_seedream_sequential_generation_counts(api: httpx.Client) -> None:
    model = "doubao/doubao-seedream-4-0"
    one = predict(api, model, prompt="x", sequential_image_generation="auto").json()
    assert len(one["output"]) == 1
    four = predict(
        api,
        model,
        prompt="x",
        sequential_image_generation="auto",
        sequential_image_generation_options={"max_images": 4},
    ).json()
    assert len(four["output"]) == 4
    # Reference images + generated images never exceed 15.
    capped = predict(
        api,
        model,
        prompt="x",
        image=[f"https://example.invalid/{i}.png" for i in range(13)],
        sequential_image_generation="auto",
        sequential_image_generation_options={"max_images": 15},
    ).json()
    assert len(capped["output"]) == 2
    bad = predict(
        api,
        model,
        prompt="x",
        sequential_image_generation="auto",
        sequential_image_generation_options={"max_images": 16},
    )
    assert bad.status_code == 400


def test_seedream_45_rejects_1k(api: httpx.Client) -> None:
    response = predict(api, "doubao/doubao-seedream-4-5", prompt="x", size="1K")
    assert response.status_code == 400
    assert error_of(response)["code"] == "size_not_supported"
    assert predict(api, "doubao/doubao-seedream-4-5", prompt="x", size="2K").status_code == 200


@pytest.mark.parametrize("model", ["qianfan/qwen-image", "google/imagen-4.0-fast-generate-001"])
def test_url_list_families(api: httpx.Client, anon: httpx.Client, model: str) -> None:
    body = predict(api, model, prompt="sunset").json()
    assert set(body) == {"output"}
    assert [set(item) for item in body["output"]] == [{"url"}]
    assert _download(anon, body["output"][0]["url"]).format == "PNG"


def test_qwen_sizes(api: httpx.Client, anon: httpx.Client) -> None:
    body = predict(api, "qianfan/qwen-image", prompt="x", size="1024*576").json()
    assert _download(anon, body["output"][0]["url"]).size == (1024, 576)
    body = predict(api, "qianfan/qwen-image", prompt="x", size="576*1024").json()
    assert _download(anon, body["output"][0]["url"]).size == (576, 1024)


def test_imagen_counts(api: httpx.Client) -> None:
    model = "google/imagen-4.0-generate-001"
    assert len(predict(api, model, prompt="x", numberOfImages=3).json()["output"]) == 3
    assert len(predict(api, model, prompt="x", sampleCount=2).json()["output"]) == 2
    too_many = predict(api, model, prompt="x", numberOfImages=5)
    assert too_many.status_code == 400
    assert error_of(too_many)["code"] == "n_not_within_range"


def test_imagen_aspect_ratio_shapes_the_image(api: httpx.Client, anon: httpx.Client) -> None:
    body = predict(api, "google/imagen-4.0-generate-001", prompt="x", aspectRatio="16:9").json()
    assert _download(anon, body["output"][0]["url"]).size == (1024, 576)


def test_irag_url_or_b64(api: httpx.Client) -> None:
    body = predict(api, "qianfan/irag-1.0", prompt="x", n=2, size="1024x1024", guidance=7.5).json()
    assert [set(item) for item in body["output"]] == [{"url"}, {"url"}]
    body = predict(api, "qianfan/irag-1.0", prompt="x", response_format="b64_json").json()
    assert b64_image(body["output"][0]["b64_json"]).size == (1024, 1024)


def test_ideogram_bare_url_strings_with_aspect(api: httpx.Client, anon: httpx.Client) -> None:
    body = predict(api, "ideogram/V3", prompt="x", rendering_speed="QUALITY", aspect_ratio="2x1").json()
    assert all(isinstance(item, str) for item in body["output"])
    assert _download(anon, body["output"][0]).size == (1024, 512)


def test_flux_async_returns_task_with_upstream_polling_url(sandbox: SandboxServer, api: httpx.Client) -> None:
    body = predict(api, "bfl/flux-kontext-max", prompt="x", aspect_ratio="2:3", safety_tolerance=6).json()
    (item,) = body["output"]
    assert item["taskId"]
    assert item["polling_url"].startswith(sandbox.storage_url)
    assert not item["polling_url"].startswith(sandbox.base_url)
    (task,) = sandbox.client.tasks()
    assert task["id"] == item["taskId"] and (task["width"], task["height"]) == (683, 1024)


def test_unknown_models_pass_through(sandbox: SandboxServer, api: httpx.Client) -> None:
    body = predict(api, "newvendor/shiny-model-9", prompt="x").json()
    assert [set(item) for item in body["output"]] == [{"url"}]
    # An unknown Black Forest Labs model is asynchronous like its siblings.
    body = predict(api, "bfl/flux-9-ultra", prompt="x").json()
    assert "taskId" in body["output"][0]


def test_model_path_that_is_not_a_model_is_503(api: httpx.Client) -> None:
    response = predict(api, "openai/gpt image", prompt="x")
    assert response.status_code == 503
    assert error_of(response)["code"] == "no_available_channel"


@pytest.mark.parametrize(
    ("inp", "code", "param"),
    [
        ({}, "prompt_missing", "prompt"),
        ({"prompt": "   "}, "prompt_missing", "prompt"),
        ({"prompt": 5}, "prompt_missing", "prompt"),
        ({"prompt": "x", "n": 0}, "n_not_within_range", "n"),
        ({"prompt": "x", "n": 11}, "n_not_within_range", "n"),
        ({"prompt": "x", "n": "2"}, "n_not_within_range", "n"),
        ({"prompt": "x", "size": "huge"}, "size_not_supported", "size"),
        ({"prompt": "x", "size": "5x5"}, "size_not_supported", "size"),
        ({"prompt": "x", "output_format": "gif"}, "invalid_output_format", "output_format"),
        ({"prompt": "x", "seed": "abc"}, "invalid_seed", "seed"),
        ({"prompt": "x", "image": "data:image/png,notbase64"}, "invalid_image", "image"),
        ({"prompt": "x" * 32001}, "prompt_too_long", "prompt"),
    ],
)
def test_input_checks(
    sandbox: SandboxServer, api: httpx.Client, inp: dict[str, Any], code: str, param: str
) -> None:
    response = predict(api, "qianfan/irag-1.0", **inp)
    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["param"]) == (code, param)
    assert sandbox.client.billed_count() == 0


def test_dall_e_3_takes_one_image(api: httpx.Client) -> None:
    assert predict(api, "openai/dall-e-3", prompt="x", n=2).status_code == 400
    assert predict(api, "openai/dall-e-3", prompt="x", n=1).status_code == 200


def test_edit_only_models_need_an_image(api: httpx.Client) -> None:
    for model in ("qianfan/qwen-image-edit", "qianfan/ernie-irag-edit"):
        response = predict(api, model, prompt="make it blue")
        assert response.status_code == 400
        assert error_of(response)["code"] == "image_missing"
    ok = predict(api, "qianfan/qwen-image-edit", prompt="make it blue", image="https://example.invalid/a.png")
    assert ok.status_code == 200
    # Qianfan's /v2/images/edits takes a size, each side 512..2048.
    ref = "https://example.invalid/a.png"
    assert predict(api, "qianfan/qwen-image-edit", prompt="x", image=ref, size="1024x768").status_code == 200
    sized = predict(api, "qianfan/qwen-image-edit", prompt="x", image=ref, size="4096x4096")
    assert error_of(sized)["code"] == "size_not_supported"
    # The edit model reads its picture from `image`, not from irag-1.0's `refer_image`.
    wrong_field = predict(api, "qianfan/ernie-irag-edit", prompt="x", refer_image=ref, feature="variation")
    assert error_of(wrong_field)["code"] == "image_missing"


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"input": "text"}', b'{"prompt": "x"}'])
def test_body_must_be_an_input_object(api: httpx.Client, body: bytes) -> None:
    response = api.post(
        "/v1/models/qianfan/qwen-image/predictions",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    error_of(response)


def test_moderation_prompt_token(sandbox: SandboxServer, api: httpx.Client) -> None:
    for model in ("openai/gpt-image-1", "bfl/flux-2-pro"):
        response = predict(api, model, prompt="a sandbox:moderated cat")
        assert response.status_code == 400
        assert error_of(response)["code"] == "moderation_blocked"
    assert sandbox.client.billed_count() == 0
    assert sandbox.client.tasks() == []


def test_same_seed_and_prompt_give_same_bytes(api: httpx.Client) -> None:
    def images(**inp: Any) -> list[str]:
        body = predict(
            api, "openai/gpt-image-1", prompt="p", output_format="png", size="256x256", **inp
        ).json()
        return [item["bytesBase64"] for item in body["output"]["b64_json"]]

    first, second = images(seed=7, n=2), images(seed=7, n=2)
    assert first == second
    assert first[0] != first[1]  # another index is another image
    assert images(seed=8, n=1)[0] != first[0]
    other_prompt = predict(api, "openai/gpt-image-1", prompt="q", output_format="png", size="256x256", seed=7)
    assert other_prompt.json()["output"]["b64_json"][0]["bytesBase64"] != first[0]


def test_same_seed_gives_same_url_and_bytes(api: httpx.Client, anon: httpx.Client) -> None:
    one = predict(api, "qianfan/qwen-image", prompt="p", seed=42, n=2).json()["output"]
    two = predict(api, "qianfan/qwen-image", prompt="p", seed=42, n=2).json()["output"]
    assert anon.get(one[0]["url"]).content == anon.get(two[0]["url"]).content
    assert anon.get(one[0]["url"]).content != anon.get(one[1]["url"]).content


@pytest.mark.parametrize(
    ("max_side", "size", "expected"),
    [
        (1024, "4K", (1024, 1024)),
        (256, "1024*576", (256, 144)),
        (0, "2K", (2048, 2048)),
        (0, "1536x1024", (1536, 1024)),
    ],
)
def test_max_side_caps_sizes(
    sandbox: SandboxServer, api: httpx.Client, max_side: int, size: str, expected: tuple[int, int]
) -> None:
    sandbox.client.configure(max_side=max_side)
    body = predict(api, "openai/gpt-image-1", prompt="x", size=size, output_format="jpeg").json()
    assert b64_image(body["output"]["b64_json"][0]["bytesBase64"]).size == expected
