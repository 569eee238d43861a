"""A local AIHubMix-compatible server: develop and test DAGs offline, and run benchmarks.

Two HTTP servers: the API (predictions, images, tasks, models, Gemini, billing, and a
control API under ``/_sandbox/``) and a separate image storage host, like the vendors'
signed-URL storage. Written from the API reference, never from the client's parsers.
Start it with ``aihubmix-sandbox`` or :class:`SandboxServer`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_aihubmix.sandbox.client import SandboxClient
    from airflow_provider_aihubmix.sandbox.config import SandboxConfig
    from airflow_provider_aihubmix.sandbox.faults import FaultRule
    from airflow_provider_aihubmix.sandbox.server import SandboxServer

__all__ = ["FaultRule", "SandboxClient", "SandboxConfig", "SandboxServer"]

_LAZY = {
    "SandboxServer": "airflow_provider_aihubmix.sandbox.server",
    "SandboxClient": "airflow_provider_aihubmix.sandbox.client",
    "SandboxConfig": "airflow_provider_aihubmix.sandbox.config",
    "FaultRule": "airflow_provider_aihubmix.sandbox.faults",
}


def __getattr__(name: str) -> Any:
    # Lazy: importing the package (e.g. for the CLI's --help) must not pull in FastAPI.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
