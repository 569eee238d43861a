"""Authentication, request ids, the models list, billing endpoints and unknown routes."""

from __future__ import annotations

import httpx
import pytest

from airflow_provider_aihubmix.catalog.models import CATALOG
from airflow_provider_aihubmix.sandbox import SandboxServer
from tests.sandbox.helpers import KEY, error_of, predict


def test_missing_key_is_401_with_error_body(sandbox: SandboxServer) -> None:
    response = httpx.get(f"{sandbox.base_url}/v1/models")
    assert response.status_code == 401
    error = error_of(response)
    assert error["code"] == "invalid_api_key"
    assert response.headers["x-request-id"]


@pytest.mark.parametrize("header", ["Basic abc", "Bearer", "sk-no-scheme"])
def test_malformed_authorization_is_401(sandbox: SandboxServer, header: str) -> None:
    response = httpx.post(
        f"{sandbox.base_url}/v1/models/openai/gpt-image-1/predictions",
        json={"input": {"prompt": "x"}},
        headers={"Authorization": header},
    )
    assert response.status_code == 401
    assert sandbox.client.billed_count() == 0


def test_any_key_accepted_without_configured_key(api: httpx.Client) -> None:
    assert api.get("/v1/models").status_code == 200


def test_configured_key_rejects_other_keys(sandbox: SandboxServer, api: httpx.Client) -> None:
    sandbox.client.configure(api_key="sk-the-right-one")
    rejected = api.get("/v1/models")
    assert rejected.status_code == 401
    assert "sk-the-right-one" not in rejected.text and KEY not in rejected.text
    ok = httpx.get(f"{sandbox.base_url}/v1/models", headers={"Authorization": "Bearer sk-the-right-one"})
    assert ok.status_code == 200


def test_started_with_api_key_rejects_others() -> None:
    with SandboxServer(api_key="sk-start") as server:
        url = f"{server.base_url}/v1/models"
        assert httpx.get(url, headers={"Authorization": "Bearer sk-other"}).status_code == 401
        assert httpx.get(url, headers={"Authorization": "Bearer sk-start"}).status_code == 200
        # reset() goes back to the start-up key, not to "no key".
        server.client.configure(api_key=None)
        assert httpx.get(url, headers={"Authorization": "Bearer sk-other"}).status_code == 200
        server.client.reset()
        assert httpx.get(url, headers={"Authorization": "Bearer sk-other"}).status_code == 401


def test_every_response_has_a_distinct_request_id(api: httpx.Client) -> None:
    responses = [
        api.get("/v1/models"),
        predict(api, "openai/gpt-image-1"),  # 400
        api.get("/v1/nothing-here"),  # 404
    ]
    ids = [r.headers.get("x-request-id") for r in responses]
    assert all(ids) and len(set(ids)) == 3
    assert ids[1] in error_of(responses[1])["message"]


def test_models_lists_the_catalog(api: httpx.Client) -> None:
    body = api.get("/v1/models").json()
    ids = {item["id"] for item in body["data"]}
    assert {spec.model_id for spec in CATALOG.values()} <= ids
    assert all({"id", "object", "owned_by"} <= set(item) for item in body["data"])


def test_unknown_route_uses_error_shape(api: httpx.Client) -> None:
    response = api.get("/v1/nope")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/dashboard/billing/subscription",
        "/dashboard/billing/usage",
        "/v1/dashboard/billing/usage",
        "/dashboard/billing/remain",
        "/v1/dashboard/billing/remain",
    ],
)
def test_billing_endpoints_need_a_key_and_answer_json(
    sandbox: SandboxServer, api: httpx.Client, path: str
) -> None:
    assert httpx.get(f"{sandbox.base_url}{path}").status_code == 401
    response = api.get(path)
    assert response.status_code == 200
    assert isinstance(response.json(), dict)


def test_usage_grows_with_billed_requests(api: httpx.Client) -> None:
    before = api.get("/dashboard/billing/remain").json()
    assert (
        predict(api, "google/imagen-4.0-ultra-generate-001", prompt="x", numberOfImages=2).status_code == 200
    )
    after = api.get("/dashboard/billing/remain").json()
    assert after["used_usd"] == pytest.approx(before["used_usd"] + 0.12)
    assert api.get("/v1/dashboard/billing/usage").json()["total_usage"] == pytest.approx(12.0)


def test_exhausted_balance_is_403_insufficient_quota(sandbox: SandboxServer, api: httpx.Client) -> None:
    sandbox.client.configure(balance_usd=0.0)
    response = predict(api, "qianfan/qwen-image", prompt="x")
    assert response.status_code == 403
    assert error_of(response)["code"] == "insufficient_user_quota"
    assert sandbox.client.billed_count() == 0
