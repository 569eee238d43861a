"""Gemini "Nano Banana": catalog, schema, request body, answer reading, key header (no network)."""

from __future__ import annotations

import base64
import io
import json

import httpx
import pytest
from PIL import Image

from airflow_provider_aihubmix.catalog.models import Family, UnknownModelError, resolve_model
from airflow_provider_aihubmix.exceptions import (
    AIHubMixError,
    AIHubMixModerationError,
    AIHubMixRefusalError,
    AIHubMixResponseError,
    AIHubMixTextOnlyError,
    AIHubMixValidationError,
)
from airflow_provider_aihubmix.hooks.aihubmix import AIHubMixHook
from airflow_provider_aihubmix.lineage import moderation_outcome
from airflow_provider_aihubmix.operators.images import AIHubMixGeminiImageOperator
from airflow_provider_aihubmix.responses import gemini
from airflow_provider_aihubmix.responses.usage import merge_usage
from airflow_provider_aihubmix.schemas import build_input, request_body

KEY = "sk-gemini-unit-secret-0123456789"
FLASH, PRO, FLASH_3 = "gemini-2.5-flash-image", "gemini-3-pro-image-preview", "gemini-3.1-flash-image-preview"


def _png(colour: tuple[int, int, int] = (9, 99, 199)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, format="PNG")
    return buffer.getvalue()


PNG = _png()
B64 = base64.b64encode(PNG).decode()
DATA_URI = f"data:image/png;base64,{B64}"


def answer(*parts: dict, finish: str = "STOP", usage: dict | None = None) -> dict:
    body: dict = {
        "candidates": [{"content": {"role": "model", "parts": list(parts)}, "finishReason": finish}]
    }
    if usage is not None:
        body["usageMetadata"] = usage
    return body


# ---- catalog and schema ---------------------------------------------------------------------


def test_catalog_rows_aliases_and_pass_through():
    for name in (FLASH, PRO, FLASH_3, "nano-banana", "nano-banana-pro", "nano-banana-2"):
        spec = resolve_model(name)
        assert spec.family is Family.GEMINI and spec.known and spec.one_image_per_request
    assert resolve_model(FLASH).max_reference_images == 3
    assert resolve_model(PRO).max_reference_images == 14
    new = resolve_model("gemini-4-flash-image-preview", warn=False)
    assert new.family is Family.GEMINI and not new.known and new.one_image_per_request
    assert not resolve_model("gpt-image-1").one_image_per_request
    with pytest.raises(UnknownModelError, match=r"gemini-\.\.\.-image"):
        resolve_model("gemini-2.5-flash")  # a text model is not an image model


def test_input_uses_google_names_and_checks_per_model():
    spec = resolve_model(FLASH_3)
    built = build_input(
        spec,
        {"prompt": "a fox", "n": "3", "aspect_ratio": "8x1", "size": "0.5K", "response_modalities": "image"},
    )
    assert built == {
        "prompt": "a fox",
        "n": 3,
        "aspectRatio": "8:1",
        "imageSize": "512",
        "responseModalities": ["IMAGE"],
    }
    # A list a template rendered as text (Airflow renders to strings) is read back as the list.
    for rendered in ("['TEXT', 'IMAGE']", '["IMAGE"]'):
        modalities = build_input(spec, {"prompt": "p", "response_modalities": rendered})["responseModalities"]
        assert modalities == (["TEXT", "IMAGE"] if "TEXT" in rendered else ["IMAGE"])
    with pytest.raises(AIHubMixValidationError, match="leaves out IMAGE"):
        build_input(spec, {"prompt": "p", "response_modalities": "['TEXT']"})
    # Google's own spellings through extra_input are validated like parameters.
    assert build_input(resolve_model(PRO), {"prompt": "p"}, {"imageSize": "4k"})["imageSize"] == "4K"


@pytest.mark.parametrize(
    ("model", "params", "fragment"),
    [
        (FLASH, {"aspect_ratio": "8:1"}, "'aspect_ratio' = '8:1' is not allowed"),
        (PRO, {"aspect_ratio": "1:8"}, "'aspect_ratio' = '1:8' is not allowed"),
        (FLASH, {"image_size": "1K"}, "'image_size' is not supported by model gemini-2.5-flash-image"),
        (PRO, {"image_size": "512"}, "allowed: 1K, 2K, 4K"),
        (FLASH, {"image": [DATA_URI] * 4}, "too many references (4)"),
        (PRO, {"image": [DATA_URI] * 15}, "too many references (15)"),
        (FLASH, {"response_modalities": ["TEXT"]}, "leaves out IMAGE"),
        (FLASH, {"response_modalities": ["AUDIO", "IMAGE"]}, "not a response modality"),
        (FLASH, {"seed": -1}, "'seed' = -1 is out of range"),
        (FLASH, {"temperature": 2.5}, "'temperature' = 2.5 is out of range"),
        (FLASH, {"n": 11}, "'n' = 11 is out of range"),
        (FLASH, {"quality": "high"}, "Unknown parameter 'quality'"),
    ],
)
def test_bad_input_names_the_parameter(model: str, params: dict, fragment: str):
    with pytest.raises(AIHubMixValidationError) as caught:
        build_input(resolve_model(model), {"prompt": "a fox", **params})
    assert fragment in str(caught.value)


def test_operator_defaults_and_parse_time_checks():
    op = AIHubMixGeminiImageOperator(task_id="g", prompt="a fox", aspect_ratio="16:9")
    assert op.model == FLASH and op.family_params == {"aspect_ratio": "16:9"}
    with pytest.raises(AIHubMixValidationError, match="image_size"):
        AIHubMixGeminiImageOperator(task_id="g", prompt="a fox", image_size="4K")
    with pytest.raises(AIHubMixValidationError, match="not a gemini one"):
        AIHubMixGeminiImageOperator(task_id="g", prompt="a fox", model="qwen-image")
    # Templated values wait for run time.
    AIHubMixGeminiImageOperator(task_id="g", prompt="a fox", aspect_ratio="{{ params.ratio }}")


# ---- request body -----------------------------------------------------------------------------


def test_request_body_parts_config_and_seed_per_request():
    spec = resolve_model(PRO)
    input_ = build_input(
        spec,
        {"prompt": "a fox", "image": [DATA_URI], "aspect_ratio": "3:2", "image_size": "2K", "seed": 7},
        {"topP": 0.5, "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT"}], "n": 2},
    )
    body = gemini.request_body(input_, request_index=2)
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "a fox"}, {"inlineData": {"mimeType": "image/png", "data": B64}}]}
    ]
    assert body["generationConfig"] == {
        "seed": 9,
        "topP": 0.5,
        "imageConfig": {"aspectRatio": "3:2", "imageSize": "2K"},
    }
    assert body["safetySettings"] == [{"category": "HARM_CATEGORY_HARASSMENT"}]
    assert request_body(spec, input_)["generationConfig"]["seed"] == 7  # request 0
    assert gemini.request_seed({"seed": 2_147_483_647}, 1) == 0  # int32 wraps


def test_request_body_refuses_more_inline_bytes_than_the_route_takes():
    big = "data:image/png;base64," + "A" * (gemini.MAX_INLINE_BYTES // 3 * 4 // 2 + 4)
    gemini.request_body({"prompt": "p", "image": [big]})  # half the limit passes
    with pytest.raises(AIHubMixValidationError, match="'image' adds up to"):
        gemini.request_body({"prompt": "p", "image": [big, big, big]})


def test_request_body_refuses_unresolved_references():
    with pytest.raises(AIHubMixValidationError, match="cannot send inline"):
        gemini.request_body({"prompt": "p", "image": ["https://example.com/a.png"]})


def test_url_references_are_inlined_after_sniffing():
    input_ = {"prompt": "p", "image": ["https://cdn.example/a", DATA_URI]}
    assert gemini.url_references(input_) == ["https://cdn.example/a"]
    jpeg = io.BytesIO()
    Image.new("RGB", (4, 4)).save(jpeg, format="JPEG")
    inlined = gemini.with_inlined_urls(input_, {"https://cdn.example/a": jpeg.getvalue()})
    assert inlined["image"][0].startswith("data:image/jpeg;base64,") and inlined["image"][1] == DATA_URI
    with pytest.raises(AIHubMixValidationError, match="did not answer with an image"):
        gemini.with_inlined_urls(input_, {"https://cdn.example/a": b"<html>nope</html>"})


# ---- answers --------------------------------------------------------------------------------


def test_answer_images_commentary_usage_and_seed():
    usage = {"promptTokenCount": 10, "candidatesTokenCount": 1290, "totalTokenCount": 1300}
    body = answer(
        {"text": "Here you go."}, {"inlineData": {"mimeType": "image/webp", "data": B64}}, usage=usage
    )
    result = gemini.parse_answer(body, request_id="rid", seed=5)
    (image,) = result.images
    assert image.data == PNG and image.content_type == "image/webp"  # the label; storage sniffs
    assert (image.seed, image.commentary) == (5, "Here you go.")
    assert result.usage == usage and result.request_id == "rid"


def test_thought_parts_are_not_the_answer():
    draft = {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(_png((1, 1, 1))).decode()}}
    body = answer(
        {**draft, "thought": True}, {"text": "plan", "thought": True}, {"inlineData": {"data": B64}}
    )
    (image,) = gemini.parse_answer(body).images
    assert image.data == PNG and image.commentary is None


@pytest.mark.parametrize(
    ("body", "error", "code", "fragment"),
    [
        ({"promptFeedback": {"blockReason": "SAFETY"}}, AIHubMixRefusalError, "request_moderated", "SAFETY"),
        (
            {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "candidates": []},
            AIHubMixRefusalError,
            "request_moderated",
            "blockReason = PROHIBITED_CONTENT",
        ),
        (
            {"candidates": [{"finishReason": "IMAGE_SAFETY"}]},
            AIHubMixRefusalError,
            "content_moderated",
            "IMAGE_SAFETY",
        ),
        (
            answer({"text": "I cannot make that.\nSorry."}, finish="NO_IMAGE"),
            AIHubMixRefusalError,
            "content_moderated",
            'NO_IMAGE: "I cannot make that."',
        ),
        (
            answer({"text": "\nWhich style would you like?\nMore text"}),
            AIHubMixTextOnlyError,
            None,
            'text only, no image: "Which style would you like?"',
        ),
        ({"candidates": [{"finishReason": "MAX_TOKENS"}]}, AIHubMixError, None, "finishReason = MAX_TOKENS"),
        ({"output": [{"url": "x"}]}, AIHubMixResponseError, None, "neither 'candidates'"),
    ],
)
def test_answers_without_an_image(body: dict, error: type, code: str | None, fragment: str):
    with pytest.raises(error) as caught:
        gemini.parse_answer(body)
    assert type(caught.value) is error
    assert fragment in str(caught.value) and caught.value.code == code


def test_refusals_are_moderation_and_never_retried_by_airflow():
    from airflow_provider_aihubmix.version_compat import AirflowFailException

    refused = AIHubMixRefusalError("blocked", code="content_moderated", param="IMAGE_SAFETY")
    assert isinstance(refused, AIHubMixModerationError) and isinstance(refused, AirflowFailException)
    assert isinstance(AIHubMixTextOnlyError("text"), AirflowFailException)
    assert moderation_outcome(refused) == "content_moderated"
    assert moderation_outcome(AIHubMixRefusalError("b", code="request_moderated")) == "request_moderated"


def test_usage_of_several_requests_adds_up_in_googles_shape():
    one = {
        "promptTokenCount": 10,
        "candidatesTokenCount": 1290,
        "totalTokenCount": 1300,
        "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1290}],
    }
    two = {
        **one,
        "candidatesTokensDetails": [
            {"modality": "IMAGE", "tokenCount": 1290},
            {"modality": "TEXT", "tokenCount": 4},
        ],
    }
    total = merge_usage(merge_usage(None, one), two)
    assert total is not None
    assert (total["promptTokenCount"], total["candidatesTokenCount"], total["totalTokenCount"]) == (
        20,
        2580,
        2600,
    )
    assert total["candidatesTokensDetails"] == [
        {"modality": "IMAGE", "tokenCount": 2580},
        {"modality": "TEXT", "tokenCount": 4},
    ]
    assert merge_usage(one, None) == one


# ---- the hook on the wire ------------------------------------------------------------------------


def test_hook_sends_the_key_only_in_x_goog_api_key():
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if request.url.path.startswith("/gemini/"):
            return httpx.Response(200, json=answer({"inlineData": {"mimeType": "image/png", "data": B64}}))
        return httpx.Response(200, json={"output": [{"b64_json": B64}]})

    hook = AIHubMixHook(api_key=KEY, transport=httpx.MockTransport(handler), sleep=lambda s: None)
    result = hook.predict("nano-banana-pro", {"prompt": "a fox", "seed": 1, "n": 3}, request_index=1)
    assert result.images[0].seed == 2
    hook.predict("qwen-image", {"prompt": "a fox"})
    gemini_request, qwen_request = sent
    assert (
        gemini_request.url
        == "https://aihubmix.com/gemini/v1beta/models/gemini-3-pro-image-preview:generateContent"
    )
    assert gemini_request.headers["x-goog-api-key"] == KEY
    assert "authorization" not in gemini_request.headers and not gemini_request.url.query
    assert (
        qwen_request.headers["authorization"] == f"Bearer {KEY}"
        and "x-goog-api-key" not in qwen_request.headers
    )
    assert json.loads(gemini_request.content)["generationConfig"]["seed"] == 2


# ---- the engine and lineage, over a mock transport ---------------------------------------------


def test_series_records_each_request_and_lineage_reports_commentary_and_usage(tmp_path):
    from airflow_provider_aihubmix.engine.manifest import TaskIdentity
    from airflow_provider_aihubmix.engine.run import GenerationRun
    from airflow_provider_aihubmix.storage import LocalObjectStore
    from tests.unit.test_lineage import facet_dict

    store = LocalObjectStore((tmp_path / "out").as_uri())
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        # Each request finds the previous answer already recorded and its image stored.
        (manifest_path,) = (tmp_path / "out").rglob("manifest.json")
        manifest = json.loads(manifest_path.read_text())
        seen.append(f"{manifest['status']}:{manifest['requests_answered']}:{len(manifest['records'])}")
        usage = {
            "candidatesTokenCount": 1290,
            "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1290}],
        }
        colour = (len(seen) * 40, 10, 10)
        image = {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(_png(colour)).decode()}}
        return httpx.Response(200, json=answer({"text": f"Take {len(seen)}."}, image, usage=usage))

    hook = AIHubMixHook(api_key=KEY, transport=httpx.MockTransport(handler), sleep=lambda s: None)
    op = AIHubMixGeminiImageOperator(task_id="gen", prompt="a fox", n=3)
    run = GenerationRun(
        hook=hook,
        store=store,
        spec=op.resolve_spec(),
        params=op.request_params(),
        extra_input=None,
        identity=TaskIdentity("dag", "manual__1", "gen", -1, 1),
        aws_conn_id=None,
    )
    records = run.start().records
    assert records is not None and [r["index"] for r in records] == [0, 1, 2]
    assert seen == ["submitting:0:0", "submitting:1:1", "submitting:2:2"]
    op._lineage_run, op._lineage_records = run, records
    facet = facet_dict(op.get_openlineage_facets_on_complete(None))
    assert facet["commentary"] == ["Take 1.", "Take 2.", "Take 3."]
    assert facet["usage"] == {
        "candidatesTokenCount": 3 * 1290,
        "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 3 * 1290}],
    }
    assert facet["imagesCount"] == 3 and facet["moderation"] == "passed"
    assert KEY not in json.dumps(facet)
