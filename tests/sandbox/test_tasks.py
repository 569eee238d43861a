"""The async (Flux) task lifecycle, every outcome, status spellings and the upstream polling URL."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from airflow_provider_aihubmix.sandbox import SandboxServer
from tests.sandbox.helpers import open_image, predict


def _submit(api: httpx.Client, prompt: str = "a deer", **inp: Any) -> str:
    response = predict(api, "bfl/flux-2-pro", prompt=prompt, **inp)
    assert response.status_code == 200, response.text
    return response.json()["output"][0]["taskId"]


def _poll_until(
    api: httpx.Client, task_id: str, done: set[str], limit_s: float = 10.0
) -> list[dict[str, Any]]:
    """Every status seen until one in ``done``; fails after ``limit_s`` (a hang, not a timing check)."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        body = api.get(f"/v1/tasks/{task_id}").json()
        seen.append(body)
        if body["status"] in done:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"task never reached {done}: last {seen[-1]}")


def test_lifecycle_pending_generating_ready(
    sandbox: SandboxServer, api: httpx.Client, anon: httpx.Client
) -> None:
    sandbox.client.configure(task_delay_s=1.0)  # wide phases: a busy machine still sees each
    task_id = _submit(api, seed=3)
    seen = _poll_until(api, task_id, {"Ready"})
    statuses = [body["status"] for body in seen]
    assert statuses[0] == "Pending"
    assert "Generating" in statuses
    assert set(statuses) <= {"Pending", "Generating", "Ready"}
    progress = [body["progress"] for body in seen]
    assert progress == sorted(progress)
    ready = seen[-1]
    assert ready["id"] == task_id
    assert ready["result"]["seed"] == 3
    image = open_image(anon.get(ready["result"]["sample"]).content)
    assert image.format == "JPEG" and image.size == (1024, 576)  # Flux default 16:9


def test_generating_status_can_be_turned_off(sandbox: SandboxServer, api: httpx.Client) -> None:
    sandbox.client.configure(generating_status=False)
    statuses = {body["status"] for body in _poll_until(api, _submit(api), {"Ready"})}
    assert statuses == {"Pending", "Ready"}


@pytest.mark.parametrize(
    ("token", "status", "details_key"),
    [
        ("sandbox:error", "Error", "message"),
        ("sandbox:failed", "Failed", "message"),
        ("sandbox:request-moderated", "Request Moderated", "Moderation Reasons"),
        ("sandbox:content-moderated", "Content Moderated", "Moderation Reasons"),
    ],
)
def test_prompt_selects_failure_outcome(api: httpx.Client, token: str, status: str, details_key: str) -> None:
    task_id = _submit(api, prompt=f"a deer {token} sandbox:delay=0")
    body = api.get(f"/v1/tasks/{task_id}").json()
    assert body["status"] == status
    assert body["result"] is None
    assert details_key in body["details"]


def test_never_finishes(sandbox: SandboxServer, api: httpx.Client) -> None:
    task_id = _submit(api, prompt="sandbox:never")
    sandbox.client.set_task(task_id, delay_s=0)  # even with its delay gone it does not finish
    body = api.get(f"/v1/tasks/{task_id}").json()
    assert body["status"] in ("Pending", "Generating")
    assert body["progress"] < 1


def test_unknown_task(api: httpx.Client) -> None:
    body = api.get("/v1/tasks/api.sbx.does-not-exist").json()
    assert body["status"] == "Task not found"
    assert body["result"] is None


def test_tasks_need_the_key(sandbox: SandboxServer, api: httpx.Client) -> None:
    task_id = _submit(api)
    assert httpx.get(f"{sandbox.base_url}/v1/tasks/{task_id}").status_code == 401


def test_control_api_changes_outcome_and_delay(sandbox: SandboxServer, api: httpx.Client) -> None:
    sandbox.client.configure(task_delay_s=60)
    task_id = _submit(api)
    assert api.get(f"/v1/tasks/{task_id}").json()["status"] == "Pending"
    sandbox.client.set_task(task_id, outcome="content-moderated", delay_s=0)
    assert api.get(f"/v1/tasks/{task_id}").json()["status"] == "Content Moderated"


def test_configured_default_outcome(sandbox: SandboxServer, api: httpx.Client) -> None:
    sandbox.client.configure(task_outcome="failed", task_delay_s=0)
    assert api.get(f"/v1/tasks/{_submit(api)}").json()["status"] == "Failed"


@pytest.mark.parametrize(
    ("style", "ready", "pending", "not_found"),
    [
        ("lower", "succeeded", "pending", "task not found"),
        ("completed", "completed", "pending", "task not found"),
    ],
)
def test_status_styles(
    sandbox: SandboxServer, api: httpx.Client, style: str, ready: str, pending: str, not_found: str
) -> None:
    sandbox.client.configure(status_style=style, task_delay_s=60)
    task_id = _submit(api)
    assert api.get(f"/v1/tasks/{task_id}").json()["status"] == pending
    sandbox.client.set_task(task_id, delay_s=0)
    body = api.get(f"/v1/tasks/{task_id}").json()
    assert body["status"] == ready and body["result"]["sample"]
    assert api.get("/v1/tasks/nope").json()["status"] == not_found


def test_polling_url_is_on_storage_and_refuses_the_key(
    sandbox: SandboxServer, api: httpx.Client, anon: httpx.Client
) -> None:
    response = predict(api, "bfl/flux-2-flex", prompt="sandbox:delay=0 x")
    item = response.json()["output"][0]
    upstream = anon.get(item["polling_url"])
    assert upstream.status_code == 200
    assert upstream.json()["status"] == "Ready" and upstream.json()["id"] == item["taskId"]
    leaked = anon.get(item["polling_url"], headers={"Authorization": "Bearer sk-leak"})
    assert leaked.status_code == 400
    (record,) = [r for r in sandbox.client.requests(host="storage") if "authorization" in r["headers"]]
    assert record["path"] == "/v1/get_result"


def test_reset_forgets_tasks(sandbox: SandboxServer, api: httpx.Client) -> None:
    task_id = _submit(api)
    sandbox.client.reset()
    assert api.get(f"/v1/tasks/{task_id}").json()["status"] == "Task not found"
