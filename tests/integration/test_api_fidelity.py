"""Real-world answers and inputs, each from a public source, through the hook over HTTP.

Every row names where its shape or rule comes from (AIHubMix's docs and own clients, the
upstream vendors' API specs; the short names are ``limits.SOURCES``). Answer rows make the
sandbox answer in that shape (its ``sandbox:shape=`` prompt marker) and check the hook yields
real images, a task it then collects, or the right typed error. Input rows check the request
goes out as the source sends it, or is refused before any request (the sandbox's request log
is empty). Rows marked ``issue`` are the eight of issue #10's table.
"""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from PIL import Image

from airflow_provider_aihubmix.engine.events import EventStatus
from airflow_provider_aihubmix.engine.polling import PollSchedule, wait_for_task
from airflow_provider_aihubmix.exceptions import (
    AIHubMixError,
    AIHubMixModerationError,
    AIHubMixTaskModeratedError,
    AIHubMixUnreadableAnswerError,
    AIHubMixValidationError,
)
from airflow_provider_aihubmix.hooks.aihubmix import AIHubMixHook
from airflow_provider_aihubmix.sandbox import SandboxServer
from airflow_provider_aihubmix.version_compat import AirflowFailException

PREDICT_PATH = r"^/v1/(models/.+/predictions|images/generations)$"


def _png(colour: tuple[int, int, int] = (250, 120, 0)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(buffer, format="PNG")
    return buffer.getvalue()


REF = "data:image/png;base64," + base64.b64encode(_png()).decode()


@dataclass(frozen=True)
class Answer:
    """The sandbox answers ``model`` in ``shape``; the hook must yield ``expect``."""

    id: str
    source: str
    model: str
    shape: str
    expect: str  # "images", "task", "moderated", "unreadable"
    min_images: int = 1
    params: dict[str, Any] = field(default_factory=dict)
    issue: bool = False


ANSWERS = [
    Answer(
        "kontext-generations-ideogram-unsafe",
        "ideogram-openapi verdict on /v1/images/generations (openai-openapi endpoint)",
        "FLUX.1-Kontext-pro",
        "ideogram-unsafe",
        "moderated",
    ),
    Answer(
        "kontext-generations-b64",
        "openai-openapi ImagesResponse (b64_json) on /v1/images/generations",
        "FLUX.1-Kontext-pro",
        "images-response-b64",
        "images",
    ),
    Answer(
        "openai-predictions",
        "aihubmix-doc (seen); aihubmix-mcp",
        "gpt-image-1-mini",
        "openai-predictions",
        "images",
    ),
    Answer("output-url-list", "aihubmix-doc (doubao, seen)", "doubao-seedream-4-0", "output-urls", "images"),
    Answer(
        "output-b64-list",
        "dify-aihubmix-image (ernie_irag_edit.py reads output[].b64_json)",
        "irag-1.0",
        "output-b64",
        "images",
    ),
    Answer(
        "output-strings",
        "aihubmix-api.md (the vendor client reads output[] strings)",
        "ideogram/V3",
        "output-strings",
        "images",
    ),
    Answer(
        "output-bare-string",
        "api-fidelity §8 (output as one URL string)",
        "qwen-image",
        "output-string",
        "images",
    ),
    Answer(
        "output-url-object",
        "aihubmix-api.md (output.url)",
        "imagen-4.0-fast-generate-001",
        "output-url-object",
        "images",
    ),
    Answer(
        "output-images",
        "MultiLLM AIHubMix adapter (doubao output.images[])",
        "doubao-seedream-4-5",
        "output-images",
        "images",
        params={"size": "2K"},
    ),
    Answer(
        "images-response-url", "openai-openapi ImagesResponse", "gpt-image-1", "images-response", "images"
    ),
    Answer(
        "images-response-b64",
        "openai-openapi ImagesResponse (b64_json)",
        "dall-e-3",
        "images-response-b64",
        "images",
    ),
    Answer(
        "ark-data",
        "ark-seedream (data[].url, size, usage.generated_images)",
        "doubao-seedream-4-0",
        "ark",
        "images",
    ),
    Answer(
        "ark-one-sensitive",
        "ark-seedream (OutputImageSensitiveContentDetected item)",
        "doubao-seedream-4-0",
        "ark-partly-sensitive",
        "images",
        params={"n": 2},
        min_images=2,
    ),
    Answer(
        "ideogram-native", "ideogram-openapi (data[].url, is_image_safe)", "ideogram/V3", "ideogram", "images"
    ),
    Answer(
        "ideogram-wrapped",
        "ideogram-openapi inside AIHubMix's output",
        "ideogram/V3",
        "ideogram-wrapped",
        "images",
    ),
    Answer(
        "ideogram-unsafe",
        "ideogram-openapi (url null, is_image_safe false)",
        "ideogram/V3",
        "ideogram-unsafe",
        "moderated",
        issue=True,
    ),
    Answer(
        "vertex-predictions",
        "vertex-imagen (predictions[].bytesBase64Encoded)",
        "imagen-4.0-generate-001",
        "vertex",
        "images",
    ),
    Answer(
        "vertex-filtered",
        "vertex-imagen (raiFilteredReason)",
        "imagen-4.0-generate-001",
        "vertex-filtered",
        "moderated",
    ),
    Answer(
        "gemini-generated-images",
        "Gemini API generateImages (generatedImages[].image.imageBytes)",
        "imagen-4.0-fast-generate-001",
        "gemini-images",
        "images",
    ),
    Answer(
        "qianfan-native",
        "lobe-chat-wenxin createImage.test.ts ({id, created, data[url]})",
        "qwen-image",
        "qianfan",
        "images",
    ),
    Answer("unfamiliar-keys", "issue #10 Deliver 1 (last-resort scan)", "qwen-image", "unfamiliar", "images"),
    Answer(
        "empty-200", "issue #10 Deliver 2 (a 200 with nothing in it)", "qwen-image", "empty", "unreadable"
    ),
    Answer(
        "task-output-list",
        "aihubmix-doc (Flux: output[].taskId, polling_url)",
        "flux-2-pro",
        "task-output-list",
        "task",
    ),
    Answer(
        "task-output-object",
        "aihubmix-mcp (output.id + polling_url)",
        "flux-2-flex",
        "task-output-object",
        "task",
    ),
    Answer(
        "bfl-async-response",
        "bfl-openapi AsyncResponse ({id, polling_url})",
        "flux-kontext-max",
        "bfl-submit",
        "task",
    ),
    Answer(
        "bfl-pending-no-url",
        "aihubmix-mcp ({id, status: Pending}, reported as a task)",
        "flux-2-pro",
        "bfl-pending",
        "task",
        issue=True,
    ),
    Answer(
        "task-id-snake", "api-fidelity §8 (task ids under task_id)", "flux-2-pro", "task-id-snake", "task"
    ),
    Answer(
        "task-id-nested",
        "issue #10 Deliver 1 (task ids under every key)",
        "flux-2-pro",
        "task-nested",
        "task",
    ),
]


@dataclass(frozen=True)
class Send:
    """``params`` go out; the wire ``input`` holds ``wire`` (and lacks ``absent``)."""

    id: str
    source: str
    model: str
    params: dict[str, Any]
    wire: dict[str, Any]
    absent: tuple[str, ...] = ()
    issue: bool = False


SENDS = [
    Send(
        "qwen-size-x-as-written",
        "aihubmix-doc example; dify-aihubmix-image; aihubmix-mcp",
        "qwen-image",
        {"size": "1024x1024"},
        {"size": "1024x1024"},
        issue=True,
    ),
    Send(
        "qwen-size-star-as-written",
        "aihubmix-doc size table",
        "qwen-image",
        {"size": "1024*1024"},
        {"size": "1024*1024"},
    ),
    Send(
        "qwen-size-1024x2048",
        "dify-aihubmix-image (1024x2048)",
        "qwen-image",
        {"size": "1024x2048"},
        {"size": "1024x2048"},
    ),
    Send(
        "qwen-edit-size",
        "lobe-chat-wenxin (size on /v2/images/edits)",
        "qwen-image-edit",
        {"image": REF, "size": "1024x768"},
        {"size": "1024x768", "image": [REF]},
    ),
    Send(
        "irag-edit-image-feature",
        "dify-aihubmix-image; lobe-chat-wenxin (image + feature)",
        "ernie-irag-edit",
        {"image": REF, "feature": "variation"},
        {"image": REF, "feature": "variation"},
        absent=("refer_image", "mode"),
        issue=True,
    ),
    Send(
        "irag-edit-mode-spelling",
        "dify-aihubmix-image (feature)",
        "ernie-irag-edit",
        {"image": REF, "mode": "variation"},
        {"feature": "variation"},
        absent=("mode",),
    ),
    Send(
        "seedream-45-2560x1440",
        "ark-seedream (4.5 minimum 3,686,400 pixels)",
        "doubao-seedream-4-5",
        {"size": "2560x1440"},
        {"size": "2560x1440"},
    ),
    Send(
        "seedream-40-5504x3040",
        "ark-seedream (recommended 4K 16:9)",
        "doubao-seedream-4-0",
        {"size": "5504x3040"},
        {"size": "5504x3040"},
    ),
    Send(
        "seedream-b64_json",
        "ark-seedream; dify-aihubmix-image (b64_json)",
        "doubao-seedream-4-0",
        {"response_format": "b64_json"},
        {"response_format": "b64_json"},
    ),
    Send(
        "imagen-count-both-names",
        "aihubmix-doc-cn + aihubmix-mcp (sampleCount); dify-aihubmix-image (numberOfImages)",
        "imagen-4.0-generate-001",
        {"n": 2},
        {"sampleCount": 2, "numberOfImages": 2},
    ),
    Send(
        "flux-2-width-height",
        "bfl-openapi Flux2Inputs (width, height)",
        "flux-2-pro",
        {"width": 1440, "height": 816},
        {"width": 1440, "height": 816},
    ),
    Send(
        "kontext-safety-6",
        "bfl-openapi FluxKontextProInputs (0..6); aihubmix-doc example",
        "flux-kontext-max",
        {"safety_tolerance": 6, "aspect_ratio": "2:3"},
        {"safety_tolerance": 6, "aspect_ratio": "2:3"},
    ),
    Send(
        "kontext-four-references",
        "bfl-openapi (input_image..input_image_4)",
        "flux-kontext-max",
        {"image": [REF] * 4},
        {"input_image": REF, "input_image_4": REF},
    ),
    Send(
        "flux-webp",
        "bfl-openapi OutputFormat (jpeg, png, webp)",
        "flux-2-flex",
        {"output_format": "webp"},
        {"output_format": "webp"},
    ),
    Send(
        "ideogram-flash",
        "ideogram-openapi RenderingSpeed",
        "ideogram/V3",
        {"rendering_speed": "FLASH"},
        {"rendering_speed": "FLASH"},
    ),
    Send(
        "ideogram-eight",
        "ideogram-openapi NumImages (1..8); cherry-studio",
        "ideogram/V3",
        {"n": 8},
        {"n": 8},
    ),
    Send(
        "dall-e-3-auto-vivid",
        "openai-openapi (quality auto, style vivid)",
        "dall-e-3",
        {"quality": "auto", "style": "vivid"},
        {"quality": "auto", "style": "vivid"},
    ),
]


@dataclass(frozen=True)
class Refuse:
    """``params`` never reach the API: a validation error naming ``fragments``."""

    id: str
    source: str
    model: str
    params: dict[str, Any]
    fragments: tuple[str, ...]
    extra_input: dict[str, Any] | None = None
    issue: bool = False


SURROGATE = json.loads('"a cat \\ud83d"')
REFUSALS = [
    Refuse(
        "lone-surrogate-prompt",
        "RFC 8259 / UTF-8: a lone surrogate has no encoding",
        "gpt-image-1-mini",
        {"prompt": SURROGATE},
        ("'prompt'", "surrogate"),
        issue=True,
    ),
    Refuse(
        "nan-in-extra-input",
        "RFC 8259: no NaN in JSON",
        "qwen-image",
        {},
        ("'guidance'", "non-finite"),
        extra_input={"guidance_scale": 1.0, "guidance": float("nan")},
    ),
    Refuse(
        "seedream-45-1024",
        "ark-seedream (4.5 minimum 3,686,400 pixels)",
        "doubao-seedream-4-5",
        {"size": "1024x1024"},
        ("'size'", "3,686,400"),
        issue=True,
    ),
    Refuse(
        "flux-2-safety-6",
        "bfl-openapi Flux2Inputs (0..5)",
        "flux-2-pro",
        {"safety_tolerance": 6},
        ("'safety_tolerance'", "0..5"),
    ),
    Refuse(
        "irag-prompt-221",
        "qianfan-image (irag-1.0 prompt <= 220 characters)",
        "irag-1.0",
        {"prompt": "x" * 221},
        ("'prompt'", "220"),
    ),
    Refuse(
        "dall-e-3-prompt-4001",
        "openai-openapi (dall-e-3 prompt <= 4,000 characters)",
        "dall-e-3",
        {"prompt": "x" * 4001},
        ("'prompt'", "4000"),
    ),
    Refuse(
        "mini-input-fidelity",
        "openai-openapi (input_fidelity unsupported for gpt-image-1-mini)",
        "gpt-image-1-mini",
        {"image": REF, "input_fidelity": "high"},
        ("'input_fidelity'", "gpt-image-1-mini"),
    ),
    Refuse(
        "input-fidelity-without-image",
        "openai-openapi (input_fidelity is an edit parameter)",
        "gpt-image-1",
        {"input_fidelity": "high"},
        ("'input_fidelity'", "'image'"),
    ),
    Refuse(
        "kontext-width",
        "bfl-openapi (Kontext has aspect_ratio, no width)",
        "flux-kontext-max",
        {"width": 1024, "height": 1024},
        ("'width'", "flux-2"),
    ),
    Refuse(
        "etc-hosts-reference",
        "issue #10 (a local path is read like the operator does)",
        "qwen-image-edit",
        {"image": "/etc/hosts"},
        ("'image'", "not a"),
    ),
]


@pytest.fixture
def hook(sandbox_conn: str) -> Iterator[AIHubMixHook]:
    hook = AIHubMixHook(sleep=lambda _: None, jitter=lambda: 0.01)
    yield hook
    hook.close()


def _decodable(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        assert image.size[0] > 0


def _collect_task(hook: AIHubMixHook, task_id: str) -> list[str]:
    event = wait_for_task(
        hook, task_id, model=None, schedule=PollSchedule(0.1), timeout=30, submitted_at=time.time()
    )
    assert event.status is EventStatus.SUCCESS, event
    return event.result_urls


def test_the_tables_hold_at_least_thirty_sourced_rows() -> None:
    rows = [*ANSWERS, *SENDS, *REFUSALS]
    assert len(rows) >= 30
    assert all(row.source.strip() for row in rows)
    assert len({row.id for row in rows}) == len(rows)


@pytest.mark.parametrize("row", ANSWERS, ids=lambda row: row.id)
def test_every_answer_yields_its_images_or_the_right_error(
    hook: AIHubMixHook, sandbox: SandboxServer, row: Answer
) -> None:
    params = {"prompt": f"a lighthouse at dawn sandbox:shape={row.shape}", **row.params}
    if row.expect == "moderated":
        with pytest.raises(AIHubMixModerationError, match="safety") as info:
            hook.predict(row.model, params)
        # Not retried by Airflow: the same input would be refused again.
        assert isinstance(info.value, AirflowFailException)
        return
    if row.expect == "unreadable":
        with pytest.raises(AIHubMixUnreadableAnswerError) as unreadable:
            hook.predict(row.model, params)
        assert unreadable.value.body is not None and unreadable.value.request_id
        return
    result = hook.predict(row.model, params)
    if row.expect == "task":
        assert result.task is not None and not result.images
        urls = _collect_task(hook, result.task.task_id)
        blobs = [hook.download(url) for url in urls]
    else:
        assert result.task is None
        assert len(result.images) >= row.min_images
        blobs = [
            image.data if image.data is not None else hook.download(image.url or "")
            for image in result.images
        ]
    assert blobs
    for blob in blobs:
        _decodable(blob)
    (post,) = sandbox.client.requests(host="api", path=PREDICT_PATH)
    assert post["billed"]


@pytest.mark.parametrize("row", SENDS, ids=lambda row: row.id)
def test_inputs_go_out_as_their_source_sends_them(
    hook: AIHubMixHook, sandbox: SandboxServer, row: Send
) -> None:
    result = hook.predict(row.model, {"prompt": "a lighthouse at dawn", **row.params})
    assert result.images or result.task
    (post,) = sandbox.client.requests(host="api", path=PREDICT_PATH)
    sent = post["json"]["input"]
    for key, value in row.wire.items():
        assert sent[key] == value, key
    for key in row.absent:
        assert key not in sent


@pytest.mark.parametrize("row", REFUSALS, ids=lambda row: row.id)
def test_unsendable_inputs_are_refused_before_any_request(
    hook: AIHubMixHook, sandbox: SandboxServer, row: Refuse
) -> None:
    params = {"prompt": "a lighthouse at dawn", **row.params}
    with pytest.raises(AIHubMixValidationError) as info:
        hook.predict(row.model, params, extra_input=row.extra_input)
    for fragment in row.fragments:
        assert fragment in str(info.value)
    assert sandbox.client.requests(host="api") == []


def test_a_moderated_task_is_a_moderation_error_not_retried(
    hook: AIHubMixHook, sandbox: SandboxServer
) -> None:
    # bfl-openapi StatusResponse: "Content Moderated" is a final verdict.
    result = hook.predict("flux-2-pro", {"prompt": "x sandbox:content-moderated"})
    assert result.task is not None
    event = wait_for_task(hook, result.task.task_id, model=None, schedule=PollSchedule(0.1), timeout=30)
    assert event.status is EventStatus.FAILED and event.task_status == "Content Moderated"
    assert issubclass(AIHubMixTaskModeratedError, AIHubMixError)


def test_task_not_found_at_first_is_collected_within_the_grace(
    hook: AIHubMixHook, sandbox: SandboxServer
) -> None:
    # bfl-openapi StatusResponse lists "Task not found"; a fresh id may read so for a moment.
    result = hook.predict("flux-2-pro", {"prompt": "a fox sandbox:unknown-for=1"})
    assert result.task is not None
    assert hook.get_task(result.task.task_id).raw_status == "Task not found"
    urls = _collect_task(hook, result.task.task_id)
    _decodable(hook.download(urls[0]))
    assert len(sandbox.client.requests(host="api", path=PREDICT_PATH)) == 1


def test_task_not_found_past_the_grace_fails_naming_the_task(
    hook: AIHubMixHook, sandbox: SandboxServer
) -> None:
    result = hook.predict("flux-2-pro", {"prompt": "a fox sandbox:unknown-for=600"})
    assert result.task is not None
    event = wait_for_task(
        hook,
        result.task.task_id,
        model=None,
        schedule=PollSchedule(0.1),
        timeout=30,
        submitted_at=time.time() - 61,  # recorded a minute ago: the default grace has passed
    )
    assert event.status is EventStatus.FAILED
    assert result.task.task_id in (event.message or "") and "Task not found" in (event.message or "")


def test_retry_after_nan_is_treated_as_absent(sandbox_conn: str, sandbox: SandboxServer) -> None:
    # RFC 9110 Retry-After is delay-seconds or an HTTP date; "nan" is neither (issue #10 row).
    sleeps: list[float] = []
    hook = AIHubMixHook(sleep=sleeps.append, jitter=lambda: 0.5)
    sandbox.client.inject(kind="status", status=429, retry_after="nan", count=1, path="predictions")
    try:
        assert hook.predict("qwen-image", {"prompt": "a fox"}).images
    finally:
        hook.close()
    assert len(sleeps) == 1 and sleeps[0] > 0  # the normal back-off, not 0 s


def test_hook_reads_local_and_s3_references_like_the_operator(
    hook: AIHubMixHook, sandbox: SandboxServer, tmp_path
) -> None:
    # issue #10 row: a path is read and sent inline, never sent as text.
    path = tmp_path / "cat.png"
    path.write_bytes(_png((10, 200, 30)))
    result = hook.predict("qwen-image-edit", {"prompt": "make it blue", "image": str(path)})
    assert result.images
    (post,) = sandbox.client.requests(host="api", path=PREDICT_PATH)
    (sent,) = post["json"]["input"]["image"]
    assert sent.startswith("data:image/png;base64,") and str(path) not in json.dumps(post["json"])
