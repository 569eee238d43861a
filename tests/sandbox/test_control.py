"""The request log, settings and reset, through ``SandboxClient``."""

from __future__ import annotations

import httpx
import pytest

from airflow_provider_aihubmix.sandbox import SandboxServer
from tests.sandbox.helpers import KEY, predict


def test_record_fields(sandbox: SandboxServer, api: httpx.Client) -> None:
    predict(api, "qianfan/qwen-image", prompt="logged", n=2)
    (record,) = sandbox.client.requests()
    assert set(record) >= {
        "seq",
        "time",
        "host",
        "method",
        "path",
        "headers",
        "json",
        "status",
        "billed",
        "fault",
    }
    assert record["host"] == "api" and record["method"] == "POST"
    assert record["path"] == "/v1/models/qianfan/qwen-image/predictions"
    assert record["json"] == {"input": {"prompt": "logged", "n": 2}}
    assert record["status"] == 200 and record["billed"] is True and record["fault"] is None
    # Nothing is redacted: tests scan the log for the key.
    assert record["headers"]["authorization"] == f"Bearer {KEY}"


def test_filters_and_order(sandbox: SandboxServer, api: httpx.Client, anon: httpx.Client) -> None:
    url = predict(api, "qianfan/qwen-image", prompt="x").json()["output"][0]["url"]
    api.get("/v1/models")
    anon.get(url)
    records = sandbox.client.requests()
    assert [r["seq"] for r in records] == sorted(r["seq"] for r in records)
    assert [r["host"] for r in records] == ["api", "api", "storage"]
    assert [r["path"] for r in sandbox.client.requests(host="api", path="models$")] == ["/v1/models"]
    assert len(sandbox.client.requests(host="storage")) == 1
    assert sandbox.client.requests(path="^/nothing") == []


def test_bad_path_filter_is_400(sandbox: SandboxServer) -> None:
    assert httpx.get(f"{sandbox.base_url}/_sandbox/requests", params={"path": "("}).status_code == 400


def test_clear_requests(sandbox: SandboxServer, api: httpx.Client) -> None:
    api.get("/v1/models")
    sandbox.client.clear_requests()
    assert sandbox.client.requests() == []


def test_billed_count_filters_by_path(sandbox: SandboxServer, api: httpx.Client) -> None:
    predict(api, "qianfan/qwen-image", prompt="x")
    predict(api, "bfl/flux-2-pro", prompt="x")
    predict(api, "bfl/flux-2-pro")  # 400: not billed
    api.get("/v1/models")
    assert sandbox.client.billed_count() == 2
    assert sandbox.client.billed_count("bfl/") == 1


def test_configure_validates(sandbox: SandboxServer) -> None:
    assert sandbox.client.configure(task_delay_s=0.25, max_side=64)["max_side"] == 64
    for bad in ({"nope": 1}, {"status_style": "shouty"}, {"max_side": -1}, {"task_delay_s": "soon"}):
        response = httpx.post(f"{sandbox.base_url}/_sandbox/config", json=bad)
        assert response.status_code == 400, bad
    assert sandbox.client.config()["task_delay_s"] == 0.25


def test_reset_restores_everything(sandbox: SandboxServer, api: httpx.Client) -> None:
    start = sandbox.client.config()
    sandbox.client.configure(max_side=32, status_style="lower")
    sandbox.client.inject(kind="status", status=500)
    predict(api, "bfl/flux-2-pro", prompt="x")
    sandbox.client.reset()
    assert sandbox.client.config() == start
    assert sandbox.client.faults() == []
    assert sandbox.client.requests() == []
    assert sandbox.client.tasks() == []
    assert api.get("/dashboard/billing/remain").json()["used_usd"] == 0


def test_set_unknown_task_is_404(sandbox: SandboxServer) -> None:
    with pytest.raises(httpx.HTTPStatusError):
        sandbox.client.set_task("nope", outcome="ready")


def test_request_log_is_bounded() -> None:
    with SandboxServer(log_max=5) as server, httpx.Client(base_url=server.base_url) as client:
        for _ in range(8):
            client.get("/v1/models")
        records = server.client.requests()
        assert len(records) == 5
        assert records[-1]["seq"] - records[0]["seq"] == 4


def test_sandbox_conn_fixture(sandbox_conn: str, sandbox: SandboxServer) -> None:
    import json
    import os

    conn = json.loads(os.environ["AIRFLOW_CONN_AIHUBMIX_DEFAULT"])
    assert conn["password"] == sandbox_conn and conn["host"] == sandbox.base_url
    assert conn["extra"]["tasks_base_url"] == sandbox.base_url
    url = f"{sandbox.base_url}/v1/models"
    assert httpx.get(url, headers={"Authorization": "Bearer sk-other"}).status_code == 401
    assert httpx.get(url, headers={"Authorization": f"Bearer {sandbox_conn}"}).status_code == 200


def test_big_bodies_are_processed_but_not_kept_in_the_log(sandbox: SandboxServer, api: httpx.Client) -> None:
    big = "data:image/png;base64," + "A" * (2 * 1024 * 1024)
    assert predict(api, "openai/gpt-image-1", prompt="x", image=big, size="64x64").status_code == 200
    (record,) = sandbox.client.requests()
    assert record["json"] is None and record["body_size"] > 2 * 1024 * 1024
    assert record["billed"] is True
