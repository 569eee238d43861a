"""The shared HTTP rules: settings, retry decisions, error mapping, key scoping, SSRF guard."""

from __future__ import annotations

import email.utils
import json

import httpx
import pytest

from airflow_provider_aihubmix.exceptions import (
    AIHubMixAuthenticationError,
    AIHubMixBadRequestError,
    AIHubMixDownloadError,
    AIHubMixModerationError,
    AIHubMixPossiblyBilledError,
    AIHubMixQuotaError,
    AIHubMixRateLimitError,
    AIHubMixResponseError,
    AIHubMixUnreadableAnswerError,
    AIHubMixUpstreamError,
    AIHubMixValidationError,
)
from airflow_provider_aihubmix.http import (
    DEFAULT_TASKS_BASE_URL,
    AIHubMixSettings,
    ApiKeyAuth,
    ByteBudget,
    RetryPolicy,
    check_download_url,
    json_or_raise,
    models_from_body,
    parse_retry_after,
    redact_url,
    refused_address,
)
from airflow_provider_aihubmix.http import (
    RetryState as Exchange,
)

KEY = "sk-unit-test-key-0123456789"


def _exchange(method: str = "POST", *, billable: bool = False, max_retries: int = 3, **kw) -> Exchange:
    policy = RetryPolicy(max_retries=max_retries, backoff_base=1.0, backoff_cap=8.0, jitter=lambda: 1.0, **kw)
    return Exchange(method, "https://aihubmix.com/v1/x", policy, billable=billable, secrets=(KEY,))


def _response(
    status: int, body: object = None, *, headers: dict[str, str] | None = None, text: str | None = None
):
    request = httpx.Request("POST", "https://aihubmix.com/v1/x")
    if text is not None:
        return httpx.Response(status, text=text, headers=headers, request=request)
    return httpx.Response(status, json=body, headers=headers, request=request)


# ---- settings -------------------------------------------------------------------------------


class _Conn:
    def __init__(self, host=None, password=KEY, extra=None, port=None, schema=None, conn_id="c1"):
        self.host, self.password, self.port, self.schema, self.conn_id = host, password, port, schema, conn_id
        self.extra = json.dumps(extra) if extra is not None else None
        self.extra_dejson = extra or {}


def test_settings_defaults_use_api_subdomain_for_tasks():
    settings = AIHubMixSettings.from_connection(_Conn())
    assert settings.base_url == "https://aihubmix.com"
    assert settings.tasks_url == DEFAULT_TASKS_BASE_URL
    timeout = settings.timeout
    assert (timeout.connect, timeout.read, timeout.write, timeout.pool) == (10.0, 300.0, 60.0, 30.0)


def test_settings_custom_host_serves_tasks_too_and_extras_are_coerced():
    conn = _Conn(
        host="127.0.0.1",
        port=8765,
        schema="http",
        extra={
            "read_timeout": "42",
            "max_retries": "2",
            "allow_private_image_hosts": "true",
            "output_uri": "s3://b/p",
        },
    )
    settings = AIHubMixSettings.from_connection(conn)
    assert settings.base_url == "http://127.0.0.1:8765"
    assert settings.tasks_url == "http://127.0.0.1:8765"
    assert settings.read_timeout == 42.0 and settings.max_retries == 2
    assert settings.allow_private_image_hosts is True
    assert settings.output_uri == "s3://b/p"


def test_settings_strip_v1_suffix_and_legacy_prefixed_extras():
    conn = _Conn(
        host="https://proxy.example.com/v1/", extra={"extra__aihubmix__tasks_base_url": "https://t.example"}
    )
    settings = AIHubMixSettings.from_connection(conn)
    assert settings.base_url == "https://proxy.example.com"
    assert settings.tasks_url == "https://t.example"


def test_settings_without_key_or_with_bad_extra_are_refused():
    with pytest.raises(AIHubMixAuthenticationError, match="no API key"):
        AIHubMixSettings.from_connection(_Conn(password=None))
    with pytest.raises(AIHubMixValidationError, match="read_timeout"):
        AIHubMixSettings.from_connection(_Conn(extra={"read_timeout": "soon"}))
    # "nan" and "inf" parse as floats; the HTTP client refused NaN only once the request was sent.
    for name, value in (("read_timeout", "nan"), ("connect_timeout", "inf"), ("write_timeout", float("nan"))):
        with pytest.raises(AIHubMixValidationError, match=f"'{name}' must be a finite number of seconds"):
            AIHubMixSettings.from_connection(_Conn(extra={name: value}))
    with pytest.raises(AIHubMixValidationError, match="base URL"):
        AIHubMixSettings(api_key=KEY, base_url="ftp://x")


def test_settings_repr_never_shows_the_key():
    settings = AIHubMixSettings(api_key=KEY)
    assert KEY not in repr(settings)
    assert KEY not in str(settings)


def test_fingerprint_changes_with_key():
    assert AIHubMixSettings(api_key=KEY).fingerprint() != AIHubMixSettings(api_key=KEY + "x").fingerprint()


# ---- retry decisions ------------------------------------------------------------------------


def test_parse_retry_after_seconds_date_and_garbage():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 7, usegmt=True)
    assert parse_retry_after(date, now=now) == pytest.approx(7.0, abs=1.0)
    assert parse_retry_after(email.utils.formatdate(now - 50, usegmt=True), now=now) == 0.0


def test_full_jitter_backoff_is_capped():
    policy = RetryPolicy(max_retries=10, backoff_base=1.0, backoff_cap=8.0, jitter=lambda: 1.0)
    assert [policy.backoff(n) for n in range(5)] == [1.0, 2.0, 4.0, 8.0, 8.0]
    half = RetryPolicy(backoff_base=2.0, backoff_cap=100.0, jitter=lambda: 0.25)
    assert half.backoff(3) == pytest.approx(4.0)


def test_delay_for_honours_retry_after_and_budget():
    policy = RetryPolicy(max_retries=2, max_retry_after=60.0, jitter=lambda: 0.0)
    assert policy.delay_for(0, 12.0) == 12.0
    assert policy.delay_for(0, 600.0) is None  # too long to hold a worker slot
    assert policy.delay_for(2, None) is None


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retryable_statuses_retry_even_for_billable_post(status):
    exchange = _exchange(billable=True)
    assert exchange.after_response(_response(status, {"error": {"message": "busy"}})) == 1.0
    assert exchange.attempts == 1


@pytest.mark.parametrize("status", [200, 400, 401, 403, 404])
def test_final_statuses_are_not_retried(status):
    assert _exchange().after_response(_response(status, {"output": []})) is None


def test_retry_after_header_is_used():
    exchange = _exchange()
    assert exchange.after_response(_response(429, {}, headers={"Retry-After": "5"})) == 5.0


def test_rate_limit_error_in_http_200_body_is_retried():
    body = {
        "error": {"message": "Too many requests", "type": "rate_limit_error", "code": "rate_limit_exceeded"}
    }
    assert _exchange().after_response(_response(200, body)) == 1.0


def test_budget_exhaustion_returns_final_response():
    exchange = _exchange(max_retries=1)
    assert exchange.after_response(_response(503, {})) == 1.0
    assert exchange.after_response(_response(503, {})) is None
    assert exchange.attempts == 2


@pytest.mark.parametrize(
    "exc", [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), httpx.PoolTimeout("full")]
)
def test_not_sent_failures_are_retried_even_for_billable_post(exc):
    assert _exchange(billable=True).after_exception(exc) == 1.0


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ReadTimeout("read"),
        httpx.ReadError("reset"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.WriteError("broken pipe"),
        httpx.WriteTimeout("write"),
    ],
)
def test_lost_response_on_billable_post_raises_possibly_billed(exc):
    with pytest.raises(AIHubMixPossiblyBilledError, match="may have been billed"):
        _exchange(billable=True).after_exception(exc)


@pytest.mark.parametrize("exc", [httpx.ReadTimeout("read"), httpx.RemoteProtocolError("reset")])
def test_lost_response_on_get_is_retried(exc):
    assert _exchange("GET").after_exception(exc) == 1.0


def test_connection_failures_exhaust_into_upstream_error():
    exchange = _exchange("GET", max_retries=1)
    exchange.after_exception(httpx.ConnectError("refused"))
    with pytest.raises(AIHubMixUpstreamError, match="ConnectError after 2 attempt"):
        exchange.after_exception(httpx.ConnectError("refused"))


def test_configuration_errors_are_never_retried():
    with pytest.raises(AIHubMixUpstreamError, match="UnsupportedProtocol"):
        _exchange("GET").after_exception(httpx.UnsupportedProtocol("no"))


# ---- error mapping --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "error_type"),
    [
        (
            400,
            {"error": {"message": "prompt is required", "code": "prompt_missing"}},
            AIHubMixBadRequestError,
        ),
        (
            400,
            {"error": {"message": "Your request was rejected by the safety system"}},
            AIHubMixModerationError,
        ),
        (400, {"error": {"message": "x", "code": "moderation_blocked"}}, AIHubMixModerationError),
        (401, {"error": {"message": "Invalid token"}}, AIHubMixAuthenticationError),
        (403, {"error": {"message": "no", "code": "insufficient_user_quota"}}, AIHubMixQuotaError),
        (404, {"error": {"message": "model not found"}}, AIHubMixBadRequestError),
        (429, {"error": {"message": "slow down"}}, AIHubMixRateLimitError),
        (500, {"error": {"message": "oops"}}, AIHubMixUpstreamError),
        (503, {"error": {"message": "no available channel"}}, AIHubMixUpstreamError),
    ],
)
def test_status_mapping(status, body, error_type):
    with pytest.raises(error_type) as info:
        json_or_raise(_response(status, body, headers={"X-Request-Id": "req-42"}), _exchange())
    assert info.value.status_code == status
    assert info.value.request_id == "req-42"
    assert "X-Request-Id=req-42" in str(info.value)
    assert error_type is not AIHubMixModerationError or isinstance(info.value, AIHubMixBadRequestError)


def test_moderation_is_not_confused_with_plain_bad_request():
    with pytest.raises(AIHubMixBadRequestError) as info:
        json_or_raise(
            _response(400, {"error": {"message": "n must be within 1-10", "code": "n_not_within_range"}}),
            _exchange(),
        )
    assert not isinstance(info.value, AIHubMixModerationError)
    assert info.value.code == "n_not_within_range"


@pytest.mark.parametrize(
    ("body", "error_type"),
    [
        ({"error": {"message": "quota gone", "code": "insufficient_user_quota"}}, AIHubMixQuotaError),
        ({"error": {"message": "Invalid API key", "type": "invalid_api_key"}}, AIHubMixAuthenticationError),
        (
            {"error": {"message": "image flagged by content policy", "code": "content_policy_violation"}},
            AIHubMixModerationError,
        ),
        (
            {"error": {"message": "bad size", "code": "size_not_supported", "param": "size"}},
            AIHubMixBadRequestError,
        ),
        ({"error": {"message": "busy", "code": "429"}}, AIHubMixRateLimitError),
        ({"error": "upstream failed"}, AIHubMixBadRequestError),
    ],
)
def test_error_key_in_http_200_body_is_mapped(body, error_type):
    with pytest.raises(error_type) as info:
        json_or_raise(_response(200, body), _exchange())
    assert info.value.status_code is not None


def test_task_failure_detail_beside_a_status_is_left_to_the_parser():
    body = {"status": "Error", "error": "upstream crashed"}
    assert json_or_raise(_response(200, body), _exchange("GET"), status_in_body_is_not_error=True) == body
    with pytest.raises(AIHubMixBadRequestError):
        json_or_raise(_response(200, body), _exchange("GET"))


@pytest.mark.parametrize("text", ["<html>Bad gateway</html>", "{not json", ""])
def test_malformed_success_body_is_a_response_error(text):
    with pytest.raises(AIHubMixResponseError):
        json_or_raise(_response(200, text=text), _exchange())


def test_a_billed_answer_that_is_not_json_keeps_its_text_to_be_saved():
    with pytest.raises(AIHubMixUnreadableAnswerError) as raised:
        json_or_raise(_response(200, text="<html>Bad gateway</html>"), _exchange(billable=True))
    assert raised.value.text == "<html>Bad gateway</html>" and raised.value.body is None


def test_error_messages_scrub_key_signed_urls_and_blobs():
    blob = "A" * 5000
    body = {
        "error": {
            "message": f"Incorrect API key provided: {KEY}. See https://cdn.test/x.png?sig=SECRETSIG",
            "param": blob,
        }
    }
    with pytest.raises(AIHubMixAuthenticationError) as info:
        json_or_raise(_response(401, body), _exchange())
    text = str(info.value)
    assert KEY not in text
    assert "SECRETSIG" not in text
    assert blob[:200] not in text
    assert info.value.body_excerpt is not None and len(info.value.body_excerpt) <= 300


def test_models_from_body_shapes():
    assert models_from_body({"data": [{"id": "b"}, {"id": "a"}, {"id": "a"}]}) == ["a", "b"]
    assert models_from_body(["x", {"name": "y"}]) == ["x", "y"]
    with pytest.raises(AIHubMixResponseError):
        models_from_body({"object": "list"})


# ---- key scoping ----------------------------------------------------------------------------


def test_api_key_auth_only_for_configured_origins():
    settings = AIHubMixSettings(api_key=KEY)
    auth = ApiKeyAuth(settings.api_key, settings.api_origins)
    for url, expected in [
        ("https://aihubmix.com/v1/models", f"Bearer {KEY}"),
        ("https://api.aihubmix.com/v1/tasks/1", f"Bearer {KEY}"),
        ("https://aihubmix.com:443/v1/models", f"Bearer {KEY}"),
        ("http://aihubmix.com/v1/models", None),  # same host, other scheme: not the configured origin
        ("https://api.us1.bfl.ai/v1/get_result?id=1", None),
        ("https://aihubmix.com.evil.test/v1/models", None),
    ]:
        request = httpx.Request("GET", url, headers={"Authorization": "Bearer leaked"})
        sent = next(auth.auth_flow(request))
        assert sent.headers.get("Authorization") == expected, url
    assert KEY not in repr(auth)


# ---- SSRF guard -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",
        "169.254.170.2",
        "100.100.100.200",
        "fe80::1",
        "fd00:ec2::254",
        "10.0.0.5",
        "192.168.1.2",
        "172.16.0.1",
        "0.0.0.0",
        "::ffff:169.254.169.254",
        "224.0.0.1",
    ],
)
def test_refused_addresses(address):
    assert refused_address(address) is not None


@pytest.mark.parametrize("address", ["8.8.8.8", "2001:4860:4860::8888", "not-an-ip"])
def test_allowed_addresses(address):
    assert refused_address(address) is None


@pytest.mark.parametrize("address", ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"])
def test_loopback_is_refused_unless_allowed(address):
    assert "loopback" in (refused_address(address) or "")
    assert refused_address(address, allow_loopback=True) is None


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/a.png",
        "gopher://x/",
        "http://169.254.169.254/latest/meta-data/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://[fe80::1]/x.png",
        "http://100.100.100.200/latest/meta-data",
    ],
)
def test_check_download_url_refuses(url):
    with pytest.raises(AIHubMixDownloadError, match="Refusing"):
        check_download_url(url, None, allow_private=False)


def test_check_download_url_refuses_hostnames_resolving_inside():
    with pytest.raises(AIHubMixDownloadError, match=r"resolves to 169\.254\.169\.254, a cloud metadata"):
        check_download_url(
            "https://rebind.example/x.png", ["93.184.216.34", "169.254.169.254"], allow_private=False
        )


def test_check_download_url_allows_public_loopback_and_opt_out():
    check_download_url("https://cdn.example/x.png?sig=1", ["93.184.216.34"], allow_private=False)
    check_download_url("http://127.0.0.1:8080/x.png", None, allow_private=False, allow_loopback=True)
    check_download_url("http://localhost:8080/x.png", ["127.0.0.1"], allow_private=False, allow_loopback=True)
    with pytest.raises(AIHubMixDownloadError, match="loopback"):
        check_download_url("http://localhost:8080/x.png", None, allow_private=False)
    with pytest.raises(AIHubMixDownloadError, match=r"resolves to 127\.0\.0\.1"):
        check_download_url("http://sneaky.example/x.png", ["127.0.0.1"], allow_private=False)
    check_download_url("http://169.254.169.254/x.png", None, allow_private=True)
    with pytest.raises(AIHubMixDownloadError):
        check_download_url("file:///x.png", None, allow_private=True)


def test_refusal_message_hides_signed_query():
    with pytest.raises(AIHubMixDownloadError) as info:
        check_download_url("http://10.1.2.3/img.png?X-Amz-Signature=TOPSECRET", None, allow_private=False)
    assert "TOPSECRET" not in str(info.value)
    assert redact_url("https://u:p@h.test/a.png?x=1") == "https://h.test/a.png"


# ---- byte accounting ------------------------------------------------------------------------


def test_byte_budget_limits_and_truncation():
    budget = ByteBudget("https://h.test/a.png?sig=S", content_length=10, max_bytes=None)
    budget.add(b"12345")
    with pytest.raises(AIHubMixDownloadError, match="truncated: received 5 of 10") as info:
        budget.finish(5)
    assert "sig=S" not in str(info.value)
    ok = ByteBudget("https://h.test/a.png", content_length=3, max_bytes=None)
    ok.add(b"abc")
    ok.finish(3)
    with pytest.raises(AIHubMixDownloadError, match="over the limit"):
        ByteBudget("https://h.test/a.png", content_length=100, max_bytes=10)
    small = ByteBudget("https://h.test/a.png", content_length=None, max_bytes=4)
    small.add(b"abcd")
    with pytest.raises(AIHubMixDownloadError, match="exceeds the limit"):
        small.add(b"e")
