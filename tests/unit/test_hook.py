"""AIHubMixHook over httpx.MockTransport: retries, billing safety, key scoping, downloads, async twins."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Callable

import httpx
import pytest
from PIL import Image

from airflow_provider_aihubmix.catalog.models import resolve_model
from airflow_provider_aihubmix.connection import CONN_FIELDS
from airflow_provider_aihubmix.exceptions import (
    AIHubMixAuthenticationError,
    AIHubMixDownloadError,
    AIHubMixModerationError,
    AIHubMixPossiblyBilledError,
    AIHubMixRateLimitError,
    AIHubMixUpstreamError,
    AIHubMixValidationError,
)
from airflow_provider_aihubmix.hooks.aihubmix import (
    AIHubMixHook,
    aclose_shared_clients,
    shared_async_client,
)
from airflow_provider_aihubmix.http import AIHubMixSettings
from airflow_provider_aihubmix.responses.shapes import TaskStatus

KEY = "sk-hook-unit-secret-abcdef123456"
BASE = "https://aihubmix.com"
TASKS = "https://api.aihubmix.com"


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 10)).save(buffer, format="PNG")
    return buffer.getvalue()


PNG = _png()
B64 = base64.b64encode(PNG).decode()

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport handler that answers from a script and records every request."""

    def __init__(self, *answers: httpx.Response | Exception | Handler) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer) and not isinstance(answer, httpx.Response):
            return answer(request)
        return answer

    def posts(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == "POST"]


def ok_openai() -> httpx.Response:
    body = {
        "output": {"b64_json": [{"bytesBase64": B64, "mimeType": "png"}], "urls": []},
        "usage": {"total_tokens": 9},
    }
    return httpx.Response(200, json=body, headers={"X-Request-Id": "rid-ok"})


def make_hook(recorder: Recorder, *, sleeps: list[float] | None = None, **kwargs) -> AIHubMixHook:
    record = sleeps if sleeps is not None else []
    return AIHubMixHook(
        api_key=KEY,
        transport=httpx.MockTransport(recorder),
        sleep=record.append,
        jitter=lambda: 0.5,
        resolver=lambda host: ["93.184.216.34"],
        **kwargs,
    )


def make_async_hook(recorder: Recorder, *, sleeps: list[float] | None = None, **kwargs) -> AIHubMixHook:
    record = sleeps if sleeps is not None else []

    async def async_sleep(seconds: float) -> None:
        record.append(seconds)

    return AIHubMixHook(
        api_key=KEY,
        async_transport=httpx.MockTransport(recorder),
        async_sleep=async_sleep,
        jitter=lambda: 0.5,
        resolver=lambda host: ["93.184.216.34"],
        **kwargs,
    )


# ---- predict --------------------------------------------------------------------------------


def test_predict_posts_input_to_model_path_with_key_and_parses_images():
    recorder = Recorder(ok_openai())
    result = make_hook(recorder).predict("gpt-image-1", {"prompt": "a green square", "size": "1024x1024"})
    (request,) = recorder.requests
    assert str(request.url) == f"{BASE}/v1/models/openai/gpt-image-1/predictions"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert json.loads(request.content)["input"]["prompt"] == "a green square"
    assert result.images[0].data == PNG
    assert result.request_id == "rid-ok"
    assert result.usage == {"total_tokens": 9}


def test_predict_generations_endpoint_sends_flat_body():
    answer = httpx.Response(200, json={"created": 1, "data": [{"b64_json": B64, "revised_prompt": "rp"}]})
    recorder = Recorder(answer)
    result = make_hook(recorder).predict("FLUX.1-Kontext-pro", {"prompt": "a cat"})
    (request,) = recorder.requests
    assert request.url.path == "/v1/images/generations"
    body = json.loads(request.content)
    assert body["model"] == "FLUX.1-Kontext-pro" and body["prompt"] == "a cat"
    assert result.images[0].revised_prompt == "rp"


def test_predict_async_model_returns_task_handle():
    answer = httpx.Response(
        200, json={"output": [{"taskId": "api.us1.t1", "polling_url": "https://api.us1.bfl.ai/r?id=1"}]}
    )
    result = make_hook(Recorder(answer)).predict(resolve_model("flux-2-pro"), {"prompt": "a fox"})
    assert result.is_async and result.task is not None
    assert result.task.task_id == "api.us1.t1"


def test_invalid_input_fails_before_any_http():
    recorder = Recorder(ok_openai())
    with pytest.raises(AIHubMixValidationError):
        make_hook(recorder).predict("gpt-image-1", {"prompt": "x", "n": 99})
    assert recorder.requests == []


def test_429_with_retry_after_is_honoured_then_succeeds():
    sleeps: list[float] = []
    recorder = Recorder(
        httpx.Response(429, json={"error": {"message": "slow"}}, headers={"Retry-After": "3"}),
        httpx.Response(429, json={"error": {"message": "slow"}}),
        ok_openai(),
    )
    result = make_hook(recorder, sleeps=sleeps).predict("gpt-image-1", {"prompt": "p"})
    assert len(recorder.posts()) == 3
    assert sleeps == [3.0, 0.5 * 2.0]  # Retry-After, then full-jitter backoff of attempt 2
    assert result.images


def test_503_retried_on_billable_post_then_succeeds():
    recorder = Recorder(httpx.Response(503, json={"error": {"message": "no channel"}}), ok_openai())
    assert make_hook(recorder).predict("gpt-image-1", {"prompt": "p"}).images
    assert len(recorder.posts()) == 2


def test_rate_limit_budget_exhausted_raises_with_attempt_count():
    recorder = Recorder(
        httpx.Response(429, json={"error": {"message": "slow"}}, headers={"X-Request-Id": "r429"})
    )
    with pytest.raises(AIHubMixRateLimitError, match="after 3 attempts") as info:
        make_hook(recorder, max_retries=2).predict("gpt-image-1", {"prompt": "p"})
    assert len(recorder.posts()) == 3
    assert info.value.request_id == "r429"


def test_retry_after_too_long_is_not_slept_through():
    sleeps: list[float] = []
    recorder = Recorder(httpx.Response(429, json={}, headers={"Retry-After": "3600"}))
    with pytest.raises(AIHubMixRateLimitError):
        make_hook(recorder, sleeps=sleeps).predict("gpt-image-1", {"prompt": "p"})
    assert sleeps == [] and len(recorder.requests) == 1


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
    ],
)
def test_lost_response_on_predict_is_not_retried(exc):
    recorder = Recorder(exc)
    with pytest.raises(AIHubMixPossiblyBilledError, match="may have been billed"):
        make_hook(recorder).predict("gpt-image-1", {"prompt": "p"})
    assert len(recorder.posts()) == 1


def test_connect_error_on_predict_is_retried():
    recorder = Recorder(httpx.ConnectError("refused"), ok_openai())
    assert make_hook(recorder).predict("gpt-image-1", {"prompt": "p"}).images
    assert len(recorder.posts()) == 2


def test_moderation_400_is_typed_and_not_retried():
    body = {
        "error": {"message": "Your request was rejected by the safety system", "code": "moderation_blocked"}
    }
    recorder = Recorder(httpx.Response(400, json=body))
    with pytest.raises(AIHubMixModerationError):
        make_hook(recorder).predict("gpt-image-1", {"prompt": "p"})
    assert len(recorder.requests) == 1


def test_error_in_http_200_body_is_raised():
    body = {"error": {"message": "quota", "code": "insufficient_user_quota"}}
    with pytest.raises(Exception, match="insufficient quota"):
        make_hook(Recorder(httpx.Response(200, json=body))).predict("gpt-image-1", {"prompt": "p"})


def test_key_never_in_exception_text_or_logs(caplog):
    caplog.set_level(logging.DEBUG)
    echo = {"error": {"message": f"Incorrect API key provided: {KEY}", "type": "invalid_request_error"}}
    recorder = Recorder(
        httpx.Response(503, json={"error": {"message": f"upstream saw {KEY}"}}),
        httpx.Response(401, json=echo),
    )
    with pytest.raises(AIHubMixAuthenticationError) as info:
        make_hook(recorder).predict("gpt-image-1", {"prompt": "p"})
    assert KEY not in str(info.value)
    assert KEY not in repr(info.value.args)
    assert KEY not in caplog.text
    assert "retry 1/" in caplog.text  # the retry was logged, just without the key


# ---- tasks ----------------------------------------------------------------------------------


def test_get_task_goes_to_tasks_host_with_key_and_parses():
    body = {"id": "api.us1.t1", "status": "Ready", "result": {"sample": "https://bfl.test/s.png?sig=1"}}
    recorder = Recorder(httpx.Response(200, json=body))
    state = make_hook(recorder).get_task("api.us1.t1")
    (request,) = recorder.requests
    assert str(request.url) == f"{TASKS}/v1/tasks/api.us1.t1"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert state.status is TaskStatus.READY
    assert state.result_urls == ["https://bfl.test/s.png?sig=1"]


def test_get_task_quotes_ids_and_retries_lost_responses():
    recorder = Recorder(httpx.ReadTimeout("slow"), httpx.Response(200, json={"status": "Pending"}))
    state = make_hook(recorder).get_task("a/b c")
    assert len(recorder.requests) == 2
    assert recorder.requests[0].url.raw_path == b"/v1/tasks/a%2Fb%20c"
    assert state.status is TaskStatus.PENDING


def test_get_task_404_is_not_found_state_but_500_raises():
    state = make_hook(Recorder(httpx.Response(404, json={"error": {"message": "no"}}))).get_task("gone")
    assert state.status is TaskStatus.NOT_FOUND
    with pytest.raises(AIHubMixUpstreamError):
        make_hook(Recorder(httpx.Response(500, json={})), max_retries=0).get_task("t")


def test_task_error_body_is_a_failed_state_not_an_exception():
    recorder = Recorder(httpx.Response(200, json={"status": "Error", "error": "upstream crashed"}))
    state = make_hook(recorder).get_task("t")
    assert state.status is TaskStatus.ERROR and state.message == "upstream crashed"


# ---- models / connection test ---------------------------------------------------------------


def test_list_models_and_test_connection_success():
    recorder = Recorder(
        httpx.Response(200, json={"data": [{"id": "gpt-image-1"}, {"id": "imagen-4.0-generate-001"}]})
    )
    hook = make_hook(recorder)
    assert hook.list_models() == ["gpt-image-1", "imagen-4.0-generate-001"]
    ok, message = hook.test_connection()
    assert ok and "2 models" in message
    assert [r.url.path for r in recorder.requests[-2:]] == ["/v1/models", "/api/v1/models"]


def test_test_connection_bad_key_never_shows_key():
    echo = {"error": {"message": f"Invalid token {KEY}"}}
    ok, message = make_hook(Recorder(httpx.Response(401, json=echo))).test_connection()
    assert not ok
    assert message.startswith("API key rejected (HTTP 401)")
    assert KEY not in message


def test_test_connection_unreachable():
    recorder = Recorder(httpx.ConnectError("Connection refused"))
    ok, message = make_hook(recorder).test_connection()
    assert not ok and "ConnectError" in message
    assert len(recorder.requests) == 2  # one retry at most: a person is waiting in the UI


# ---- downloads ------------------------------------------------------------------------------


def test_download_without_authorization_header():
    recorder = Recorder(httpx.Response(200, content=PNG, headers={"Content-Type": "image/png"}))
    data = make_hook(recorder).download("https://bj.bcebos.com/a.png?authorization=sig")
    assert data == PNG
    assert "Authorization" not in recorder.requests[0].headers


def test_stream_download_exposes_type_and_length():
    recorder = Recorder(httpx.Response(200, content=PNG, headers={"Content-Type": "image/png"}))
    with make_hook(recorder).stream_download("https://cdn.test/a.png") as download:
        assert download.content_type == "image/png"
        assert download.content_length == len(PNG)
        chunks = list(download.iter_bytes(chunk_size=16))
    assert b"".join(chunks) == PNG


def test_truncated_body_is_detected():
    short = httpx.Response(200, content=PNG[:20], headers={"Content-Length": str(len(PNG))})
    with (
        pytest.raises(AIHubMixDownloadError, match=f"received 20 of {len(PNG)}"),
        make_hook(Recorder(short)).stream_download("https://cdn.test/a.png") as download,
    ):
        download.read()


def test_download_refetches_a_truncated_body():
    sleeps: list[float] = []
    short = httpx.Response(200, content=PNG[:20], headers={"Content-Length": str(len(PNG))})
    recorder = Recorder(short, httpx.Response(200, content=PNG))
    assert make_hook(recorder, sleeps=sleeps).download("https://cdn.test/a.png") == PNG
    assert len(recorder.requests) == 2 and len(sleeps) == 1


def test_max_bytes_enforced_with_and_without_content_length():
    big = httpx.Response(200, content=PNG)
    with pytest.raises(AIHubMixDownloadError, match="over the limit"):
        make_hook(Recorder(big)).download("https://cdn.test/a.png", max_bytes=10)

    def chunked(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=iter([PNG[:30], PNG[30:]]))  # no Content-Length

    with pytest.raises(AIHubMixDownloadError, match="exceeds the limit"):
        make_hook(Recorder(chunked)).download("https://cdn.test/a.png", max_bytes=40)


@pytest.mark.parametrize("status", [403, 404])
def test_expired_or_missing_url(status):
    recorder = Recorder(httpx.Response(status, text="AccessDenied"))
    with pytest.raises(AIHubMixDownloadError, match="expired or missing") as info:
        make_hook(recorder).download("https://tos.test/a.png?X-Tos-Signature=SECRET")
    assert "SECRET" not in str(info.value)
    assert len(recorder.requests) == 1


def test_download_5xx_retried():
    recorder = Recorder(httpx.Response(502), httpx.Response(200, content=PNG))
    assert make_hook(recorder).download("https://cdn.test/a.png") == PNG
    assert len(recorder.requests) == 2


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/iam",
        "http://metadata.google.internal/x",
        "file:///etc/passwd",
    ],
)
def test_ssrf_refused_before_any_request(url):
    recorder = Recorder(httpx.Response(200, content=PNG))
    with pytest.raises(AIHubMixDownloadError, match="Refusing"):
        make_hook(recorder).download(url)
    assert recorder.requests == []


def test_ssrf_refuses_dns_to_private_and_redirect_to_metadata():
    recorder = Recorder(httpx.Response(200, content=PNG))
    hook = AIHubMixHook(
        api_key=KEY, transport=httpx.MockTransport(recorder), resolver=lambda host: ["10.0.0.7"]
    )
    with pytest.raises(AIHubMixDownloadError, match=r"resolves to 10\.0\.0\.7"):
        hook.download("https://innocent.example/a.png")

    redirect = Recorder(
        httpx.Response(302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}),
        httpx.Response(200, content=b"secret-credentials"),
    )
    with pytest.raises(AIHubMixDownloadError, match="metadata"):
        make_hook(redirect).download("https://cdn.test/a.png")
    assert len(redirect.requests) == 1


def test_private_hosts_allowed_when_opted_out():
    recorder = Recorder(httpx.Response(200, content=PNG))
    hook = make_hook(recorder, allow_private_image_hosts=True)
    assert hook.download("http://10.0.0.7/a.png") == PNG


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9999/a.png", "http://localhost/a.png", "http://[::1]/a.png", "http://127.8.0.1/a"],
)
def test_loopback_refused_unless_the_api_is_on_loopback(url):
    # An answer's image URL must not make a worker probe its own local services.
    recorder = Recorder(httpx.Response(200, content=PNG))
    with pytest.raises(AIHubMixDownloadError, match="loopback"):
        make_hook(recorder).download(url)
    assert recorder.requests == []
    assert make_hook(recorder, base_url="http://127.0.0.1:8080").download(url) == PNG
    assert make_hook(recorder, allow_private_image_hosts=True).download(url) == PNG


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://cdn.example/a.png", "gopher://x/a"])
def test_non_http_image_urls_are_refused_by_name(url):
    recorder = Recorder(httpx.Response(200, content=PNG))
    with pytest.raises(AIHubMixDownloadError, match=url.split(":", 1)[0] + "://"):
        make_hook(recorder, allow_private_image_hosts=True).download(url)
    assert recorder.requests == []


# ---- async twins ----------------------------------------------------------------------------


async def test_apredict_retries_with_async_sleep_and_parses():
    sleeps: list[float] = []
    recorder = Recorder(httpx.Response(503, json={}, headers={"Retry-After": "2"}), ok_openai())
    hook = make_async_hook(recorder, sleeps=sleeps)
    result = await hook.apredict("gpt-image-1", {"prompt": "p"})
    assert result.images[0].data == PNG
    assert sleeps == [2.0]
    assert recorder.requests[-1].headers["Authorization"] == f"Bearer {KEY}"
    await hook.aclose()


async def test_apredict_lost_response_is_possibly_billed():
    recorder = Recorder(httpx.ReadTimeout("slow"))
    hook = make_async_hook(recorder)
    with pytest.raises(AIHubMixPossiblyBilledError):
        await hook.apredict("gpt-image-1", {"prompt": "p"})
    assert len(recorder.posts()) == 1
    await hook.aclose()


async def test_apredict_validation_before_http():
    recorder = Recorder(ok_openai())
    hook = make_async_hook(recorder)
    with pytest.raises(AIHubMixValidationError):
        await hook.apredict("gpt-image-1", {"prompt": ""})
    assert recorder.requests == []


async def test_aget_task_and_adownload():
    task = {"id": "t", "status": "succeeded", "result": {"sample": ["https://bfl.test/x.png?sig=s"]}}
    recorder = Recorder(httpx.Response(200, json=task), httpx.Response(200, content=PNG))
    hook = make_async_hook(recorder)
    state = await hook.aget_task("t")
    assert state.status is TaskStatus.READY
    data = await hook.adownload(state.result_urls[0])
    assert data == PNG
    assert "Authorization" in recorder.requests[0].headers
    assert "Authorization" not in recorder.requests[1].headers
    await hook.aclose()


async def test_astream_download_truncation_and_ssrf():
    short = httpx.Response(200, content=PNG[:5], headers={"Content-Length": str(len(PNG))})
    hook = make_async_hook(Recorder(short))
    with pytest.raises(AIHubMixDownloadError, match="truncated"):
        async with hook.astream_download("https://cdn.test/a.png") as download:
            await download.aread()
    with pytest.raises(AIHubMixDownloadError, match="Refusing"):
        async with hook.astream_download("http://100.100.100.200/latest/meta-data"):
            pass
    await hook.aclose()


# ---- construction, connection, shared clients -----------------------------------------------


def test_hook_from_connection_env(monkeypatch):
    conn = {
        "conn_type": "aihubmix",
        "host": "http://127.0.0.1:18080",
        "password": KEY,
        "extra": {"read_timeout": "45", "output_uri": "file:///tmp/out"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_AIHUBMIX_UNIT", json.dumps(conn))
    hook = AIHubMixHook("aihubmix_unit", max_retries=1)
    assert hook.base_url == "http://127.0.0.1:18080"
    assert hook.tasks_base_url == "http://127.0.0.1:18080"
    assert hook.output_uri == "file:///tmp/out"
    assert hook.settings.read_timeout == 45.0
    assert hook.settings.max_retries == 1  # explicit kwarg overrides the connection
    client = hook.get_conn()
    assert client is hook.get_conn()
    assert str(client.base_url).rstrip("/") == "http://127.0.0.1:18080"
    hook.close()


async def test_aget_settings_uses_async_connection_api(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_AIHUBMIX_UNIT2", json.dumps({"conn_type": "aihubmix", "password": KEY}))
    hook = await AIHubMixHook.afrom_conn_id("aihubmix_unit2")
    assert hook.settings.base_url == BASE and hook.settings.tasks_url == TASKS
    assert hook.settings.conn_id == "aihubmix_unit2"


async def test_shared_async_client_one_per_connection_and_loop(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_AIHUBMIX_S1", json.dumps({"conn_type": "aihubmix", "password": KEY}))
    monkeypatch.setenv(
        "AIRFLOW_CONN_AIHUBMIX_S2", json.dumps({"conn_type": "aihubmix", "password": KEY + "2"})
    )
    first = await shared_async_client("aihubmix_s1")
    assert await shared_async_client("aihubmix_s1") is first
    hook = AIHubMixHook("aihubmix_s1")
    assert await hook.aget_async_client() is first
    other = await shared_async_client("aihubmix_s2")
    assert other is not first
    rotated = await shared_async_client(
        "aihubmix_s1", settings=AIHubMixSettings(api_key=KEY + "-rotated", conn_id="aihubmix_s1")
    )
    assert rotated is not first
    await aclose_shared_clients()
    assert rotated.is_closed and other.is_closed


def test_from_settings_needs_no_connection():
    settings = AIHubMixSettings(api_key=KEY, base_url="http://127.0.0.1:1", read_timeout=7)
    hook = AIHubMixHook.from_settings(settings)
    assert hook.settings is settings
    assert hook.get_conn().timeout.read == 7
    hook.close()


def test_connection_form_metadata():
    behaviour = AIHubMixHook.get_ui_field_behaviour()
    assert behaviour["relabeling"] == {"host": "Base URL", "password": "API Key"}
    assert {"schema", "port", "login"} <= set(behaviour["hidden_fields"])
    assert behaviour["placeholders"]["host"] == BASE
    assert set(CONN_FIELDS) == {
        "tasks_base_url",
        "output_uri",
        "connect_timeout",
        "read_timeout",
        "max_retries",
        "allow_private_image_hosts",
        "on_possibly_billed",
    }


def test_test_connection_without_key_says_so(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_AIHUBMIX_NOKEY", json.dumps({"conn_type": "aihubmix", "host": BASE}))
    ok, message = AIHubMixHook("aihubmix_nokey").test_connection()
    assert not ok
    assert "has no API key" in message and "aihubmix_nokey" in message


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("sk-secret-1234\r\nX-Other: 1", "a control character (a line break?) at position 14"),
        ("sk-secret-1234\tmore", "a control character (a line break?) at position 14"),
        ("sk-s\u00e9cret-1234", "a non-ASCII character at position 4"),
    ],
)
def test_a_key_that_cannot_go_in_a_header_is_refused_without_showing_it(monkeypatch, password, problem):
    # The HTTP library's own error quotes the header escaped ('\\r\\n'): the key would reach the
    # task log past any exact-match masking.
    connection = {"conn_type": "aihubmix", "host": BASE, "password": password}
    monkeypatch.setenv("AIRFLOW_CONN_AIHUBMIX_BADKEY", json.dumps(connection))
    with pytest.raises(AIHubMixAuthenticationError) as err:
        _ = AIHubMixHook("aihubmix_badkey").settings
    message = str(err.value)
    assert problem in message and "'aihubmix_badkey'" in message and "printable ASCII" in message
    assert "secret" not in message and "s\u00e9cret" not in message
    ok, tested = AIHubMixHook("aihubmix_badkey").test_connection()
    assert not ok and problem in tested and "secret" not in tested


def test_a_key_with_surrounding_whitespace_is_trimmed():
    assert AIHubMixSettings(api_key="  sk-abc\n", base_url=BASE).api_key == "sk-abc"
