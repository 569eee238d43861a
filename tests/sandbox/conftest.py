"""Clients for the sandbox tests: the API with a key, and a bare client for the storage host."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from airflow_provider_aihubmix.sandbox import SandboxServer
from tests.sandbox.helpers import KEY


@pytest.fixture
def api(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=sandbox.base_url, headers={"Authorization": f"Bearer {KEY}"}, timeout=10
    ) as client:
        yield client


@pytest.fixture
def anon(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    """No Authorization header: how a client must fetch storage URLs."""
    with httpx.Client(timeout=10) as client:
        yield client
