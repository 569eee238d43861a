"""Every response shape of the API reference, normalised by the parsers."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from airflow_provider_aihubmix.exceptions import AIHubMixResponseError
from airflow_provider_aihubmix.responses.image_data import decode_base64_image
from airflow_provider_aihubmix.responses.shapes import (
    TaskStatus,
    parse_prediction,
    parse_task,
    scrub_text,
    status_from_string,
)


def _png(color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 3), color).save(buffer, format="PNG")
    return buffer.getvalue()


PNG = _png()
PNG2 = _png((0, 90, 200))
B64 = base64.b64encode(PNG).decode()
B64_2 = base64.b64encode(PNG2).decode()
SIGNED = "https://bj.bcebos.com/img/a.png?authorization=bce-auth-v1%2Fsecret&expires=1800"


def _size(data: bytes | None) -> tuple[int, int]:
    assert data is not None
    with Image.open(io.BytesIO(data)) as image:
        return image.size


# ---- prediction shapes ----------------------------------------------------------------------


def test_openai_output_object_with_b64_list_and_usage():
    usage = {"input_tokens": 12, "output_tokens": 4160, "total_tokens": 4172}
    body = {
        "output": {"b64_json": [{"bytesBase64": B64, "mimeType": "png"}, {"bytesBase64": B64_2}], "urls": []},
        "usage": usage,
    }
    result = parse_prediction(body, request_id="req-1")
    assert [img.data for img in result.images] == [PNG, PNG2]
    assert result.images[0].content_type == "image/png"
    assert result.images[1].content_type is None
    assert result.usage == usage
    assert result.request_id == "req-1"
    assert not result.is_async
    assert _size(result.images[0].data) == (4, 3)


def test_output_object_with_urls_only():
    result = parse_prediction({"output": {"b64_json": [], "urls": [SIGNED, "https://x.test/2.png"]}})
    assert [img.url for img in result.images] == [SIGNED, "https://x.test/2.png"]
    assert all(img.data is None for img in result.images)


def test_doubao_output_list_of_urls():
    body = {"output": [{"url": SIGNED}, {"url": "https://tos.example/b.jpeg", "seed": 42}]}
    result = parse_prediction(body)
    assert [img.url for img in result.images] == [SIGNED, "https://tos.example/b.jpeg"]
    assert result.images[1].seed == 42


@pytest.mark.parametrize(
    "item",
    [
        {"b64_json": B64},
        {"bytesBase64": B64, "mimeType": "image/png"},
        {"bytesBase64Encoded": B64, "mimeType": "image/png"},
        B64,
        f"data:image/png;base64,{B64}",
    ],
    ids=["b64_json", "bytesBase64", "imagen-native", "bare-b64-string", "data-uri-string"],
)
def test_output_list_items_inline(item):
    result = parse_prediction({"output": [item]})
    assert len(result.images) == 1
    assert result.images[0].data == PNG


def test_output_list_of_url_strings():
    result = parse_prediction({"output": ["https://a.test/1.png", "https://a.test/2.png"]})
    assert [img.url for img in result.images] == ["https://a.test/1.png", "https://a.test/2.png"]


def test_output_url_object():
    assert parse_prediction({"output": {"url": SIGNED}}).images[0].url == SIGNED


@pytest.mark.parametrize("key", ["url", "image_url"])
def test_top_level_url_keys(key):
    assert parse_prediction({key: "https://a.test/x.webp"}).images[0].url == "https://a.test/x.webp"


def test_image_url_as_chat_style_object():
    assert (
        parse_prediction({"image_url": {"url": "https://a.test/y.png"}}).images[0].url
        == "https://a.test/y.png"
    )


def test_images_list_mixed():
    result = parse_prediction({"images": ["https://a.test/1.png", {"b64_json": B64_2}]})
    assert result.images[0].url == "https://a.test/1.png"
    assert result.images[1].data == PNG2


def test_generations_data_with_revised_prompt_and_usage():
    body = {
        "created": 1_700_000_000,
        "data": [{"b64_json": B64, "revised_prompt": "a cute cartoon cat in a garden"}, {"url": SIGNED}],
        "usage": {"total_tokens": 10},
    }
    result = parse_prediction(body)
    assert result.images[0].data == PNG
    assert result.images[0].revised_prompt == "a cute cartoon cat in a garden"
    assert result.images[1].url == SIGNED
    assert result.usage == {"total_tokens": 10}


def test_generations_data_bare_strings():
    result = parse_prediction({"data": ["https://a.test/1.png", B64]})
    assert result.images[0].url == "https://a.test/1.png"
    assert result.images[1].data == PNG


@pytest.mark.parametrize("key", ["taskId", "task_id", "id"])
def test_async_flux_task_handle(key):
    polling = "https://api.us1.bfl.ai/v1/get_result?id=f9821dbf"
    result = parse_prediction({"output": [{key: "api.us1.abc", "polling_url": polling}]})
    assert result.is_async
    assert result.task is not None
    assert result.task.task_id == "api.us1.abc"
    assert result.task.polling_url == polling
    assert result.images == []


def test_top_level_task_id_without_polling_url():
    result = parse_prediction({"task_id": "t-1"})
    assert result.task is not None and result.task.task_id == "t-1"
    assert result.task.polling_url is None


def test_bare_id_without_polling_url_is_not_a_task():
    result = parse_prediction({"id": "chatcmpl-1", "data": [{"url": "https://a.test/1.png"}]})
    assert result.task is None
    assert result.images[0].url == "https://a.test/1.png"


def test_gemini_candidates_inline_data():
    body = {
        "candidates": [
            {
                "content": {
                    "parts": [
                        {"text": "Here is your image"},
                        {"inlineData": {"data": B64, "mimeType": "image/png"}},
                        {"inline_data": {"data": B64_2, "mime_type": "image/jpeg"}},
                    ]
                }
            }
        ],
        "usageMetadata": {"promptTokenCount": 5},
    }
    result = parse_prediction(body)
    assert [img.data for img in result.images] == [PNG, PNG2]
    assert [img.content_type for img in result.images] == ["image/png", "image/jpeg"]
    assert result.usage == {"promptTokenCount": 5}


def test_top_level_seeds_apply_by_index():
    body = {"output": [{"url": "https://a.test/1.png"}, {"url": "https://a.test/2.png"}], "seeds": [7, 8]}
    assert [img.seed for img in parse_prediction(body).images] == [7, 8]
    body = {"output": [{"url": "https://a.test/1.png", "seed": 1}], "seed": 99}
    assert parse_prediction(body).images[0].seed == 1


def test_bare_list_body_is_an_output_list():
    assert parse_prediction([{"url": "https://a.test/1.png"}]).images[0].url == "https://a.test/1.png"


@pytest.mark.parametrize(
    "body",
    [
        {"output": []},
        {"output": None},
        {"output": {"b64_json": [], "urls": []}},
        {"created": 1, "data": []},
        {"status": "ok"},
        {"output": ["finished"]},
        "just text",
        None,
    ],
)
def test_nothing_recognisable_raises_response_error(body):
    with pytest.raises(AIHubMixResponseError):
        parse_prediction(body)


def test_error_key_raises_response_error_without_secret_blobs():
    body = {"error": {"message": f"bad thing at {SIGNED}"}}
    with pytest.raises(AIHubMixResponseError) as info:
        parse_prediction(body, request_id="rid-9")
    text = str(info.value)
    assert "bad thing" in text
    assert "bce-auth" not in text
    assert "rid-9" in text


def test_invalid_base64_raises_response_error():
    with pytest.raises(AIHubMixResponseError, match="not valid base64"):
        parse_prediction({"output": [{"b64_json": "%%%not-base64%%%" * 5}]})


# ---- base64 decoding ------------------------------------------------------------------------


def test_decode_tolerates_missing_padding_whitespace_urlsafe_and_data_uri():
    unpadded = B64.rstrip("=")
    assert decode_base64_image(unpadded)[0] == PNG
    wrapped = "\n".join(B64[i : i + 60] for i in range(0, len(B64), 60))
    assert decode_base64_image(wrapped)[0] == PNG
    urlsafe = base64.urlsafe_b64encode(PNG).decode()
    assert decode_base64_image(urlsafe)[0] == PNG
    data, mime = decode_base64_image(f"data:image/webp;base64,{unpadded}")
    assert data == PNG and mime == "image/webp"


def test_decode_rejects_empty_and_broken_data_uri():
    with pytest.raises(AIHubMixResponseError):
        decode_base64_image("")
    with pytest.raises(AIHubMixResponseError):
        decode_base64_image("data:image/png;base64")


# ---- task status ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Pending", TaskStatus.PENDING),
        ("Queued", TaskStatus.PENDING),
        ("Generating", TaskStatus.RUNNING),
        ("processing", TaskStatus.RUNNING),
        ("Ready", TaskStatus.READY),
        ("succeeded", TaskStatus.READY),
        ("completed", TaskStatus.READY),
        ("SUCCESS", TaskStatus.READY),
        ("Error", TaskStatus.ERROR),
        ("Failed", TaskStatus.FAILED),
        ("Request Moderated", TaskStatus.REQUEST_MODERATED),
        ("Content Moderated", TaskStatus.CONTENT_MODERATED),
        ("content_moderated", TaskStatus.CONTENT_MODERATED),
        ("Task not found", TaskStatus.NOT_FOUND),
        ("SomethingNew", TaskStatus.RUNNING),
        (None, TaskStatus.RUNNING),
    ],
)
def test_status_from_string(raw, expected):
    assert status_from_string(raw) is expected


def test_terminal_flags():
    assert not TaskStatus.PENDING.is_terminal and not TaskStatus.RUNNING.is_terminal
    assert TaskStatus.READY.is_terminal and TaskStatus.READY.is_success
    assert TaskStatus.CONTENT_MODERATED.is_terminal and TaskStatus.CONTENT_MODERATED.is_moderated


def test_task_ready_sample_string():
    body = {"id": "t1", "status": "Ready", "result": {"sample": SIGNED, "prompt": "x"}, "progress": None}
    state = parse_task(body, "t1")
    assert state.status is TaskStatus.READY
    assert state.raw_status == "Ready"
    assert state.result_urls == [SIGNED]
    assert state.task_id == "t1"


def test_task_ready_sample_list_and_urls_deduplicated():
    body = {
        "status": "succeeded",
        "result": {
            "sample": ["https://a.test/1.png", "https://a.test/2.png"],
            "urls": ["https://a.test/1.png"],
        },
    }
    assert parse_task(body, "t").result_urls == ["https://a.test/1.png", "https://a.test/2.png"]


def test_task_ready_output_list():
    state = parse_task({"status": "completed", "output": [{"url": "https://a.test/o.png"}]}, "t")
    assert state.status is TaskStatus.READY and state.result_urls == ["https://a.test/o.png"]


def test_task_pending_with_progress_percent():
    state = parse_task({"id": "t", "status": "Pending", "progress": "42%"}, "t")
    assert state.status is TaskStatus.PENDING
    assert state.progress == 42.0
    assert state.result_urls == []


def test_task_moderated_keeps_details_message():
    body = {"status": "Content Moderated", "details": {"message": "Flagged by moderation: nudity"}}
    state = parse_task(body, "t")
    assert state.status is TaskStatus.CONTENT_MODERATED
    assert state.message == "Flagged by moderation: nudity"


def test_task_error_string_and_not_found():
    assert parse_task({"status": "Error", "error": "upstream crashed"}, "t").message == "upstream crashed"
    assert parse_task({"status": "Task not found"}, "gone").status is TaskStatus.NOT_FOUND


def test_task_wrapped_in_data_and_status_missing_with_urls():
    wrapped = {"code": 0, "data": {"status": "Ready", "result": {"sample": SIGNED}}}
    assert parse_task(wrapped, "t").result_urls == [SIGNED]
    state = parse_task({"result": {"sample": SIGNED}}, "t")
    assert state.status is TaskStatus.READY


@pytest.mark.parametrize("body", [{"progress": 3}, ["Ready"], "Ready", None])
def test_task_unrecognised_raises(body):
    with pytest.raises(AIHubMixResponseError):
        parse_task(body, "t")


# ---- scrubbing ------------------------------------------------------------------------------


def test_scrub_text_removes_key_query_and_blobs_then_truncates():
    blob = base64.b64encode(bytes(range(256)) * 8).decode()  # an image-sized base64 run
    text = f'{{"error": "key sk-live-123 rejected", "url": "{SIGNED}", "img": "{blob}"}}' + " tail" * 100
    out = scrub_text(text, ["sk-live-123"])
    assert "sk-live-123" not in out
    assert "bce-auth" not in out and "?<redacted>" in out
    assert blob[:40] not in out and f"<{len(blob)} chars redacted>" in out
    assert len(out) <= 300 and out.endswith("...")
