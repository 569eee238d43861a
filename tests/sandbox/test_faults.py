"""Faults on the API: statuses, lost connections, spoiled bodies, and how rules match."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from airflow_provider_aihubmix.sandbox import SandboxServer
from tests.sandbox.helpers import error_of, predict

QWEN = "qianfan/qwen-image"


def _qwen(api: httpx.Client, **kwargs: object) -> httpx.Response:
    return api.post(f"/v1/models/{QWEN}/predictions", json={"input": {"prompt": "x"}}, **kwargs)  # type: ignore[arg-type]


def test_429_with_retry_after(sandbox: SandboxServer, api: httpx.Client) -> None:
    sandbox.client.inject(kind="status", status=429, retry_after=3, count=1)
    response = _qwen(api)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert error_of(response)["code"] == "rate_limit_exceeded"
    assert _qwen(api).status_code == 200


def test_429_without_retry_after(sandbox: SandboxServer, api: httpx.Client) -> None:
    sandbox.client.inject(kind="status", status=429, count=1)
    response = _qwen(api)
    assert response.status_code == 429
    assert "retry-after" not in response.headers


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_not_billed(sandbox: SandboxServer, api: httpx.Client, status: int) -> None:
    sandbox.client.inject(kind="status", status=status, count=2)
    assert [_qwen(api).status_code for _ in range(3)] == [status, status, 200]
    records = sandbox.client.requests(path="predictions")
    assert [r["billed"] for r in records] == [False, False, True]
    assert [r["fault"] for r in records] == ["status", "status", None]


def test_drop_closes_before_processing(sandbox: SandboxServer, api: httpx.Client) -> None:
    sandbox.client.inject(kind="drop", count=1)
    with pytest.raises(httpx.RemoteProtocolError):
        predict(api, "bfl/flux-2-pro", prompt="x")
    (record,) = sandbox.client.requests()
    assert record["fault"] == "drop" and record["status"] is None and record["billed"] is False
    assert sandbox.client.tasks() == []


def test_reset_after_send_processes_and_bills(sandbox: SandboxServer, api: httpx.Client) -> None:
    sandbox.client.inject(kind="reset_after_send", count=1)
    with pytest.raises(httpx.RemoteProtocolError):
        predict(api, "bfl/flux-2-pro", prompt="x")
    (record,) = sandbox.client.requests()
    assert record["fault"] == "reset_after_send" and record["billed"] is True
    assert len(sandbox.client.tasks()) == 1  # the task exists though its id never arrived
    assert sandbox.client.billed_count("predictions") == 1


def test_slow_is_processed_then_answered_late(sandbox: SandboxServer, api: httpx.Client) -> None:
    sandbox.client.inject(kind="slow", delay_s=3, count=1)
    with pytest.raises(httpx.ReadTimeout):
        _qwen(api, timeout=httpx.Timeout(10, read=0.3))
    # The client gave up, but the gateway had already accepted (and billed) the request.
    assert sandbox.client.billed_count() == 1


def test_slow_answer_arrives(sandbox: SandboxServer, api: httpx.Client) -> None:
    sandbox.client.inject(kind="slow", delay_s=0.2, count=1)
    assert _qwen(api).status_code == 200


def test_error_200(sandbox: SandboxServer, api: httpx.Client) -> None:
    sandbox.client.inject(kind="error_200", status=503, message="upstream busy", count=1)
    response = _qwen(api)
    assert response.status_code == 200
    error = error_of(response)
    assert error["code"] == "no_available_channel" and error["message"].startswith("upstream busy")
    assert sandbox.client.billed_count() == 0


def test_malformed_json(sandbox: SandboxServer, api: httpx.Client) -> None:
    sandbox.client.inject(kind="malformed_json", count=1)
    response = _qwen(api)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)
    assert sandbox.client.billed_count() == 1


def test_unknown_shape(sandbox: SandboxServer, api: httpx.Client) -> None:
    sandbox.client.inject(kind="unknown_shape", count=1)
    body = _qwen(api).json()
    assert not {"output", "data", "error", "images", "url"} & set(body)


def test_moderation_fault(sandbox: SandboxServer, api: httpx.Client) -> None:
    sandbox.client.inject(kind="moderation", count=1)
    assert error_of(_qwen(api))["code"] == "moderation_blocked"


def test_header_fault_applies_to_that_request_only(sandbox: SandboxServer, api: httpx.Client) -> None:
    response = _qwen(api, headers={"X-Sandbox-Fault": "status;status=503;retry_after=1.5"})
    assert response.status_code == 503 and response.headers["retry-after"] == "1.5"
    assert _qwen(api).status_code == 200
    with pytest.raises(httpx.RemoteProtocolError):
        _qwen(api, headers={"X-Sandbox-Fault": "drop"})


def test_bad_header_fault_is_400(api: httpx.Client) -> None:
    response = _qwen(api, headers={"X-Sandbox-Fault": "explode"})
    assert response.status_code == 400
    assert error_of(response)["code"] == "bad_sandbox_fault"


def test_rule_matches_path_and_method(sandbox: SandboxServer, api: httpx.Client) -> None:
    sandbox.client.inject(kind="status", status=500, path=r"/v1/tasks/", method="GET")
    assert _qwen(api).status_code == 200
    assert api.get("/v1/models").status_code == 200
    assert api.get("/v1/tasks/abc").status_code == 500
    assert api.get("/v1/tasks/abc").status_code == 500  # no count: lasts until cleared
    sandbox.client.clear_faults()
    assert api.get("/v1/tasks/abc").status_code == 200


def test_rule_for_a_duration(sandbox: SandboxServer, api: httpx.Client) -> None:
    sandbox.client.inject(kind="status", status=502, duration_s=0.3)
    assert api.get("/v1/models").status_code == 502
    time.sleep(0.4)
    assert api.get("/v1/models").status_code == 200
    assert sandbox.client.faults() == []


def test_probability_is_seeded(sandbox: SandboxServer, api: httpx.Client) -> None:
    def run() -> list[int]:
        sandbox.client.reset()
        sandbox.client.inject(kind="status", status=503, probability=0.5)
        return [api.get("/v1/models").status_code for _ in range(30)]

    first, second = run(), run()
    assert first == second
    assert {200, 503} == set(first)


def test_rules_target_the_api_unless_told(
    sandbox: SandboxServer, api: httpx.Client, anon: httpx.Client
) -> None:
    url = _qwen(api).json()["output"][0]["url"]
    sandbox.client.inject(kind="status", status=500)
    assert anon.get(url).status_code == 200
    sandbox.client.clear_faults()
    sandbox.client.inject(kind="status", status=500, host="storage")
    assert anon.get(url).status_code == 500
    assert api.get("/v1/models").status_code == 200
    sandbox.client.inject(kind="status", status=502, host="any")
    assert api.get("/v1/models").status_code == 502


@pytest.mark.parametrize(
    "rule",
    [
        {"kind": "teleport"},
        {"kind": "status", "status": 42},
        {"kind": "status", "path": "("},
        {"kind": "drop", "x": 1},
    ],
)
def test_bad_rules_are_refused(sandbox: SandboxServer, rule: dict[str, object]) -> None:
    response = httpx.post(f"{sandbox.base_url}/_sandbox/faults", json=rule)
    assert response.status_code == 400
    assert sandbox.client.faults() == []


def test_control_api_is_never_faulted_or_logged(sandbox: SandboxServer) -> None:
    sandbox.client.inject(kind="drop", host="any")
    assert sandbox.client.health()["ok"] is True
    assert sandbox.client.requests() == []
