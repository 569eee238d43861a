"""What every pooled client is built with, identical for ``httpx.Client`` and ``AsyncClient``.

The API client authenticates only requests to the API origins; the download client carries no
credentials at all, because image hosts are third parties.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import httpx

from airflow_provider_aihubmix.http.settings import origin

if TYPE_CHECKING:
    from airflow_provider_aihubmix.http.settings import AIHubMixSettings

USER_AGENT = "airflow-provider-aihubmix"


GEMINI_KEY_HEADER = "x-goog-api-key"
GEMINI_PATH_MARKER = "/gemini/"


class ApiKeyAuth(httpx.Auth):
    """Adds ``Authorization: Bearer`` only for the configured API origins (on the Gemini route,
    ``/gemini/...``, the key goes in ``x-goog-api-key`` instead and no Authorization is sent).

    The key must never reach the vendors' storage hosts (BCE answers 400 with it and, worse, it
    would leak), so the origin check sits at the last point before the wire, redirects included.
    """

    def __init__(self, api_key: str, origins: frozenset[tuple[str, str, int]]) -> None:
        self._key = api_key
        self._header = f"Bearer {api_key}"
        self._origins = origins

    def __repr__(self) -> str:
        return f"ApiKeyAuth(origins={sorted(self._origins)!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.pop("Authorization", None)
        request.headers.pop(GEMINI_KEY_HEADER, None)
        if origin(str(request.url)) in self._origins:
            if GEMINI_PATH_MARKER in request.url.path:
                # Google's native API: the key in x-goog-api-key only, never a ?key= query string.
                request.headers[GEMINI_KEY_HEADER] = self._key
            else:
                request.headers["Authorization"] = self._header
        yield request


def api_client_kwargs(settings: AIHubMixSettings) -> dict[str, Any]:
    """Keyword arguments for the pooled API client, identical for ``Client`` and ``AsyncClient``."""
    return {
        "base_url": settings.base_url,
        "auth": ApiKeyAuth(settings.api_key, settings.api_origins),
        "timeout": settings.timeout,
        "headers": {"User-Agent": USER_AGENT, "Accept": "application/json"},
        "follow_redirects": False,
        "limits": httpx.Limits(max_connections=50, max_keepalive_connections=20),
    }


def download_client_kwargs(settings: AIHubMixSettings) -> dict[str, Any]:
    """A client with no credentials at all: image hosts are third parties."""
    return {
        "timeout": settings.timeout,
        "headers": {"User-Agent": USER_AGENT},
        "follow_redirects": True,
        "max_redirects": 5,
    }
