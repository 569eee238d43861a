"""AIHubMixHook over real HTTP against the sandbox: every catalog model, both twins, faults, billing."""

from __future__ import annotations

import asyncio
import base64
import io
import time

import pytest
from PIL import Image

from airflow_provider_aihubmix.catalog.models import CATALOG, ModelSpec
from airflow_provider_aihubmix.exceptions import (
    AIHubMixAuthenticationError,
    AIHubMixBadRequestError,
    AIHubMixDownloadError,
    AIHubMixModerationError,
    AIHubMixPossiblyBilledError,
    AIHubMixResponseError,
    AIHubMixUpstreamError,
    AIHubMixValidationError,
)
from airflow_provider_aihubmix.hooks.aihubmix import AIHubMixHook, aclose_shared_clients
from airflow_provider_aihubmix.responses.shapes import GeneratedImage, TaskState, TaskStatus
from tests.cases.invalid_inputs import INVALID_INPUTS

PREDICT_PATH = r"^(/v1/(models/.+/predictions|images/generations)|/gemini/v1beta/models/.+:generateContent)$"


def _reference_png() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (250, 120, 0)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


REFERENCE = _reference_png()


def _params(spec: ModelSpec) -> dict[str, object]:
    params: dict[str, object] = {"prompt": "a lighthouse at dawn, watercolour"}
    if not spec.text_to_image:
        params["image"] = REFERENCE
    return params


def _decoded_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.size


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def hook(sandbox_conn: str, sleeps: list[float]) -> AIHubMixHook:
    # Built from the aihubmix_default connection the fixture points at the sandbox.
    hook = AIHubMixHook(sleep=sleeps.append, jitter=lambda: 0.01)
    yield hook
    hook.close()


def _image_bytes(hook: AIHubMixHook, image: GeneratedImage) -> bytes:
    if image.data is not None:
        return image.data
    assert image.url is not None
    return hook.download(image.url)


def _wait_ready(hook: AIHubMixHook, task_id: str, timeout: float = 20.0) -> TaskState:
    deadline = time.monotonic() + timeout
    seen: list[TaskStatus] = []
    while time.monotonic() < deadline:
        state = hook.get_task(task_id)
        seen.append(state.status)
        if state.status.is_terminal:
            return state
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} not terminal in {timeout}s: {seen}")


@pytest.mark.parametrize("path", sorted(CATALOG))
def test_every_catalog_model_yields_a_real_image(hook: AIHubMixHook, sandbox, path: str):
    spec = CATALOG[path]
    result = hook.predict(spec, _params(spec))
    assert result.request_id  # the sandbox tags every answer with X-Request-Id
    if spec.is_async:
        assert result.task is not None and not result.images
        state = _wait_ready(hook, result.task.task_id)
        assert state.status is TaskStatus.READY, state
        assert state.result_urls
        images = [hook.download(url) for url in state.result_urls]
    else:
        assert result.task is None and result.images
        images = [_image_bytes(hook, image) for image in result.images]
    for data in images:
        width, height = _decoded_size(data)
        assert width > 0 and height > 0
    (post,) = sandbox.client.requests(host="api", path=PREDICT_PATH)
    assert post["method"] == "POST"
    if spec.one_image_per_request:  # Google's native route: the key in x-goog-api-key only
        assert post["headers"]["x-goog-api-key"] == "sk-sandbox-test-key" and not post["query"]
        assert "authorization" not in post["headers"]
    else:
        assert post["headers"]["authorization"] == "Bearer sk-sandbox-test-key"
    # Downloads went to storage without the key (the sandbox's storage answers 400 to any).
    for record in sandbox.client.requests(host="storage"):
        assert "authorization" not in record["headers"]
        assert record["status"] == 200


@pytest.mark.parametrize("path", sorted(CATALOG))
async def test_async_twins_for_every_catalog_model(sandbox_conn: str, sandbox, path: str):
    spec = CATALOG[path]
    hook = await AIHubMixHook.afrom_conn_id("aihubmix_default")
    try:
        result = await hook.apredict(spec, _params(spec))
        if spec.is_async:
            assert result.task is not None
            for _ in range(200):
                state = await hook.aget_task(result.task.task_id)
                if state.status.is_terminal:
                    break
                await asyncio.sleep(0.1)
            assert state.status is TaskStatus.READY
            urls = state.result_urls
            assert urls
        else:
            urls = [image.url for image in result.images if image.url]
            for image in result.images:
                if image.data is not None:
                    assert _decoded_size(image.data)[0] > 0
        for url in urls:
            async with hook.astream_download(url) as download:
                assert download.content_type and download.content_type.startswith("image/")
                data = await download.aread()
            assert _decoded_size(data)[0] > 0
            assert await hook.adownload(url) == data
    finally:
        await aclose_shared_clients()


def test_connection_test_success_and_bad_key(sandbox_conn: str, sandbox):
    ok, message = AIHubMixHook().test_connection()
    assert ok, message
    assert "models available" in message
    bad = AIHubMixHook(api_key="sk-wrong-key-000", base_url=sandbox.base_url)
    ok, message = bad.test_connection()
    assert not ok
    assert message.startswith("API key rejected (HTTP 401)")
    assert "sk-wrong-key-000" not in message
    assert "sk-sandbox-test-key" not in message


def test_429_with_retry_after_is_honoured(hook: AIHubMixHook, sandbox, sleeps: list[float]):
    sandbox.client.inject(kind="status", status=429, retry_after=0.2, path="predictions", count=2)
    result = hook.predict("imagen-4.0-fast-generate-001", {"prompt": "a fox"})
    assert result.images
    assert sleeps == [0.2, 0.2]
    posts = sandbox.client.requests(host="api", path=PREDICT_PATH)
    assert [p["status"] for p in posts] == [429, 429, 200]


def test_429_without_retry_after_uses_jittered_backoff(hook: AIHubMixHook, sandbox, sleeps: list[float]):
    sandbox.client.inject(kind="status", status=429, path="predictions", count=1)
    assert hook.predict("gpt-image-1-mini", {"prompt": "a fox"}).images
    assert len(sleeps) == 1 and 0 < sleeps[0] <= 1.0  # jitter (0.01) x base backoff
    assert len(sandbox.client.requests(host="api", path=PREDICT_PATH)) == 2


def test_503_is_retried_until_the_budget_then_raised(hook: AIHubMixHook, sandbox, sleeps: list[float]):
    sandbox.client.inject(kind="status", status=503, path="predictions", count=1)
    assert hook.predict("qwen-image", {"prompt": "a fox"}).images
    assert len(sandbox.client.requests(host="api", path=PREDICT_PATH)) == 2

    sandbox.client.clear_requests()
    sandbox.client.inject(kind="status", status=503, path="predictions")
    limited = AIHubMixHook(max_retries=2, sleep=sleeps.append, jitter=lambda: 0.0)
    with pytest.raises(AIHubMixUpstreamError, match="after 3 attempts"):
        limited.predict("qwen-image", {"prompt": "a fox"})
    assert len(sandbox.client.requests(host="api", path=PREDICT_PATH)) == 3


def test_reset_after_send_on_predict_is_not_retried(hook: AIHubMixHook, sandbox):
    sandbox.client.inject(kind="reset_after_send", path="predictions", count=1)
    with pytest.raises(AIHubMixPossiblyBilledError, match="may have been billed"):
        hook.predict("gpt-image-1", {"prompt": "a fox"})
    posts = sandbox.client.requests(host="api", path=PREDICT_PATH)
    assert len(posts) == 1
    assert sandbox.client.billed_count(PREDICT_PATH) == 1


async def test_reset_after_send_on_apredict_is_not_retried(sandbox_conn: str, sandbox):
    sandbox.client.inject(kind="reset_after_send", path="predictions", count=1)
    hook = await AIHubMixHook.afrom_conn_id("aihubmix_default")
    try:
        with pytest.raises(AIHubMixPossiblyBilledError):
            await hook.apredict("gpt-image-1", {"prompt": "a fox"})
    finally:
        await aclose_shared_clients()
    assert len(sandbox.client.requests(host="api", path=PREDICT_PATH)) == 1


def test_lost_answer_on_task_poll_is_retried(hook: AIHubMixHook, sandbox):
    result = hook.predict("flux-2-pro", {"prompt": "a fox"})
    assert result.task is not None
    sandbox.client.inject(kind="reset_after_send", path="^/v1/tasks/", count=1)
    state = hook.get_task(result.task.task_id)
    assert state.status in (TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.READY)
    assert len(sandbox.client.requests(host="api", path="^/v1/tasks/")) == 2


def test_unknown_task_is_not_found(hook: AIHubMixHook, sandbox):
    state = hook.get_task("api.sbx.does-not-exist")
    assert state.status is TaskStatus.NOT_FOUND


def test_error_in_http_200_and_moderation_are_typed(hook: AIHubMixHook, sandbox):
    sandbox.client.inject(
        kind="error_200", status=400, code="size_not_supported", path="predictions", count=1
    )
    with pytest.raises(AIHubMixBadRequestError):
        hook.predict("gpt-image-1", {"prompt": "a fox"})
    sandbox.client.inject(kind="moderation", path="predictions", count=1)
    with pytest.raises(AIHubMixModerationError):
        hook.predict("gpt-image-1", {"prompt": "a fox"})
    assert len(sandbox.client.requests(host="api", path=PREDICT_PATH)) == 2


@pytest.mark.parametrize("kind", ["malformed_json", "unknown_shape"])
def test_unreadable_success_is_a_response_error(hook: AIHubMixHook, sandbox, kind: str):
    sandbox.client.inject(kind=kind, path="predictions", count=1)
    with pytest.raises(AIHubMixResponseError):
        hook.predict("imagen-4.0-generate-001", {"prompt": "a fox"})
    assert len(sandbox.client.requests(host="api", path=PREDICT_PATH)) == 1


def test_download_faults(hook: AIHubMixHook, sandbox):
    url = next(image.url for image in hook.predict("qwen-image", {"prompt": "a fox"}).images if image.url)
    sandbox.client.inject(kind="expired", count=1)
    with pytest.raises(AIHubMixDownloadError, match="expired or missing"):
        hook.download(url)
    sandbox.client.inject(kind="truncated", count=1)
    with pytest.raises(AIHubMixDownloadError, match="truncated"), hook.stream_download(url) as download:
        download.read()
    with pytest.raises(AIHubMixDownloadError, match="limit"):
        hook.download(url, max_bytes=100)
    assert _decoded_size(hook.download(url))[0] > 0


def test_wrong_key_is_an_authentication_error(sandbox_conn: str, sandbox):
    hook = AIHubMixHook(api_key="sk-not-the-sandbox-key", base_url=sandbox.base_url)
    with pytest.raises(AIHubMixAuthenticationError) as info:
        hook.predict("gpt-image-1", {"prompt": "a fox"})
    assert "sk-not-the-sandbox-key" not in str(info.value)


@pytest.mark.parametrize("case", INVALID_INPUTS, ids=[case.id for case in INVALID_INPUTS])
def test_invalid_inputs_never_reach_the_api(hook: AIHubMixHook, sandbox, case):
    with pytest.raises(AIHubMixValidationError) as info:
        hook.predict(case.model, case.params, extra_input=case.extra_input)
    message = str(info.value)
    for fragment in case.expected_fragments:
        assert fragment in message, f"{fragment!r} missing from: {message}"
    assert sandbox.client.requests(host="api") == []
