"""The hook's one client builder and the explicit shared-pool choice."""

from __future__ import annotations

import httpx
import pytest

from airflow_provider_aihubmix.exceptions import AIHubMixDownloadError, AIHubMixValidationError
from airflow_provider_aihubmix.hooks.aihubmix import AIHubMixHook, aclose_shared_clients
from airflow_provider_aihubmix.http import AIHubMixSettings
from airflow_provider_aihubmix.http.clients import build_client, shared_client_for

KEY = "sk-clients-unit-0123456789"
SETTINGS = AIHubMixSettings(api_key=KEY, base_url="https://aihubmix.com", conn_id="clients_unit")


def _echo(seen: list[httpx.Request]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"data": []})

    return httpx.MockTransport(handler)


def test_api_client_sends_the_key_to_the_api_only() -> None:
    seen: list[httpx.Request] = []
    with build_client(SETTINGS, "api", transport=_echo(seen)) as client:
        assert isinstance(client, httpx.Client)
        client.get("/v1/models")
        client.get("https://images.example.com/a.png")
    assert seen[0].url == "https://aihubmix.com/v1/models"
    assert seen[0].headers["Authorization"] == f"Bearer {KEY}"
    assert "Authorization" not in seen[1].headers


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_download_client_has_no_key_and_is_guarded(asynchronous: bool) -> None:
    seen: list[httpx.Request] = []

    def metadata(host: str) -> list[str]:
        return ["169.254.169.254"]

    if asynchronous:
        async_client = build_client(
            SETTINGS,
            "download",
            asynchronous=True,
            transport=_echo(seen),
            resolver=metadata,
        )
        assert isinstance(async_client, httpx.AsyncClient)
        async with async_client:
            with pytest.raises(AIHubMixDownloadError, match="cloud metadata address"):
                await async_client.get("https://images.example.com/a.png")
    else:
        with build_client(SETTINGS, "download", transport=_echo(seen), resolver=metadata) as client:
            assert client.auth is None
            with pytest.raises(AIHubMixDownloadError, match="cloud metadata address"):
                client.get("https://images.example.com/a.png")
    assert seen == []  # refused before a byte left


def test_shared_pool_with_own_transport_is_refused() -> None:
    with pytest.raises(AIHubMixValidationError, match="shared_pool"):
        AIHubMixHook(
            settings=SETTINGS,
            async_transport=httpx.MockTransport(lambda r: httpx.Response(200)),
            shared_pool=True,
        )
    with pytest.raises(AIHubMixValidationError, match="shared_pool"):
        AIHubMixHook(settings=SETTINGS, resolver=lambda host: [], shared_pool=True)


@pytest.mark.parametrize(
    ("kwargs", "shared"),
    [
        ({}, True),
        ({"shared_pool": True}, True),
        ({"shared_pool": False}, False),
        ({"resolver": lambda host: []}, False),
        ({"async_transport": httpx.MockTransport(lambda r: httpx.Response(200))}, False),
    ],
)
async def test_async_clients_come_from_the_pool_the_hook_asks_for(kwargs: dict, shared: bool) -> None:
    hook = AIHubMixHook(settings=SETTINGS, **kwargs)
    assert hook.shared_pool is shared
    try:
        api = await hook.aget_async_client()
        assert (api is shared_client_for(SETTINGS, "api")) is shared
        assert api is await hook.aget_async_client()  # one client per purpose, reused
    finally:
        await hook.aclose()
        await aclose_shared_clients()


def test_sync_clients_are_built_once_per_purpose_and_closed() -> None:
    hook = AIHubMixHook(settings=SETTINGS, transport=_echo([]))
    api = hook.get_conn()
    assert api is hook.get_conn()
    hook.close()
    assert api.is_closed
    assert hook.get_conn() is not api
